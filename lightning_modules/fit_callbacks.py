"""Every callback a resumen command runs, listed once, and who reads whom.

``CONFIGURABLE``: the callbacks with options, one CLI group each (``--checkpoint.*``, ``--export.*``, ...), in the
order they run. ``fixed_callbacks``: the ones without options every command adds. ``connect``: each callback's
partners, passed explicitly (a callback never searches ``trainer.callbacks`` for another). Add a callback here and
it is on the command line, in every run and in the benchmark's fits (``training_monitors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from lightning.pytorch.callbacks import Callback

from resumen.lightning_modules.best_checkpoint import BestCheckpoint
from resumen.lightning_modules.callbacks import HFExport, JsonlPredictionWriter
from resumen.lightning_modules.early_stopping import OptionalEarlyStopping
from resumen.lightning_modules.epoch_line import EpochLine
from resumen.lightning_modules.graceful_stop import GracefulStop
from resumen.lightning_modules.last_checkpoint import LastCheckpoint
from resumen.lightning_modules.rng import RandomState
from resumen.lightning_modules.run_report import RunReport
from resumen.lightning_modules.training_monitors import Throughput, training_monitors

# CLI group -> callback class (LightningCLI instantiates them from their options)
CONFIGURABLE: dict[str, type[Callback]] = {
    "checkpoint": BestCheckpoint,
    "last_checkpoint": LastCheckpoint,
    "stop": GracefulStop,
    "early_stopping": OptionalEarlyStopping,
    "export": HFExport,
    "predictions": JsonlPredictionWriter,
    "report": RunReport,
}

C = TypeVar("C", bound=Callback)


def fixed_callbacks(progress_bar: bool) -> list[Callback]:
    """The callbacks without options: every rank's random generators in checkpoints (exact resume), the training
    monitors (loss health, gradient norm, throughput, samples), and one line per epoch when there is no bar."""
    return [RandomState(), *training_monitors(), *([] if progress_bar else [EpochLine()])]


def one(callbacks: Sequence[Any], kind: type[C]) -> C | None:
    """The run's callback of this kind, if it has one."""
    return next((c for c in callbacks if isinstance(c, kind)), None)


def connect(callbacks: Sequence[Any]) -> None:
    """Give each callback its partners: the report reads the throughput monitor's times and rates; the last
    checkpoint says who stopped the fit (the graceful stop's reason)."""
    report, last = one(callbacks, RunReport), one(callbacks, LastCheckpoint)
    if report is not None:
        report.throughput = one(callbacks, Throughput)
    if last is not None:
        last.stopper = one(callbacks, GracefulStop)


def mark_resuming(callbacks: Sequence[Any]) -> None:
    """fit resumes this run: its own export may be replaced at the end."""
    export = one(callbacks, HFExport)
    if export is not None:
        export.resuming = True
