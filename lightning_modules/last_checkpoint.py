"""Keep ``last.ckpt`` fresh: every epoch, every N steps if asked, and when the run is told to stop.

Lightning's ``ModelCheckpoint`` rewrites ``last.ckpt`` only when a monitored top-k checkpoint is saved (so after a
plateau it is stale) and cannot combine an every-epoch and an every-N-steps trigger; hence this small callback.
The best checkpoint is still chosen on the monitored metric (``BestCheckpoint``: ties go to the lower loss).
Signals are turned into a stop by ``GracefulStop``; this callback saves when that stop ends ``fit``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from resumen.core.files import remove_stale_temporaries
from resumen.lightning_modules import compat
from resumen.lightning_modules.graceful_stop import GracefulStop
from resumen.lightning_modules.run_files import checkpoint_dir, run_dir

# Exit status of a preempted run: 128 + SIGTERM, what a shell reports for a process ended by SIGTERM.
PREEMPTED_EXIT_CODE = 143


class LastCheckpoint(Checkpoint):
    """Save ``last.ckpt`` (the full training state) at every epoch end, every N training steps, and on a stop."""

    def __init__(self, every_n_train_steps: int = 0, save_on_preemption: bool = True) -> None:
        """When ``last.ckpt`` is written (always after the epoch's validation, so it carries its metrics).

        Args:
            every_n_train_steps: also save every N optimizer steps (0 = epoch ends only). Long epochs (the full
                MLSUM: 33k steps at batch 8) lose at most N steps to a kill. An epoch's last step is saved after
                that epoch's validation instead.
            save_on_preemption: on SIGTERM (SLURM, Kubernetes), SIGUSR1 or Ctrl-C, save at the end of the current
                batch (on every rank at the same batch), print the resume command and exit with code 143 (130
                for Ctrl-C). SIGUSR1 is left to Lightning when its SLURM auto-requeue is on.
        """
        super().__init__()
        if every_n_train_steps < 0:
            from resumen.core.errors import ResumenError

            raise ResumenError(f"last_checkpoint.every_n_train_steps must be 0 (off) or more (got {every_n_train_steps}).")
        self.every_n_train_steps = every_n_train_steps
        self.save_on_preemption = save_on_preemption
        self.path: Path | None = None
        self.config_path: Path | None = None
        self.preempted = False
        self.stopper: GracefulStop | None = None  # its partner (lightning_modules/fit_callbacks.py): who stopped the fit
        self._last_saved_step = -1

    # --------------------------------------------------------------------------------------------- setup
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self.path = checkpoint_dir(trainer) / "last.ckpt"
        self.config_path = run_dir(trainer) / "config.yaml"  # what LightningCLI saved: the resume command uses it
        if trainer.is_global_zero:
            for leftover in remove_stale_temporaries(self.path.parent):
                rank_zero_info(f"Removed {leftover}, left by a run that was killed while saving.")

    # ---------------------------------------------------------------------------------------------- saves
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if not self.every_n_train_steps or step % self.every_n_train_steps or step == self._last_saved_step:
            return
        # Saved before the epoch's validation, an epoch's last step would resume as if that validation had run.
        if not compat.training_epoch_last_batch(trainer):
            self.save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer)  # after validation and after BestCheckpoint picked the best (callback order)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if compat.fit_validation_in_progress(trainer):  # a stop mid-validation: the resumed run validates it all
            compat.restart_validation_from_first_batch(checkpoint)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # Lightning ends fit with SIGTERMException between two batches (or in validation): a consistent state.
        if not isinstance(exception, SIGTERMException) or not self.save_on_preemption or self.path is None:
            return
        self.save(trainer)
        self.preempted = True
        reason = self.stopper.reason if self.stopper is not None else "SIGTERM"
        verb = "Stopped" if reason.startswith("Ctrl-C") else "Preempted"
        rank_zero_info(
            f"{verb} by {reason} at step {trainer.global_step}: saved {self.path}.\n"
            f"Resume with: python scripts/train.py fit --config {self.config_path} --ckpt_path last"
        )

    def save(self, trainer: L.Trainer) -> None:
        if self.path is None or trainer.sanity_checking or trainer.fast_dev_run:
            return
        # The full training state; called on every rank, the strategy writes on rank 0 (or each rank its shard).
        trainer.save_checkpoint(self.path, weights_only=False)
        self._last_saved_step = trainer.global_step
