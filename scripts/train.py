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

import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO  # noqa: E402
from lightning.pytorch.cli import LightningCLI  # noqa: E402
from lightning.pytorch.utilities import rank_zero_info  # noqa: E402
from lightning.pytorch.utilities.exceptions import SIGTERMException  # noqa: E402

from core.runs import RunLayout, forget_decision, received_decision, share_decision, unlock_run  # noqa: E402
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
from lightning_modules.graceful_stop import GracefulStop  # noqa: E402
from lightning_modules.last_checkpoint import LastCheckpoint  # noqa: E402
from lightning_modules.rng import RandomState  # noqa: E402
from lightning_modules.run_files import RunConfigWriter, keep_csv_history, use_run_version  # noqa: E402
from lightning_modules.run_report import RunReport  # noqa: E402
from lightning_modules.seq2seq import Seq2SeqSummarizer  # noqa: E402
from scripts.cli_checks import CKPT_KEYWORDS, CKPT_PATH_HELP, check_before_loading, refuse_optimizer_options  # noqa: E402
from scripts.cli_support import main_guard  # noqa: E402
from scripts.resume import evaluation_decision, fit_decision, run_root  # noqa: E402

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
    _run: RunLayout | None = None  # the run this process decided on (and, for fit, locked)

    # ------------------------------------------------------------------------------------------ parsing
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("model.model_name_or_path", "data.tokenizer_name")
        parser.link_arguments("model.trust_remote_code", "data.trust_remote_code")
        parser.link_arguments("model.extend_vocabulary", "data.extend_vocabulary")
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        parser.set_defaults(CHECKPOINT_DEFAULTS)
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(GracefulStop, "stop")
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
        self.trainer.callbacks.append(RandomState())  # every rank's generators in checkpoints (exact resume)
        strategy = self.trainer.strategy  # checkpoints are written next to their target and renamed into place
        if type(strategy.checkpoint_io) is TorchCheckpointIO:
            strategy.checkpoint_io = AtomicCheckpointIO()

    # ---------------------------------------------------------------------------------------- commands
    def before_fit(self) -> None:
        kwargs = self._weights_only("fit")
        decision = self._shared_decision(lambda: self._fit_decision(kwargs.get("ckpt_path")))
        kwargs["ckpt_path"] = decision["ckpt_path"]
        self._finished_reason = decision.get("finished")
        if decision.get("resumed"):
            for each in self.trainer.loggers:  # a CSV logger keeps the rows logged before the interruption
                if isinstance(each, CSVLogger):
                    keep_csv_history(each)
            for callback in self.trainer.callbacks:
                if hasattr(callback, "resuming"):  # the export of the run being resumed may be replaced at its end
                    callback.resuming = True
        self._restore_vocabulary(kwargs["ckpt_path"])

    def _fit_decision(self, ckpt_path: str | None) -> dict:
        parser = self._parser("fit")
        current = yaml.safe_load(parser.dump(self.config["fit"], skip_none=False))
        defaults = yaml.safe_load(parser.dump(parser.get_defaults(), skip_none=False, skip_validation=True))
        checkpoint_dirpath = self.config["fit"].get("checkpoint", {}).get("dirpath")
        # (a path given on the command line was already checked by _parse_ckpt_path)
        return fit_decision(self.trainer, current, checkpoint_dirpath, ckpt_path, defaults)

    def _shared_decision(self, decide, log_subdir: str | None = None) -> dict:
        """Rank 0 decides (and locks or claims the run); the other ranks receive its decision, not their own.
        ``log_subdir``: the command logs in a directory of its own inside the run (``version_N/test``)."""
        root = run_root(self.trainer)
        decision = received_decision(root) if root is not None else None
        if decision is None:
            decision = decide()
            if root is not None:
                share_decision(root, decision)
            self._run = RunLayout(root / f"version_{decision['version']}") if decision.get("version") is not None else None
        if decision.get("version") is not None:
            version = decision["version"] if log_subdir is None else f"version_{decision['version']}/{log_subdir}"
            use_run_version(self.trainer, version)
        return decision

    def fit(self, model, datamodule=None, ckpt_path=None, weights_only=None, **kwargs) -> None:
        """``Trainer.fit``, unless the run to resume is already finished; a preempted fit exits with 143."""
        if self._finished_reason:
            rank_zero_info(
                f"Nothing to resume: {Path(ckpt_path).parent.parent} is finished ({self._finished_reason}). "
                "Raise --trainer.max_epochs (or max_steps) to train it longer; its export is in that directory."
            )
            self._release_run()
            return
        self._stopping(self.trainer.fit, model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=weights_only, **kwargs)

    def validate(self, **kwargs) -> Any:
        return self._stopping(self.trainer.validate, **kwargs)

    def test(self, **kwargs) -> Any:
        return self._stopping(self.trainer.test, **kwargs)

    def predict(self, **kwargs) -> Any:
        return self._stopping(self.trainer.predict, **kwargs)

    def _stopping(self, command, *args, **kwargs) -> Any:
        """Run a trainer command, recording the run's status; a stop by signal ends the process with 143 (130 for
        Ctrl-C) on every rank. A new fit that fails before its first step leaves no run directory behind."""
        fitting = command == self.trainer.fit
        run = self._run if fitting else None
        if run is not None:
            run.write_status("running")
        try:
            result = command(*args, **kwargs)
        except SIGTERMException:
            stop = next((c for c in self.trainer.callbacks if isinstance(c, GracefulStop)), None)
            if run is not None:
                run.write_status("preempted", step=self.trainer.global_step)
            self._release_run()
            raise SystemExit(stop.exit_code if stop is not None else 143) from None
        except BaseException as error:
            if run is not None:
                if self.trainer.global_step == 0 and not self._resumed_run():
                    shutil.rmtree(run.directory, ignore_errors=True)  # it trained nothing: no empty run is listed
                else:
                    run.write_status("failed", step=self.trainer.global_step, error=str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__)
            self._release_run()
            raise
        if run is not None:
            run.write_status("finished", step=self.trainer.global_step)
        self._release_run()
        return result

    def _resumed_run(self) -> bool:
        return bool(self.config_init[self.subcommand].get("ckpt_path"))

    def _release_run(self) -> None:
        if self._run is not None:
            unlock_run(self._run)
        forget_decision()

    def _evaluate_with_best(self, subcommand: str) -> None:
        kwargs = self._weights_only(subcommand)
        name = self.model.hparams.model_name_or_path
        decision = self._shared_decision(lambda: evaluation_decision(self.trainer, kwargs.get("ckpt_path"), name), subcommand)
        self._run = None  # evaluation does not lock the run it writes into
        kwargs["ckpt_path"] = decision["ckpt_path"]
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
        save_config_callback=RunConfigWriter,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False},  # a config error is one line (main_guard), not 110 lines of usage
        auto_configure_optimizers=False,  # the module's configure_optimizers is the one (parameter groups, schedule)
        args=args,
        run=run,
    )


def main() -> None:
    """Console entry point: one-line errors, exit code 2."""
    try:
        main_guard(cli_main)
    finally:
        end_distributed()


def end_distributed() -> None:
    """Shut the process group down before the interpreter exits: left to interpreter shutdown, gloo's threads were
    sometimes destroyed while joinable, and the process aborted (SIGABRT) after its work was done."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
