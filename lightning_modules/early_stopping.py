"""Early stopping as an option: off unless ``--early_stopping.patience N`` is given."""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping

from resumen.core.runs import epoch_number


class OptionalEarlyStopping(EarlyStopping):
    """Lightning's ``EarlyStopping``, off by default, watching ``val/rougeL`` (higher is better) when on."""

    def __init__(
        self,
        patience: int | None = None,
        monitor: str = "val/rougeL",
        mode: Literal["min", "max"] = "max",
        min_delta: float = 0.0,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_finite: bool = True,
    ) -> None:
        """Early-stopping settings.

        Args:
            patience: stop after this many validations without improvement; ``null`` (the default) never stops.
            monitor: the validation metric to watch (``val/loss`` with ``mode=min`` to watch the loss).
            mode: ``max`` when a higher ``monitor`` is better (ROUGE), ``min`` when lower is (loss).
            min_delta: the smallest change that counts as an improvement.
            stopping_threshold: stop as soon as ``monitor`` reaches this value.
            divergence_threshold: stop as soon as ``monitor`` is worse than this value.
            check_finite: stop when ``monitor`` becomes NaN or infinite.
        """
        super().__init__(
            monitor=monitor,
            min_delta=min_delta,
            patience=patience or 0,
            mode=mode,
            strict=True,
            check_finite=check_finite,
            stopping_threshold=stopping_threshold,
            divergence_threshold=divergence_threshold,
        )
        self.enabled = patience is not None

    # Off: its two public hooks do nothing (Lightning's EarlyStopping checks in one or the other), so nothing
    # private of Lightning's is overridden.
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled:
            super().on_validation_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled:
            super().on_train_epoch_end(trainer, pl_module)

    def stop_summary(self) -> dict[str, Any]:
        """For the run report: whether, when and why training stopped early."""
        if not self.enabled or not self.stopping_reason_message:
            return {}
        return {"stopped_early_at_epoch": epoch_number(self.stopped_epoch), "stopped_early_because": self.stopping_reason_message}
