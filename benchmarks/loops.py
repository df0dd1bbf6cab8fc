"""Three training loops fed the identical pre-built batches: a plain PyTorch loop, our module under Lightning, and
``Seq2SeqTrainer``. Only the loop differs, so their time per step is the loop's cost.

The same optimizer on every side: AdamW (torch's fused kernel), lr 5e-5, weight decay 0.01 except biases and
normalisation weights, eps 1e-8, linear decay with no warm-up, no gradient clipping. Lightning and
``Seq2SeqTrainer`` both log to TensorBoard every ``LOG_EVERY`` steps; progress bars are off on both.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.measure import peak_rss_gib
from benchmarks.phases import PhaseClock

LEARNING_RATE, WEIGHT_DECAY, EPS, LOG_EVERY = 5e-5, 0.01, 1e-8, 10
LOOPS = ("plain PyTorch", "ours (Lightning)", "Seq2SeqTrainer")


def make_batches(model_dir: Path, files: dict[str, str], batch_size: int, count: int, path: Path, **settings: Any) -> Path:
    """The first ``count`` training batches of our data module (the recipe's settings), saved as tensors."""
    from benchmarks.runners import ours_datamodule

    data = ours_datamodule(model_dir, files, batch_size, **settings)
    data.setup("fit")
    batches = []
    while len(batches) < count:  # epochs repeat until there are enough
        for batch in data.train_dataloader():
            batches.append({key: batch[key] for key in ("input_ids", "attention_mask", "labels")})
            if len(batches) == count:
                break
    torch.save(batches, path)
    return path


def load_batches(path: str) -> list[dict[str, torch.Tensor]]:
    return torch.load(path, weights_only=True)


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast(precision: str):
    if precision == "bf16-mixed":
        return torch.autocast(_device().type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _result(clock: PhaseClock, batches: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
    timed = batches[clock.warmup : clock.warmup + clock.steps]
    samples = sum(b["input_ids"].shape[0] for b in timed)
    result = clock.result()
    result["samples_per_sec"] = samples / (result["seconds_per_step"] * clock.steps)
    result["peak_rss_gib"] = peak_rss_gib()  # the process's (a fresh one: benchmarks/measure.py)
    if torch.cuda.is_available():
        result["cuda_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    result["batches_sha"] = _fingerprint(timed)
    return result


def _fingerprint(batches: list[dict[str, torch.Tensor]]) -> int:
    """A checksum of the timed batches: every loop must report the same one."""
    return int(sum(int(b["input_ids"].sum()) * (i + 1) + int((b["labels"] != -100).sum()) for i, b in enumerate(batches)))


def plain_loop(model_dir: str, batches_path: str, warmup: int, steps: int, precision: str) -> dict[str, Any]:
    """The minimum: forward, backward, optimizer step, scheduler step, zero the gradients."""
    from torch.utils.data import DataLoader
    from transformers import AutoModelForSeq2SeqLM, get_linear_schedule_with_warmup

    torch.manual_seed(42)
    batches = load_batches(batches_path)
    device = _device()
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).to(device).train()
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "layer_norm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "layer_norm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
        lr=LEARNING_RATE,
        eps=EPS,
        fused=True,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, warmup + steps)
    clock = PhaseClock(warmup, steps)
    clock.watch(optimizer)
    with clock.attached(model):
        for batch in DataLoader(batches[: warmup + steps], batch_size=None):
            batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
            with _autocast(precision):
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    return _result(clock, batches)


def lightning_loop(
    model_dir: str,
    batches_path: str,
    warmup: int,
    steps: int,
    precision: str,
    module_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``Seq2SeqSummarizer`` (its training step, hooks and optimizer) under ``lightning.Trainer``; ``module_settings``
    turns its options (``dropout_rate``, ``compile``)."""
    import lightning as L
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch.utils.data import DataLoader

    from resumen.core.torch_settings import apply_torch_settings
    from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer
    from resumen.lightning_modules.training_monitors import training_monitors

    L.seed_everything(42, verbose=False)
    batches = load_batches(batches_path)
    module = Seq2SeqSummarizer(
        model_dir,
        learning_rate=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY,
        adam_epsilon=EPS,
        **(module_settings or {}),
    )
    clock = PhaseClock(warmup, steps)

    class WatchOptimizer(L.Callback):
        def on_train_start(self, trainer, pl_module):
            clock.watch(trainer.optimizers[0])

    with tempfile.TemporaryDirectory() as logs, clock.attached(module.model):
        trainer = L.Trainer(
            max_steps=warmup + steps,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            log_every_n_steps=LOG_EVERY,
            logger=TensorBoardLogger(logs),
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            precision=precision,
            devices=1,
            callbacks=[WatchOptimizer(), *training_monitors()],
        )
        apply_torch_settings(trainer.strategy.root_device, module.hparams.allow_tf32)  # as the CLI does
        trainer.fit(module, train_dataloaders=DataLoader(batches[: warmup + steps], batch_size=None))
    return _result(clock, batches)


def trainer_loop(model_dir: str, batches_path: str, warmup: int, steps: int, precision: str) -> dict[str, Any]:
    """``Seq2SeqTrainer.train()`` on the same batches (one pre-built batch per item, in order)."""
    from transformers import AutoModelForSeq2SeqLM, Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

    batches = load_batches(batches_path)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    clock = PhaseClock(warmup, steps)

    class WatchOptimizer(TrainerCallback):
        def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
            clock.watch(getattr(optimizer, "optimizer", optimizer))  # accelerate's wrapper steps the torch optimizer

    with tempfile.TemporaryDirectory() as output_dir, clock.attached(model):
        arguments = Seq2SeqTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=1,
            max_steps=warmup + steps,
            learning_rate=LEARNING_RATE,
            weight_decay=WEIGHT_DECAY,
            adam_epsilon=EPS,
            optim="adamw_torch_fused",
            lr_scheduler_type="linear",
            warmup_steps=0,
            max_grad_norm=0.0,
            logging_strategy="steps",
            logging_steps=LOG_EVERY,
            report_to=["tensorboard"],
            save_strategy="no",
            use_cpu=not torch.cuda.is_available(),
            bf16=precision == "bf16-mixed",
            disable_tqdm=True,
            seed=42,
            train_sampling_strategy="sequential",
            dataloader_num_workers=0,
        )
        trainer = Seq2SeqTrainer(
            model=model,
            args=arguments,
            train_dataset=batches[: warmup + steps],
            data_collator=lambda items: items[0],
            callbacks=[WatchOptimizer()],
        )
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its own summary line per run
            trainer.train()
    return _result(clock, batches)
