"""Fine-tune, evaluate and run a Spanish news summariser with LightningCLI.

    python scripts/train.py fit --config configs/demo.yaml
    python scripts/train.py test --config configs/demo.yaml       # uses the best checkpoint of the latest run
    python scripts/train.py predict --config configs/demo.yaml --data.predict_file articles.txt
    python scripts/train.py fit --config configs/mlsum_flan_t5_small.yaml --config configs/trainer/ddp.yaml

``validate``/``test``/``predict`` default to the best checkpoint of the newest run under the logger's directory;
``--ckpt_path PATH`` picks another and ``--ckpt_path pretrained`` evaluates the model as loaded (no fine-tuning).
``fit --ckpt_path last`` resumes from the newest run's ``last.ckpt`` (step, epoch, optimizer and scheduler state).
Set RESUMEN_DEBUG=1 (or pass --debug) to see full tracebacks.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lightning_modules.cli_support import main_guard  # noqa: E402


def build_cli_class():
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningCLI
    from lightning.pytorch.utilities import rank_zero_info

    from lightning_modules.callbacks import HFExport, JsonlPredictionWriter
    from lightning_modules.errors import ResumenError
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
                    "checkpoint.save_last": True,
                    "checkpoint.save_top_k": 1,
                    "checkpoint.filename": "best-epoch{epoch:02d}-rougeL{val/rougeL:.2f}",
                    "checkpoint.auto_insert_metric_name": False,
                }
            )
            parser.add_lightning_class_args(HFExport, "export")
            parser.add_lightning_class_args(JsonlPredictionWriter, "predictions")
            parser.add_lightning_class_args(RunReport, "report")

        def before_instantiate_classes(self) -> None:
            # The requested precision, checked before any weights load (on CPU Lightning would silently turn
            # 16-mixed into bf16-mixed, so the resolved value is not enough).
            from lightning_modules.loading import check_precision, load_config

            config = self.config[self.subcommand] if self.subcommand else self.config
            if config.trainer.enable_progress_bar is False:
                # Lightning refuses a progress-bar callback with the bar off; a log-only run (SLURM) should not fail.
                defaults = self.trainer_defaults.get("callbacks", [])
                self.trainer_defaults["callbacks"] = [c for c in defaults if "ProgressBar" not in type(c).__name__]
            name = config.model.model_name_or_path
            check_precision(config.trainer.precision, load_config(name, config.model.trust_remote_code), name)

        def _check_settings(self, subcommand: str) -> None:
            self.model.check_precision(self.trainer.precision)
            kwargs = self.config_init[subcommand]
            if kwargs.get("weights_only") is None:  # our checkpoints hold tensors and plain values: unpickle nothing else
                kwargs["weights_only"] = True

        def before_fit(self) -> None:
            self._check_settings("fit")
            kwargs = self.config_init["fit"]
            if kwargs.get("ckpt_path") == "last":  # Lightning looks only in this (new) run's directory
                last = find_run_checkpoint(self.trainer, "last.ckpt")
                if last is None:
                    raise ResumenError("--ckpt_path last: no last.ckpt found under the run directory to resume from.")
                rank_zero_info(f"Resuming from {last}")
                kwargs["ckpt_path"] = str(last)
            self._use_checkpoint_vocabulary(kwargs.get("ckpt_path"))

        def _use_checkpoint_vocabulary(self, ckpt_path: str | None) -> None:
            """A checkpoint trained with an extended vocabulary fixes the tokenizer before the data is tokenised."""
            if not ckpt_path or not Path(ckpt_path).is_file():
                return
            import torch

            checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
            if "added_characters" in checkpoint:  # the checkpoint decides, extended or not
                self.datamodule.use_added_characters(checkpoint["added_characters"])
                self.model.use_added_characters(checkpoint["added_characters"])

        def _use_best_checkpoint(self, subcommand: str) -> None:
            self._check_settings(subcommand)
            kwargs = self.config_init[subcommand]
            if kwargs.get("ckpt_path") == "pretrained":
                kwargs["ckpt_path"] = None
                rank_zero_info(f"Using the model as loaded from {self.model.hparams.model_name_or_path} (no checkpoint).")
                return
            if kwargs.get("ckpt_path"):
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
            checkpoint = self.trainer.checkpoint_callback
            lines = [f"Logs (tensorboard --logdir {Path(self.trainer.log_dir).parent}): {self.trainer.log_dir}"]
            if checkpoint is not None and checkpoint.best_model_path:
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
        args=args,
        run=run,
    )


def main() -> None:
    """Console entry point: one-line errors, exit code 2."""
    main_guard(cli_main)


if __name__ == "__main__":
    main()
