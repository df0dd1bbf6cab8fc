"""Fine-tune, evaluate and run a Spanish news summariser with LightningCLI.

    python scripts/train.py fit --config configs/demo.yaml
    python scripts/train.py test --config configs/demo.yaml       # uses the best checkpoint of the latest run
    python scripts/train.py predict --config configs/demo.yaml --data.predict_file articles.txt
    python scripts/train.py fit --config configs/mlsum_flan_t5_small.yaml --config configs/trainer/ddp.yaml

``validate``/``test``/``predict`` default to the best checkpoint of the newest run under the logger's directory;
``--ckpt_path PATH`` picks another and ``--ckpt_path pretrained`` evaluates the model as loaded (no fine-tuning).
``fit --ckpt_path last`` resumes the newest run's ``last.ckpt`` into that run's directory (step, epoch, optimizer,
scheduler, data position and RNG), refusing a run of another configuration; ``--ckpt_path auto`` resumes the newest
run of this configuration when there is one and starts a new run otherwise (for requeued cluster jobs).
A run stopped by SIGTERM/SIGUSR1 saves ``last.ckpt`` and exits with code 143.
Set RESUMEN_DEBUG=1 (or pass --debug) to see full tracebacks.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.cli_support import main_guard  # noqa: E402


def build_cli_class():
    import yaml
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningCLI
    from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from lightning_modules.callbacks import HFExport, JsonlPredictionWriter
    from lightning_modules.checkpoints import AtomicCheckpointIO, check_any_checkpoint
    from core.errors import ResumenError
    from lightning_modules.last_checkpoint import PREEMPTED_EXIT_CODE, LastCheckpoint
    from lightning_modules.run_report import RunReport

    class ResumenCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.link_arguments("model.model_name_or_path", "data.tokenizer_name")
            parser.link_arguments("model.trust_remote_code", "data.trust_remote_code")
            parser.link_arguments("model.extend_vocabulary", "data.extend_vocabulary")
            parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
            parser.set_defaults(
                {
                    "checkpoint.monitor": "val/rougeL",
                    "checkpoint.mode": "max",
                    "checkpoint.save_last": False,  # LastCheckpoint keeps last.ckpt fresh every epoch
                    "checkpoint.save_top_k": 1,
                    "checkpoint.filename": "best-epoch{epoch:02d}-rougeL{val/rougeL:.2f}",
                    "checkpoint.auto_insert_metric_name": False,
                }
            )
            parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
            parser.add_lightning_class_args(HFExport, "export")
            parser.add_lightning_class_args(JsonlPredictionWriter, "predictions")
            parser.add_lightning_class_args(RunReport, "report")

        def _prepare_subcommand_parser(self, klass, subcommand, **kwargs):
            parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
            for action in parser._actions:  # Lightning's help for ckpt_path describes Lightning's values, not ours
                if action.dest == "ckpt_path":
                    action.help = CKPT_PATH_HELP[subcommand]
            return parser

        def parse_arguments(self, parser, args) -> None:
            argv = sys.argv[1:] if args is None else args
            if isinstance(argv, list) and any(str(a).split("=")[0] in ("--optimizer", "--lr_scheduler") for a in argv):
                raise ResumenError(
                    "the model owns its optimizer (AdamW without decay on biases and norms, linear warm-up and decay): "
                    "set --model.learning_rate, --model.weight_decay, --model.warmup_steps or --model.warmup_ratio, "
                    "--model.adam_epsilon and --model.fused_adamw instead of --optimizer / --lr_scheduler."
                )
            super().parse_arguments(parser, args)

        def _parse_ckpt_path(self) -> None:
            # LightningCLI reads a --ckpt_path file's hyper-parameters right after parsing: check the file first, so
            # a text file or a damaged copy is one line instead of a KeyError from torch.load.
            subcommand = self.config.get("subcommand")
            ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
            if ckpt_path and ckpt_path not in CKPT_KEYWORDS:
                check_any_checkpoint(ckpt_path)
            super()._parse_ckpt_path()

        def before_instantiate_classes(self) -> None:
            # The requested precision, checked before any weights load (on CPU Lightning would silently turn
            # 16-mixed into bf16-mixed, so the resolved value is not enough).
            from core.loading import check_precision, load_config

            config = self.config[self.subcommand] if self.subcommand else self.config
            if config.trainer.enable_progress_bar is False:
                # Lightning refuses a progress-bar callback with the bar off; a log-only run (SLURM) should not fail.
                defaults = self.trainer_defaults.get("callbacks", [])
                self.trainer_defaults["callbacks"] = [c for c in defaults if "ProgressBar" not in type(c).__name__]
            from datamodules.sources import check_data_source
            from datamodules.summarization import check_data_settings

            check_data_settings(config.data)  # the data is checked before any weights load
            if self.subcommand in (None, "fit"):
                check_data_source(config.data, predicting=False)
                self._check_fit_settings(config)
            elif self.subcommand == "predict" and config.data.predict_file:
                check_data_source(config.data, predicting=True)
            name = config.model.model_name_or_path
            model_config = load_config(name, config.model.trust_remote_code)
            check_precision(config.trainer.precision, model_config, name)
            positions = getattr(model_config, "max_position_embeddings", None)  # T5's relative positions have none
            if positions and config.data.max_source_length > positions:
                raise ResumenError(
                    f"data.max_source_length={config.data.max_source_length} exceeds the {positions} positions of "
                    f"'{name}': use at most {positions}."
                )

        def _check_fit_settings(self, config) -> None:
            """Settings that would train nothing, or crash after a whole epoch, are refused or fixed up front."""
            for limit in ("max_epochs", "max_steps"):
                if config.trainer.get(limit) == 0:
                    raise ResumenError(
                        f"trainer.{limit}=0 trains nothing (and would export the base model as if fine-tuned): use at "
                        "least 1, or evaluate the base model with `validate --ckpt_path pretrained`."
                    )
            monitor = config.checkpoint.monitor or ""
            if config.model.val_generate_samples == 0 and monitor.startswith("val/rouge"):
                rank_zero_warn(
                    f"model.val_generate_samples=0 generates no validation summaries, so there is no {monitor}: the "
                    "best checkpoint is chosen by the lowest val/loss instead."
                )
                config.checkpoint.monitor, config.checkpoint.mode = "val/loss", "min"
                config.checkpoint.filename = "best-epoch{epoch:02d}-loss{val/loss:.3f}"

        def _load_weights_only(self, subcommand: str) -> None:
            # (precision was checked once, before any weights loaded: before_instantiate_classes)
            kwargs = self.config_init[subcommand]
            if kwargs.get("weights_only") is None:  # our checkpoints hold tensors and plain values: unpickle nothing else
                kwargs["weights_only"] = True

        def instantiate_classes(self) -> None:
            super().instantiate_classes()
            # Data and model meet here: one tokenizer object, and the template an exported model was trained with.
            self.datamodule.connect(self.model.vocabulary, self.model.trained_prompt_template)

        def _prepare_trainer(self) -> None:
            # Checkpoints are written next to their target and renamed (Lightning stages them in /tmp).
            strategy = self.trainer.strategy
            if type(strategy.checkpoint_io) is TorchCheckpointIO:
                strategy.checkpoint_io = AtomicCheckpointIO()

        def before_fit(self) -> None:
            self._load_weights_only("fit")
            self._prepare_trainer()
            self._finished_reason = None
            kwargs = self.config_init["fit"]
            if kwargs.get("ckpt_path") in ("last", "auto"):  # Lightning would look only in this new run's directory
                kwargs["ckpt_path"] = self._resume_path(kwargs["ckpt_path"])
            elif kwargs.get("ckpt_path"):
                check_any_checkpoint(kwargs["ckpt_path"])
            self._use_checkpoint_vocabulary(kwargs.get("ckpt_path"))

        def _resume_path(self, mode: str) -> str | None:
            """The ``last.ckpt`` of the run to resume (logging into that run's directory), or None for a new run."""
            from scripts.resume import choose_run, runs_with_checkpoint, training_finished

            logger = self.trainer.logger
            if logger is None or logger.root_dir is None:
                raise ResumenError(f"--ckpt_path {mode} needs a logger (runs/<name>/version_N) to find the run to resume.")
            root = Path(logger.root_dir)
            explicit = getattr(logger, "_version", None)  # a version set in the config: only that run
            only = (explicit if isinstance(explicit, str) else f"version_{explicit}") if explicit is not None else None
            current = yaml.safe_load(self._parser("fit").dump(self.config["fit"], skip_none=False))
            checkpoint_dirpath = self.config["fit"].get("checkpoint", {}).get("dirpath")
            run = choose_run(runs_with_checkpoint(root, checkpoint_dirpath, only), current, mode, root)
            if run is None:
                rank_zero_info(f"--ckpt_path auto: no run of this configuration under {root} to resume; starting a new run.")
                return None
            check_any_checkpoint(run.last)
            if hasattr(logger, "_version"):  # resume into the same version directory: logs and checkpoints continue there
                logger._version = run.version
            for callback in self.trainer.callbacks:
                if isinstance(callback, HFExport):
                    callback.resuming = True
            trainer = self.trainer
            self._finished_reason = training_finished(run.last, trainer.max_epochs, trainer.max_steps)
            rank_zero_info(f"Resuming {run.directory} from {run.last}")
            return str(run.last)

        def fit(self, model, datamodule=None, ckpt_path=None, weights_only=None, **kwargs) -> None:
            """``Trainer.fit``, unless the run to resume is already finished; a preempted fit exits with 143."""
            if self._finished_reason:
                rank_zero_info(
                    f"Nothing to resume: {Path(ckpt_path).parent.parent} is finished ({self._finished_reason}). "
                    "Raise --trainer.max_epochs (or max_steps) to train it longer; its export is in that directory."
                )
                return
            try:
                self.trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=weights_only, **kwargs)
            except SIGTERMException:
                raise SystemExit(PREEMPTED_EXIT_CODE) from None

        def _use_checkpoint_vocabulary(self, ckpt_path: str | None) -> None:
            """A checkpoint trained with an extended vocabulary fixes the tokenizer before the data is tokenised."""
            if ckpt_path and Path(ckpt_path).is_file():
                self.model.vocabulary.restore(ckpt_path)  # the data module shares this vocabulary

        def _use_best_checkpoint(self, subcommand: str) -> None:
            self._load_weights_only(subcommand)
            self._prepare_trainer()
            kwargs = self.config_init[subcommand]
            if kwargs.get("ckpt_path") == "pretrained":
                kwargs["ckpt_path"] = None
                rank_zero_info(f"Using the model as loaded from {self.model.hparams.model_name_or_path} (no checkpoint).")
                return
            if kwargs.get("ckpt_path") and kwargs["ckpt_path"] != "best":  # best: the newest run's, below
                check_any_checkpoint(kwargs["ckpt_path"])
                self._use_checkpoint_vocabulary(kwargs["ckpt_path"])
                return
            best = find_run_checkpoint(self.trainer, "best-*.ckpt")
            if best is None:
                rank_zero_info(
                    "No fine-tuned checkpoint found under the run directory: using the model as loaded from "
                    f"{self.model.hparams.model_name_or_path}. Pass --ckpt_path to choose one."
                )
            else:
                rank_zero_info(f"Using the best checkpoint {best} (pass --ckpt_path to choose another).")
                kwargs["ckpt_path"] = str(best)
            self._use_checkpoint_vocabulary(kwargs.get("ckpt_path"))

        def before_validate(self) -> None:
            self._use_best_checkpoint("validate")

        def before_test(self) -> None:
            self._use_best_checkpoint("test")

        def before_predict(self) -> None:
            self._use_best_checkpoint("predict")

        def after_fit(self) -> None:
            if self._finished_reason:
                return
            checkpoint = self.trainer.checkpoint_callback
            lines = [f"Logs (tensorboard --logdir {Path(self.trainer.log_dir).parent}): {self.trainer.log_dir}"]
            if checkpoint is not None and checkpoint.best_model_path and checkpoint.best_model_score is not None:
                lines.append(f"Best checkpoint ({checkpoint.monitor}={float(checkpoint.best_model_score):.2f}): {checkpoint.best_model_path}")
            for callback in self.trainer.callbacks:
                if isinstance(callback, HFExport) and callback.exported_to:
                    lines.append(f"Hugging Face export: {callback.exported_to}")
            rank_zero_info("\n".join(lines))

        def after_test(self) -> None:
            rank_zero_info(f"Logs: {self.trainer.log_dir}")

        def after_predict(self) -> None:
            for callback in self.trainer.callbacks:
                if isinstance(callback, JsonlPredictionWriter) and callback.written_to:
                    rank_zero_info(f"Predictions: {callback.written_to}")

    return ResumenCLI


# --ckpt_path values that name no file: resolved by the CLI (last, auto, pretrained, best) or by Lightning (hpc).
CKPT_KEYWORDS = {"last", "auto", "pretrained", "best", "hpc"}
_EVALUATE_HELP = (
    "Checkpoint to evaluate: a .ckpt file or sharded directory; 'best' (the default) for the best-*.ckpt of the newest "
    "run under the logger's directory; 'pretrained' for the model as loaded, without fine-tuning. (type: str | None)"
)
CKPT_PATH_HELP = {
    "fit": (
        "Resume training: 'last' resumes the newest run's last.ckpt into that run's directory (refused when its "
        "configuration differs); 'auto' resumes the newest run of this configuration, or starts a new run when there "
        "is none; or a .ckpt file / sharded directory. Default: a new run. (type: str | None)"
    ),
    "validate": _EVALUATE_HELP,
    "test": _EVALUATE_HELP,
    "predict": _EVALUATE_HELP,
}


def find_run_checkpoint(trainer, pattern: str) -> Path | None:
    """The newest checkpoint matching ``pattern`` (the checkpoint dir if set, else the logger's newest run having one)."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.dirpath:
        candidates = sorted(Path(callback.dirpath).glob(pattern), key=os.path.getmtime)
        return candidates[-1] if candidates else None
    if trainer.logger is None or trainer.logger.root_dir is None:
        return None
    root = Path(trainer.logger.root_dir)

    def version(path: Path) -> int:
        match = re.search(r"version_(\d+)", str(path))
        return int(match.group(1)) if match else -1

    candidates = sorted(root.glob(f"version_*/checkpoints/{pattern}"), key=lambda p: (version(p), os.path.getmtime(p)))
    return candidates[-1] if candidates else None


def trainer_defaults() -> dict:
    from lightning.pytorch.callbacks import LearningRateMonitor, RichProgressBar
    from jsonargparse import lazy_instance
    from lightning.pytorch.loggers import TensorBoardLogger

    return {
        "logger": lazy_instance(TensorBoardLogger, save_dir="runs", name="resumen", default_hp_metric=False),
        "callbacks": [lazy_instance(LearningRateMonitor, logging_interval="step"), lazy_instance(RichProgressBar)],
    }


def cli_main(args: list[str] | None = None, run: bool = True):
    """Build the CLI (``args`` instead of ``sys.argv`` when given) and run its subcommand."""
    from datamodules.summarization import SummarizationDataModule
    from lightning_modules.seq2seq import Seq2SeqSummarizer

    return build_cli_class()(
        Seq2SeqSummarizer,
        SummarizationDataModule,
        trainer_defaults=trainer_defaults(),
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,  # the module's configure_optimizers is the one (parameter groups, schedule)
        parser_kwargs={"exit_on_error": False},  # a config error is one line (main_guard), not 110 lines of usage
        args=args,
        run=run,
    )


def main() -> None:
    """Console entry point: one-line errors, exit code 2."""
    main_guard(cli_main)


if __name__ == "__main__":
    main()
