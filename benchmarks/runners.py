"""The measured runs: our Lightning pipeline and the transformers ``Seq2SeqTrainer`` course recipe, side by side.

Every runner loads the same saved model directory through ``from_pretrained`` and times only steady-state work
(after warm-up steps), counting the non-padding tokens of exactly the timed batches.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from resumen.core.prompts import SUMMARY_TEMPLATE, format_prompt
from resumen.core.generation import GenerationSettings
from resumen.core.shipped import spanish_rouge_path
from benchmarks.measure import synchronize, t5_training_flops

MAX_TARGET = 128
# Source tokens per article: flan-t5-small's 512 (MLSUM articles exceed it); the tiny smoke run keeps steps short.
# The model directory's tokenizer carries it (model_max_length), so every runner reads the same value.
SOURCE_LENGTH = {"small": 512, "tiny": 128}
# the "lengths" section: what a longer article costs a training step (T5's relative positions allow any length)
LONG_SOURCE_LENGTHS = {"small": (512, 1024, 2048), "tiny": (128, 256, 512)}
# Both sides score generated summaries with the same Spanish ROUGE: the course side through the evaluate module.
SPANISH_ROUGE_MODULE = Path(spanish_rouge_path())
SIZES = {
    # flan-t5-small's shape (d_model 512, 8+8 layers, 6 heads, d_ff 1024, 32k vocabulary)
    "small": {"d_model": 512, "num_layers": 8, "num_heads": 6, "d_kv": 64, "d_ff": 1024, "vocab_size": 32128},
    "tiny": {"d_model": 64, "num_layers": 2, "num_heads": 4, "d_kv": 16, "d_ff": 128, "vocab_size": 4096},
}


def on_gpu() -> bool:
    return torch.cuda.is_available()


def automatic_precision() -> str:
    """What a run of ours picks when ``--trainer.precision`` is unset (bf16-mixed where the hardware has bf16)."""
    from resumen.core.precision import choose_precision

    return choose_precision("auto")[0]


def build_model(size: str, tokenizer: Any, out_dir: Path) -> Path:
    """A Flan-T5-shaped model with random weights and an untied LM head (T5 v1.1, as flan-t5-small: 77M
    parameters at the small size), saved as a Hugging Face directory."""
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    shape = dict(SIZES[size])
    shape["vocab_size"] = max(shape["vocab_size"], len(tokenizer))
    config = T5Config(
        **shape,
        num_decoder_layers=shape["num_layers"],
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config)
    if model.lm_head.weight is model.shared.weight:  # transformers 5 ties T5 configs built in code; v1.1 is untied
        model.lm_head.weight = torch.nn.Parameter(torch.empty_like(model.shared.weight).normal_(0.0, 1.0))
        model.config.tie_word_embeddings = False
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


# ------------------------------------------------------------------------------------------------ ours
class _StepClock:
    """Lightning callback: wall time and token counts of the steps after warm-up.

    The host waits for the GPU only at the window's two ends, and the timed batches are counted after it, so the
    clock adds no synchronisation to the steps it times. Steps are optimizer steps (``global_step``), which keep
    counting across epochs.
    """

    def __init__(self, warmup: int, config: Any) -> None:
        self.warmup, self.config = warmup, config
        self.start = self.end = 0.0
        self.samples = self.tokens = self.computed = 0
        self.flops = 0.0
        self.timed: list[tuple[torch.Tensor, torch.Tensor]] = []  # (source mask, target mask) of each timed step

    def callback(self):
        import lightning as L

        clock = self

        class Clock(L.Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                step = trainer.global_step  # optimizer steps done
                if step == clock.warmup:
                    synchronize()
                    clock.start = time.perf_counter()
                elif step > clock.warmup:
                    clock.timed.append((batch["attention_mask"], batch["labels"] != -100))
                    if step == trainer.max_steps:
                        synchronize()
                        clock.end = time.perf_counter()

        return Clock()

    def count(self, source_mask: torch.Tensor, target_mask: torch.Tensor) -> None:
        source, target = source_mask.sum(dim=1).tolist(), target_mask.sum(dim=1).tolist()
        self.samples += len(source)
        self.tokens += int(sum(source) + sum(target))
        self.computed += source_mask.numel() + target_mask.numel()
        for s, t in zip(source, target):
            self.flops += t5_training_flops(self.config, s, t, source_mask.shape[1], target_mask.shape[1])

    def result(self) -> dict[str, float]:
        for source, target in self.timed:
            self.count(source, target)
        self.timed = []
        seconds = self.end - self.start
        return {
            "samples_per_sec": self.samples / seconds,
            "tokens_per_sec": self.tokens / seconds,
            "flops_per_sec": self.flops / seconds,
            "padding_efficiency": self.tokens / self.computed,
        }


def source_length(model_dir: Path | str) -> int:
    import json

    return json.loads((Path(model_dir) / "tokenizer_config.json").read_text(encoding="utf-8"))["model_max_length"]


def ours_datamodule(model_dir: Path, files: dict[str, str], batch_size: int, **settings: Any):
    from resumen.datamodules.summarization import SummarizationDataModule

    return SummarizationDataModule(
        str(model_dir),
        data_files=files,
        max_train_samples=None,
        max_val_samples=None,
        max_test_samples=None,
        max_source_length=settings.pop("max_source_length", None) or source_length(model_dir),
        max_target_length=MAX_TARGET,
        batch_size=batch_size,
        coverage_samples=0,
        **settings,
    )


def ours_training(
    model_dir: Path,
    files: dict[str, str],
    batch_size: int,
    warmup: int,
    steps: int,
    precision: str | None = None,
    module_settings: dict[str, Any] | None = None,
    **settings: Any,
) -> dict[str, float]:
    """Our pipeline: ``SummarizationDataModule`` + ``Seq2SeqSummarizer`` under ``lightning.Trainer``."""
    import lightning as L
    from transformers import AutoConfig

    from resumen.core.torch_settings import apply_torch_settings
    from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer
    from resumen.lightning_modules.training_monitors import training_monitors

    L.seed_everything(42, verbose=False)
    data = ours_datamodule(model_dir, files, batch_size, **settings)
    module = Seq2SeqSummarizer(str(model_dir), learning_rate=5e-5, **(module_settings or {}))
    clock = _StepClock(warmup, AutoConfig.from_pretrained(model_dir))
    trainer = L.Trainer(
        max_steps=warmup + steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        precision=precision or automatic_precision(),
        devices=1,
        callbacks=[clock.callback(), *training_monitors()],
    )
    apply_torch_settings(trainer.strategy.root_device, module.hparams.allow_tf32)  # as the CLI does
    trainer.fit(module, data)
    return clock.result()


def ours_generation(model_dir: Path, files: dict[str, str], batch_size: int, max_new_tokens: int, num_beams: int) -> dict[str, float]:
    """Our predict path: length-sorted batches, generation only (no loss pass)."""
    import lightning as L

    from resumen.lightning_modules.metrics import SpanishRouge
    from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer

    data = ours_datamodule(model_dir, files, batch_size, eval_batch_size=batch_size)
    module = Seq2SeqSummarizer(str(model_dir), generation=GenerationSettings(max_new_tokens=max_new_tokens, num_beams=num_beams))
    data.setup("predict")
    trainer = L.Trainer(
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        devices=1,
        precision=automatic_precision(),
    )
    synchronize()
    start = time.perf_counter()
    rows = [row for batch in trainer.predict(module, datamodule=data) for row in batch]
    synchronize()
    seconds = time.perf_counter() - start
    rouge = SpanishRouge()  # the training metric's door, outside the timed part as on the course side
    rouge.update([row["summary"] for row in rows], [row["reference"] for row in rows])
    return {"summaries_per_sec": len(rows) / seconds, "rougeL": float(rouge.compute()["rougeL"])}


# ------------------------------------------------------------------------------------------ the course
def course_dataset(tokenizer: Any, rows: list[dict[str, str]], pad_to_longest: bool):
    """The course's preprocessing: prompt, truncate, and (course) pad everything to the longest in the data."""
    import datasets

    prompts = [format_prompt(SUMMARY_TEMPLATE, row["text"]) for row in rows]
    padding = "longest" if pad_to_longest else False
    encoded = tokenizer(prompts, max_length=tokenizer.model_max_length, truncation=True, padding=padding)
    labels = tokenizer(text_target=[row["summary"] for row in rows], max_length=MAX_TARGET, truncation=True, padding=padding)
    pad = tokenizer.pad_token_id
    features = {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "labels": [[t if t != pad else -100 for t in ids] for ids in labels["input_ids"]],
    }
    return datasets.Dataset.from_dict(features)


class _CountingCollator:
    """``DataCollatorForSeq2Seq`` that also counts each batch's real and computed tokens (for tokens/s)."""

    def __init__(self, tokenizer: Any, model: Any, config: Any) -> None:
        from transformers import DataCollatorForSeq2Seq

        self.inner = DataCollatorForSeq2Seq(tokenizer, model=model)
        self.clock = _StepClock(0, config)
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, features):
        batch = self.inner(features)
        self.batches.append((batch["attention_mask"], batch["labels"] != -100))
        return batch


def hf_training(
    model_dir: Path,
    train_file: str,
    batch_size: int,
    warmup: int,
    steps: int,
    pad_to_longest: bool,
    group_by_length: bool,
    precision: str,
) -> dict[str, float]:
    """``Seq2SeqTrainer`` as the course runs it (or with dynamic padding), timed over the same steps."""
    import json
    from transformers import (
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        TrainerCallback,
    )

    rows = [json.loads(line) for line in Path(train_file).read_text(encoding="utf-8").splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    collator = _CountingCollator(tokenizer, model, model.config)
    times: dict[int, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (warmup, warmup + steps):  # the window's ends: the only waits for the GPU
                synchronize()
                times[state.global_step] = time.perf_counter()

    with tempfile.TemporaryDirectory() as output_dir:
        arguments = Seq2SeqTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=batch_size,
            max_steps=warmup + steps,
            learning_rate=5e-5,
            weight_decay=0.01,
            logging_strategy="no",
            save_strategy="no",
            report_to=[],
            use_cpu=not on_gpu(),
            bf16=precision == "bf16-mixed",
            disable_tqdm=True,
            seed=42,
            train_sampling_strategy="group_by_length" if group_by_length else "random",
            dataloader_num_workers=0,
        )
        trainer = Seq2SeqTrainer(
            model=model,
            args=arguments,
            train_dataset=course_dataset(tokenizer, rows, pad_to_longest),
            data_collator=collator,
            processing_class=tokenizer,
            callbacks=[Clock()],
        )
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its own summary line per run
            trainer.train()
    collator.clock.timed = collator.batches[warmup : warmup + steps]
    collator.clock.start, collator.clock.end = times[warmup], times[warmup + steps]
    return collator.clock.result()


def hf_generation(model_dir: Path, rows: list[dict[str, str]], batch_size: int, max_new_tokens: int, num_beams: int) -> dict[str, float]:
    """``Seq2SeqTrainer.predict(predict_with_generate=True)`` on the course's padded test data, scored afterwards
    with the course's ``compute_metrics`` pattern through our Spanish ROUGE ``evaluate`` module."""
    import evaluate
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, EvalPrediction, Seq2SeqTrainer, Seq2SeqTrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    dataset = course_dataset(tokenizer, rows, pad_to_longest=True)
    with tempfile.TemporaryDirectory() as output_dir:
        arguments = Seq2SeqTrainingArguments(
            output_dir=output_dir,
            per_device_eval_batch_size=batch_size,
            predict_with_generate=True,
            report_to=[],
            use_cpu=not on_gpu(),
            bf16_full_eval=False,
            bf16=on_gpu(),
            disable_tqdm=True,
        )
        trainer = Seq2SeqTrainer(model=model, args=arguments, processing_class=tokenizer)
        synchronize()
        start = time.perf_counter()
        output = trainer.predict(dataset, max_new_tokens=max_new_tokens, num_beams=num_beams)
        synchronize()
        seconds = time.perf_counter() - start
    compute_metrics = evaluate.load(str(SPANISH_ROUGE_MODULE)).for_trainer(tokenizer)
    rouge = compute_metrics(EvalPrediction(predictions=output.predictions, label_ids=output.label_ids))
    return {"summaries_per_sec": len(rows) / seconds, "rougeL": rouge["rougeL"]}


# ------------------------------------------------------------------------------------- tokenisation
def tokenise(model_dir: str, train_file: str, validation_file: str, cache_dir: str) -> dict[str, float]:
    """Our data module's tokenisation, cold and then from the ``datasets`` cache, with this process's peak memory
    (run it in a fresh process so the peak is its own)."""
    from benchmarks.measure import peak_rss_gib

    files = {"train": train_file, "validation": validation_file}
    seconds = []
    for _ in range(2):  # the second run finds the tokenised data in the datasets cache
        data = ours_datamodule(model_dir, files, 8, cache_dir=cache_dir)
        start = time.perf_counter()
        data.setup("fit")
        seconds.append(time.perf_counter() - start)
    return {"seconds_cold": seconds[0], "seconds_cached": seconds[1], "peak_rss_gib": peak_rss_gib()}


# ------------------------------------------------------------------------------------------ padding
def padding_efficiency(model_dir: Path, files: dict[str, str], batch_size: int, **settings: Any) -> float:
    """Real tokens / computed tokens (source + labels) over one training epoch of our data module."""
    data = ours_datamodule(model_dir, files, batch_size, **settings)
    data.setup("fit")
    real = computed = 0
    for batch in data.train_dataloader():
        real += int(batch["attention_mask"].sum()) + int((batch["labels"] != -100).sum())
        computed += batch["attention_mask"].numel() + batch["labels"].numel()
    return real / computed
