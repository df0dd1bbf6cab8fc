"""Stop on a scheduler's signal without hanging, on one process or many.

SIGTERM (SLURM, Kubernetes), SIGUSR1 (SLURM's warning) and Ctrl-C (SIGINT) only set a flag: a signal handler that
runs a collective deadlocks (Lightning 2.6 broadcasts inside its SIGTERM handler, and only rank 0's signal counts).
At the end of every batch the ranks agree on the flag (one all-reduce of one integer, only with several ranks), and
every rank then stops at the same batch, through Lightning's own stop points: ``fit`` saves ``last.ckpt`` (the
``last_checkpoint`` callback) and the process exits 143 (130 for Ctrl-C); ``validate`` and ``test`` exit 143
without results; ``predict`` keeps the predictions already written and exits 143.

A watchdog bounds the time: a process still running ``timeout`` seconds after its signal (a rank stuck in a
collective because another rank died) is ended with the same exit code.

Before the first stage starts (the model loading, the data being prepared) there is nothing to save: a signal then
stops the process at once with one line and the same exit code (``install_early``). After the last batch of a stage
the work is complete: a signal then lets the process finish writing its report and results, and says so.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from resumen.core.errors import ResumenError, StopRequested
from resumen.lightning_modules import compat

# 128 + the signal number, as a shell reports a process ended by it: SIGTERM and SIGUSR1 stop as a preemption.
EXIT_CODES = {signal.SIGTERM: 128 + signal.SIGTERM, signal.SIGUSR1: 128 + signal.SIGTERM, signal.SIGINT: 128 + signal.SIGINT}
NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGUSR1: "SIGUSR1", signal.SIGINT: "Ctrl-C (SIGINT)"}


class _StopFlag:
    """The process-wide record of the first stop signal, and the watchdog it starts."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.timeout = 300.0
        self.single_process_trainer: Any = None  # with one rank nothing needs agreeing: the stop is marked at once
        self.stage_started = False  # before a stage, a signal stops the process at once (nothing to save)
        self._cancel = threading.Event()

    def handler(self, signum: int, frame: Any) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without saving
        if not self.stage_started and signum != signal.SIGINT:
            raise StopRequested(NAMES.get(signum, "a signal"), EXIT_CODES.get(signum, 143))
        if self.signum is None:
            self.signum = signum
            self._cancel.clear()
            threading.Thread(target=self._watchdog, args=(EXIT_CODES[signum],), daemon=True).start()
            if self.single_process_trainer is not None:
                compat.mark_stop_requested(self.single_process_trainer)  # a flag only: no collective, no I/O

    def _watchdog(self, code: int) -> None:
        if not self._cancel.wait(self.timeout):
            sys.stderr.write(
                f"error: still running {self.timeout:.0f} s after {NAMES.get(self.signum, 'the signal')} (a rank "
                f"stuck waiting for another?): exiting with {code}. --stop.timeout sets this limit.\n"
            )
            sys.stderr.flush()
            os._exit(code)

    def reset(self) -> None:
        self.signum = None
        self.single_process_trainer = None
        self._cancel.set()


FLAG = _StopFlag()


def install_early() -> None:
    """SIGTERM and SIGUSR1 handled from the process's start (they ended it without a word while the model loaded).
    Lightning keeps these as the handlers it restores after each stage, so a signal after the last batch sets the
    flag instead of killing the process in the middle of its report."""
    for signum in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, FLAG.handler)


def signal_after_the_work() -> str | None:
    """The signal that arrived once every batch was done (the work is complete), or None."""
    return NAMES.get(FLAG.signum) if FLAG.stage_started and FLAG.signum is not None else None


class GracefulStop(Callback):
    """Turn SIGTERM, SIGUSR1 and Ctrl-C into a stop every rank makes at the same batch, within ``timeout``."""

    def __init__(self, timeout: float = 300.0) -> None:
        """Stop settings (every command: fit, validate, test, predict).

        Args:
            timeout: seconds a process may take to stop after its signal, saving included; past it the process
                exits anyway (with 143, or 130 after Ctrl-C), so a rank stuck waiting for a dead one cannot hang
                the job. Raise it when saving a checkpoint takes longer (very large models, slow disks).
        """
        super().__init__()
        if timeout <= 0:
            raise ResumenError(f"stop.timeout must be positive (got {timeout}).")
        self.timeout = timeout
        self.signum: int | None = None  # the agreed signal, once the ranks agreed
        self._group: Any = None

    @property
    def received(self) -> int:
        """The signal that stops the run: agreed by the ranks, or this process's own (one rank stops at once)."""
        return self.signum or FLAG.signum or signal.SIGTERM

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.received, 143)

    @property
    def reason(self) -> str:
        return NAMES.get(self.received, "a signal")

    # ------------------------------------------------------------------------------------------------ set up
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        FLAG.reset()
        FLAG.timeout = self.timeout
        self.signum = None
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            # The agreement runs on the CPU: a gloo group beside NCCL, so it never waits for the GPU.
            gloo = torch.distributed.get_backend() == "gloo"
            self._group = None if gloo else torch.distributed.new_group(backend="gloo")

    def _install(self, trainer: L.Trainer) -> None:
        """Our handlers replace the ones Lightning registered at the start of the stage."""
        if threading.current_thread() is not threading.main_thread():
            return
        FLAG.stage_started = True
        FLAG.single_process_trainer = trainer if trainer.world_size == 1 else None
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            if signum == signal.SIGUSR1 and _slurm_requeues_on_sigusr1(trainer):
                continue  # Lightning's SLURM auto-requeue saves and requeues on SIGUSR1 itself
            signal.signal(signum, FLAG.handler)

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._install(trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._install(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._install(trainer)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._install(trainer)

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._install(trainer)

    # ------------------------------------------------------------------------------------------- agreement
    def agreed(self, trainer: L.Trainer) -> bool:
        """Whether any rank got a stop signal (the same answer on every rank: a collective with several)."""
        local = FLAG.signum or 0
        if self._group is not None or (trainer.world_size > 1 and torch.distributed.is_initialized()):
            value = torch.tensor([local], dtype=torch.int64)
            torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX, group=self._group)
            local = int(value.item())
        if local:
            self.signum = local
        return bool(local)

    def _stop_at_lightnings_next_point(self, trainer: L.Trainer) -> None:
        # Every rank takes part in the agreement at every batch (a rank-local shortcut would leave the others waiting).
        if self.agreed(trainer):
            compat.mark_stop_requested(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._stop_at_lightnings_next_point(trainer)

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._stop_at_lightnings_next_point(trainer)

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._stop_at_lightnings_next_point(trainer)

    def on_predict_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        # Lightning's predict loop has no stop point of its own: stop before the next batch, once the prediction
        # writer has kept the batches already done.
        if self.agreed(trainer):
            raise SIGTERMException()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        FLAG.single_process_trainer = None  # the stage is over: a later signal finds no trainer to stop


def _slurm_requeues_on_sigusr1(trainer: L.Trainer) -> bool:
    from lightning.fabric.plugins.environments import SLURMEnvironment

    environment = getattr(trainer.strategy, "cluster_environment", None)
    return isinstance(environment, SLURMEnvironment) and environment.auto_requeue
