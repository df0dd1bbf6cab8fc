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
