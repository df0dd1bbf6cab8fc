"""One line per epoch when there is no progress bar (batch jobs, SLURM logs): a log-only fit is not silent until it
ends. The CLI adds this callback when ``--trainer.enable_progress_bar=false``."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info


def duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class EpochLine(Callback):
    """``epoch 3/12  step 150  train/loss 2.31  val/loss 2.05  val/rougeL 31.20  0:23 elapsed, ETA 0:48``."""

    def __init__(self) -> None:
        super().__init__()
        self._started = 0.0
        self._first_epoch = 0
        self._loss_sum: Any = None  # this epoch's training losses, summed on the device (read once, at its end)
        self._losses = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.monotonic()
        self._first_epoch = trainer.current_epoch  # a resumed run's ETA counts only the epochs this process ran

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._loss_sum, self._losses = None, 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            loss = loss.detach()
            self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
            self._losses += 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after validation (Lightning calls the epoch-end hooks once the epoch's validation has run)
        metrics = trainer.callback_metrics
        done = trainer.current_epoch + 1
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        parts = [f"epoch {done}/{total}" if total else f"epoch {done}", f"step {trainer.global_step}"]
        if self._losses:
            parts.append(f"train/loss {float(self._loss_sum) / self._losses:.2f}")
        for name in ("val/loss", "val/rougeL"):
            if name in metrics:
                parts.append(f"{name} {float(metrics[name]):.2f}")
        elapsed = time.monotonic() - self._started
        ran = done - self._first_epoch
        timing = f"{duration(elapsed)} elapsed"
        if total and ran > 0 and done < total:
            timing += f", ETA {duration(elapsed / ran * (total - done))}"
        rank_zero_info("  ".join(parts) + f"  {timing}")

    def state_dict(self) -> dict[str, Any]:
        return {}
