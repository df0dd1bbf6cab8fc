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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO  # noqa: E402
from lightning.pytorch.cli import LightningCLI  # noqa: E402
from lightning.pytorch.utilities import rank_zero_info  # noqa: E402
from lightning.pytorch.utilities.exceptions import SIGTERMException  # noqa: E402

from datamodules.summarization import SummarizationDataModule  # noqa: E402
from lightning_modules.best_checkpoint import BestCheckpoint  # noqa: E402
from lightning_modules.callbacks import HFExport, JsonlPredictionWriter  # noqa: E402
from lightning_modules.checkpoints import (  # noqa: E402
    AtomicCheckpointIO,
    check_any_checkpoint,
    read_checkpoint_metadata,
    saved_module_settings,
)
from lightning_modules.early_stopping import OptionalEarlyStopping  # noqa: E402
from lightning_modules.last_checkpoint import PREEMPTED_EXIT_CODE, LastCheckpoint  # noqa: E402
from lightning_modules.run_files import share_run_directory  # noqa: E402
from lightning_modules.run_report import RunReport  # noqa: E402
from lightning_modules.seq2seq import Seq2SeqSummarizer  # noqa: E402
from scripts.cli_checks import CKPT_KEYWORDS, CKPT_PATH_HELP, check_before_loading, refuse_optimizer_options  # noqa: E402
from scripts.cli_support import main_guard  # noqa: E402
from scripts.resume import evaluation_checkpoint, resume_checkpoint  # noqa: E402

CHECKPOINT_DEFAULTS = {
    "checkpoint.monitor": "val/rougeL",
    "checkpoint.mode": "max",
    "checkpoint.save_last": False,  # LastCheckpoint keeps last.ckpt fresh every epoch
    "checkpoint.save_top_k": 1,
    "checkpoint.filename": "best-epoch{epoch:02d}-rougeL{val/rougeL:.2f}",
    "checkpoint.auto_insert_metric_name": False,
}


class ResumenCLI(LightningCLI):
    """LightningCLI where data and model meet: the hooks check, connect and choose checkpoints by delegating."""

    _finished_reason: str | None = None

    # ------------------------------------------------------------------------------------------ parsing
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("model.model_name_or_path", "data.tokenizer_name")
        parser.link_arguments("model.trust_remote_code", "data.trust_remote_code")
        parser.link_arguments("model.extend_vocabulary", "data.extend_vocabulary")
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        parser.set_defaults(CHECKPOINT_DEFAULTS)
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(OptionalEarlyStopping, "early_stopping")
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
        refuse_optimizer_options(sys.argv[1:] if args is None else args)
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        """A --ckpt_path file's module settings become the config's (as LightningCLI does), after the file is checked,
        without the settings that choose code: its ``trust_remote_code`` and class path are never taken."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or ckpt_path in CKPT_KEYWORDS:
            return
        check_any_checkpoint(ckpt_path)  # a text file or a damaged copy is one line, not a KeyError from torch.load
        if not Path(ckpt_path).is_file():  # a sharded directory: settings come from the config
            return
        settings = saved_module_settings(read_checkpoint_metadata(ckpt_path))
        if settings:
            self.config = self.parser.parse_object({subcommand: {"model": settings}}, self.config)

    # ---------------------------------------------------------------------------------- instantiation
    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.trainer.enable_progress_bar is False:
            # Lightning refuses a progress-bar callback with the bar off; a log-only run (SLURM) should not fail.
            defaults = self.trainer_defaults.get("callbacks", [])
            self.trainer_defaults["callbacks"] = [c for c in defaults if "ProgressBar" not in type(c).__name__]
        check_before_loading(config, self.subcommand)

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        # Data and model meet here: one tokenizer object, and the template an exported model was trained with.
        self.datamodule.connect(self.model.vocabulary, self.model.trained_prompt_template)
        share_run_directory(self.trainer.loggers)  # e.g. TensorBoard + CSV: one run directory, not two
        strategy = self.trainer.strategy  # checkpoints are written next to their target and renamed into place
        if type(strategy.checkpoint_io) is TorchCheckpointIO:
            strategy.checkpoint_io = AtomicCheckpointIO()

    # ---------------------------------------------------------------------------------------- commands
    def before_fit(self) -> None:
        kwargs = self._weights_only("fit")
        ckpt_path = kwargs.get("ckpt_path")
        if ckpt_path in ("last", "auto"):  # Lightning would look only in this new run's directory
            parser = self._parser("fit")
            current = yaml.safe_load(parser.dump(self.config["fit"], skip_none=False))
            defaults = yaml.safe_load(parser.dump(parser.get_defaults(), skip_none=False, skip_validation=True))
            checkpoint_dirpath = self.config["fit"].get("checkpoint", {}).get("dirpath")
            ckpt_path, self._finished_reason = resume_checkpoint(self.trainer, current, checkpoint_dirpath, ckpt_path, defaults)
        # (a path given on the command line was already checked by _parse_ckpt_path)
        kwargs["ckpt_path"] = ckpt_path
        self._restore_vocabulary(ckpt_path)

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

    def _evaluate_with_best(self, subcommand: str) -> None:
        kwargs = self._weights_only(subcommand)
        kwargs["ckpt_path"] = evaluation_checkpoint(self.trainer, kwargs.get("ckpt_path"), self.model.hparams.model_name_or_path)
        self._restore_vocabulary(kwargs["ckpt_path"])

    def before_validate(self) -> None:
        self._evaluate_with_best("validate")

    def before_test(self) -> None:
        self._evaluate_with_best("test")

    def before_predict(self) -> None:
        self._evaluate_with_best("predict")

    def _weights_only(self, subcommand: str) -> dict:
        kwargs = self.config_init[subcommand]
        if kwargs.get("weights_only") is None:  # our checkpoints hold tensors and plain values: unpickle nothing else
            kwargs["weights_only"] = True
        return kwargs

    def _restore_vocabulary(self, ckpt_path: str | None) -> None:
        """A checkpoint's added characters fix the shared tokenizer before the data is tokenised."""
        if ckpt_path and Path(ckpt_path).is_file():
            self.model.vocabulary.restore(ckpt_path)

    # ----------------------------------------------------------------------------------------- reports
    def after_fit(self) -> None:
        if self._finished_reason:
            return
        checkpoint = self.trainer.checkpoint_callback
        lines = [logs_line(self.trainer)]
        if checkpoint is not None and checkpoint.best_model_path and checkpoint.best_model_score is not None:
            lines.append(f"Best checkpoint ({checkpoint.monitor}={float(checkpoint.best_model_score):.2f}): {checkpoint.best_model_path}")
        lines += [f"Hugging Face export: {c.exported_to}" for c in self.trainer.callbacks if isinstance(c, HFExport) and c.exported_to]
        rank_zero_info("\n".join(lines))

    def after_test(self) -> None:
        rank_zero_info(logs_line(self.trainer))

    def after_predict(self) -> None:
        for callback in self.trainer.callbacks:
            if isinstance(callback, JsonlPredictionWriter) and callback.written_to:
                rank_zero_info(f"Predictions: {callback.written_to}")


def logs_line(trainer) -> str:
    """Where the logs are, with the TensorBoard command only when a TensorBoard logger wrote them."""
    from lightning.pytorch.loggers import TensorBoardLogger

    if any(isinstance(logger, TensorBoardLogger) for logger in trainer.loggers):
        return f"Logs (tensorboard --logdir {Path(trainer.log_dir).parent}): {trainer.log_dir}"
    return f"Logs: {trainer.log_dir}"


def trainer_defaults() -> dict:
    from jsonargparse import lazy_instance
    from lightning.pytorch.callbacks import LearningRateMonitor, RichProgressBar
    from lightning.pytorch.loggers import TensorBoardLogger

    return {
        "logger": lazy_instance(TensorBoardLogger, save_dir="runs", name="resumen", default_hp_metric=False),
        "callbacks": [lazy_instance(LearningRateMonitor, logging_interval="step"), lazy_instance(RichProgressBar)],
    }


def cli_main(args: list[str] | None = None, run: bool = True) -> ResumenCLI:
    """Build the CLI (``args`` instead of ``sys.argv`` when given) and run its subcommand."""
    return ResumenCLI(
        Seq2SeqSummarizer,
        SummarizationDataModule,
        trainer_defaults=trainer_defaults(),
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False},  # a config error is one line (main_guard), not 110 lines of usage
        auto_configure_optimizers=False,  # the module's configure_optimizers is the one (parameter groups, schedule)
        args=args,
        run=run,
    )


def main() -> None:
    """Console entry point: one-line errors, exit code 2."""
    main_guard(cli_main)


if __name__ == "__main__":
    main()
