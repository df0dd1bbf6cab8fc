"""Where a run's files live (``runs/<name>/version_N/``, the paths in ``resumen.core.runs.RunLayout``) as the trainer and
its loggers see them, and the run's config written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.cli import SaveConfigCallback

from resumen.core.files import atomic_file
from resumen.core.runs import RunLayout
from resumen.lightning_modules import compat


def run_dir(trainer: L.Trainer) -> Path:
    """The run's directory (``runs/<name>/version_N``, also for a command logging in ``version_N/test``), or the
    trainer's root without a logger."""
    return run_layout(trainer).directory


def run_layout(trainer: L.Trainer) -> RunLayout:
    return RunLayout.of_log_dir(log_dir(trainer))


def log_dir(trainer: L.Trainer) -> Path:
    """``trainer.log_dir`` without its broadcast, so a hook that runs on rank 0 alone can ask (the broadcast would
    wait forever for the other ranks). Every rank logs into the same version (``use_run_version``), so no rank
    needs rank 0's answer."""
    if not trainer.loggers:
        return Path(trainer.default_root_dir)
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    first = trainer.loggers[0]  # Lightning's own rule: TensorBoard and CSV log in log_dir, others in save_dir
    directory = first.log_dir if isinstance(first, (TensorBoardLogger, CSVLogger)) else first.save_dir
    return Path(directory or trainer.default_root_dir)


def checkpoint_dir(trainer: L.Trainer) -> Path:
    """Where the best-checkpoint callback writes (its ``dirpath``, by default ``<run dir>/checkpoints``)."""
    callback = trainer.checkpoint_callback
    dirpath = getattr(callback, "dirpath", None)
    return Path(dirpath) if dirpath else run_dir(trainer) / "checkpoints"


def fixed_version(trainer: L.Trainer) -> int | str | None:
    """The version the config gives the logger (``trainer.logger.init_args.version``), if any."""
    return compat.logger_version(trainer.logger) if trainer.logger is not None else None


def use_run_version(trainer: L.Trainer, version: int | str) -> None:
    """Every logger writing under the first one's ``save_dir/name`` logs into ``version_N`` (TensorBoard + CSV: one
    run directory, not two), before any of them creates its directory."""
    first = trainer.logger
    for logger in trainer.loggers:
        if getattr(logger, "root_dir", None) == getattr(first, "root_dir", None) and hasattr(logger, "_version"):
            compat.set_logger_version(logger, version)


def keep_csv_history(logger) -> None:
    """A resumed run's CSV logger keeps the rows logged before the interruption.

    Lightning's CSV writer deletes an existing ``metrics.csv`` when it starts; the old rows are read first and
    handed back to the writer, which writes them out with the new ones at its next save.
    """
    import csv

    path = Path(logger.log_dir) / "metrics.csv"
    if not path.is_file():
        return
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows, header = list(reader), list(reader.fieldnames or [])
    writer = logger.experiment  # created now: this is where the old file is removed
    if not hasattr(writer, "metrics_keys"):  # not rank zero
        return
    writer.metrics_keys = sorted(set(writer.metrics_keys) | set(header))
    writer.metrics = [{key: value for key, value in row.items() if value != ""} for row in rows] + writer.metrics


class RunConfigWriter(SaveConfigCallback):
    """Write the command's resolved config into the run directory, atomically (a kill mid-write leaves the previous
    file): ``config.yaml`` for ``fit`` (what a resume compares), ``config.<command>.yaml`` for the others, so that
    testing a run never rewrites the config it was trained with."""

    def __init__(
        self, parser: Any, config: Any, config_filename: str = "config.yaml", overwrite: bool = False, multifile: bool = False, save_to_log_dir: bool = False
    ) -> None:
        super().__init__(parser, config, config_filename, overwrite, multifile, save_to_log_dir=False)

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # rank 0 only (Lightning's rule for save_config): the logger's own directory, no collective
        logger = trainer.logger
        directory = Path(logger.log_dir) if logger is not None and logger.log_dir else Path(trainer.default_root_dir)
        with atomic_file(RunLayout.of_log_dir(directory).command_config(stage)) as handle:
            handle.write(self.parser.dump(self.config, skip_none=False))
