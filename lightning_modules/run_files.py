"""Where a run's files live: ``runs/<name>/version_N/`` with ``checkpoints/`` inside."""

from __future__ import annotations

from pathlib import Path

import lightning as L


def run_dir(trainer: L.Trainer) -> Path:
    """The directory of this run's logs (``runs/<name>/version_N``), or the trainer's root without a logger."""
    return Path(trainer.log_dir or trainer.default_root_dir)


def checkpoint_dir(trainer: L.Trainer) -> Path:
    """Where the best-checkpoint callback writes (its ``dirpath``, by default ``<run dir>/checkpoints``)."""
    callback = trainer.checkpoint_callback
    dirpath = getattr(callback, "dirpath", None)
    return Path(dirpath) if dirpath else run_dir(trainer) / "checkpoints"


def share_run_directory(loggers: list) -> None:
    """Loggers writing under the same ``save_dir/name`` log into one ``version_N``, the first logger's.

    Each Lightning logger picks its own next version, so TensorBoard + CSV in one place would split a run over
    version_0 and version_1; the run's files (config, checkpoints, export) live in the first logger's.
    """
    first = loggers[0] if loggers else None
    if first is None or getattr(first, "root_dir", None) is None or not hasattr(first, "_get_next_version"):
        return
    # not first.version: that would fix the first logger's version now, before a resume can choose the run's
    version = first._version if first._version is not None else first._get_next_version()
    for logger in loggers[1:]:
        if hasattr(logger, "_version") and getattr(logger, "root_dir", None) == first.root_dir:
            logger._version = version


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
