"""What a fit watches besides the loss: its health (NaN or infinite, the gradient norm), its throughput, and sample
summaries. Callbacks, so the LightningModule keeps to the model; the CLI adds them to every run
(``training_monitors()``), and the benchmark adds the same ones so it measures what users run.

None of them reads a value from the device between logged steps: on a GPU each read waits for the step to finish
(tests/test_no_sync.py checks this on the CPU, benchmarks/gpu_syncs.py on a GPU).
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from resumen.core.errors import ResumenError
from resumen.lightning_modules import compat


def training_monitors() -> list[L.Callback]:
    """The monitors every fit runs with."""
    return [LossHealth(), Throughput(), SampleSummaries()]


class LossHealth(L.Callback):
    """Stops with advice when the training loss turns NaN or infinite, and logs the gradient norm.

    The loss's finiteness is accumulated on the device each step and read once on logged steps (before that step's
    backward) and before any checkpoint is written, so no checkpoint holds weights a NaN loss has updated.
    """

    def __init__(self) -> None:
        """No settings: the check and the norm follow the trainer's ``log_every_n_steps``."""
        self._nonfinite: torch.Tensor | None = None  # any non-finite loss since the last check
        self._checked_until = 0  # the first step not yet checked

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        bad = ~torch.isfinite(loss.detach())
        self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad
        if compat.should_update_logs(trainer):
            self.check(trainer, pl_module)

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer) -> None:
        if not compat.should_update_logs(trainer):
            return
        # One fused norm over all gradients, one value (Lightning's grad_norm reads every parameter's norm).
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if grads:
            pl_module.log("train/grad_norm", torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0))), on_step=True)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self.check(trainer, pl_module)

    def check(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Raise with advice when a loss since the last check was NaN or infinite (one host read)."""
        step = trainer.global_step
        if self._nonfinite is not None and bool(self._nonfinite):
            steps = f"{self._checked_until}-{step}" if self._checked_until < step else str(step)
            learning_rate = pl_module.hparams.get("learning_rate", "?")
            raise ResumenError(
                f"the training loss became NaN or infinite at step {steps} (checked on logged steps): lower the "
                f"learning rate (now {learning_rate}), use bf16-mixed or 32-true instead of fp16, and "
                "resume from the last good checkpoint (--ckpt_path last)."
            )
        self._checked_until = step + 1  # the steps up to this one were finite


class Throughput(L.Callback):
    """``train/samples_per_sec`` and ``train/tokens_per_sec`` (non-padding source tokens) over the steps since the
    last logged one, on this rank; and the fit's totals the run report shows (``fit_rates``). Validation time is
    not counted in either."""

    def __init__(self) -> None:
        """No settings: one window per ``log_every_n_steps``."""
        self._reset()
        self._fit_started = 0.0
        self._validation_started = 0.0
        self.validation_seconds = 0.0  # the fit's validation time, sanity check included
        self.samples = 0  # the fit's training samples on this rank
        self._fit_tokens: torch.Tensor | None = None  # a device sum, read once when the report asks

    def _reset(self) -> None:
        self._started: float | None = None
        self._samples = 0  # counted on the host
        self._tokens: torch.Tensor | None = None  # a device sum, read once per window

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_started = time.perf_counter()
        self.validation_seconds, self.samples, self._fit_tokens = 0.0, 0, None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation_started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.validation_seconds += time.perf_counter() - self._validation_started
        self._started = None  # the next window starts at the next training batch, not before validation

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self._started is None:
            self._started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        size = batch["input_ids"].shape[0]
        self._samples += size
        self.samples += size
        tokens = batch["attention_mask"].sum()
        self._tokens = tokens if self._tokens is None else self._tokens + tokens
        self._fit_tokens = tokens if self._fit_tokens is None else self._fit_tokens + tokens
        if not compat.should_update_logs(trainer):
            return
        seconds = max(time.perf_counter() - (self._started or time.perf_counter()), 1e-9)
        pl_module.log_dict(
            {"train/samples_per_sec": self._samples / seconds, "train/tokens_per_sec": float(self._tokens) / seconds}, on_step=True, batch_size=size
        )
        self._reset()

    def fit_rates(self, world_size: int) -> dict[str, float]:
        """The fit so far: its time, validation time, and training samples and tokens per second on all ranks
        (each rank counts its own share of the batches)."""
        total = time.perf_counter() - self._fit_started
        training = max(total - self.validation_seconds, 1e-9)
        tokens = float(self._fit_tokens) if self._fit_tokens is not None else 0.0
        return {
            "seconds_total": round(total, 2),
            "seconds_validation": round(self.validation_seconds, 2),
            "train_samples_per_sec": round(self.samples * world_size / training, 2),
            "train_tokens_per_sec": round(tokens * world_size / training, 1),
        }


class SampleSummaries(L.Callback):
    """Keeps the first (article, reference, summary) triples of each validation and of test: validation's go to
    TensorBoard as ``val/samples`` (how many: ``--model.log_text_samples``), test's are printed after ``test``."""

    TEST_SAMPLES = 3

    def __init__(self) -> None:
        """No settings of its own: the count is the module's ``log_text_samples`` (older configs set it there)."""
        self.validation: list[tuple[str, str, str]] = []
        self.test: list[tuple[str, str, str]] = []

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.validation = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.test = []

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._keep(self.validation, int(pl_module.hparams.get("log_text_samples", 3)), pl_module, outputs, batch)

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._keep(self.test, self.TEST_SAMPLES, pl_module, outputs, batch)

    @staticmethod
    def _keep(samples: list, limit: int, pl_module: L.LightningModule, outputs: Any, batch: Any) -> None:
        room = limit - len(samples)
        if room <= 0 or not outputs or "summaries" not in outputs:  # this batch was not generated
            return
        articles = pl_module.tokenizer.batch_decode(batch["input_ids"][:room], skip_special_tokens=True)
        samples += list(zip(articles, batch["reference"], outputs["summaries"]))[:room]

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from lightning.pytorch.loggers import TensorBoardLogger

        if not self.validation or trainer.sanity_checking:
            return
        table = "\n\n---\n\n".join(
            f"**Article:** {article[:1000]}\n\n**Reference:** {reference}\n\n**Generated:** {generated}" for article, reference, generated in self.validation
        )
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text("val/samples", table, global_step=trainer.global_step)
