"""Callbacks: export the best checkpoint as a Hugging Face directory, and write predictions as JSONL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter, Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from core.errors import ResumenError
from core.files import atomic_directory, atomic_file, remove_stale_temporaries
from core.prompts import SUMMARY_TEMPLATE
from lightning_modules.checkpoints import load_full_checkpoint, model_state_dict
from lightning_modules.lora import ADAPTER_DIR, base_reference, export_copy
from lightning_modules.model_card import CARD_FILE, add_test_results, build_card
from lightning_modules.run_files import run_dir


class HFExport(Callback):
    """At the end of ``fit``, save the best checkpoint's weights as a Hugging Face model directory."""

    def __init__(self, dirpath: str | None = None, overwrite: bool = False) -> None:
        """Export settings.

        Args:
            dirpath: where to write the model directory; defaults to ``<run dir>/export``.
            overwrite: replace an existing export in ``dirpath`` (otherwise ``fit`` refuses to start).
        """
        super().__init__()
        self.dirpath = dirpath
        self.overwrite = overwrite
        self.exported_to: Path | None = None
        self.resuming = False  # set by the CLI when fit resumes this run: its own export may be replaced

    def target(self, trainer: L.Trainer) -> Path:
        return Path(self.dirpath) if self.dirpath else run_dir(trainer) / "export"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        target = self.target(trainer)
        if trainer.is_global_zero:
            remove_stale_temporaries(target.parent)
        resuming_this_run = self.resuming and self.dirpath is None  # a resumed run replaces its own export
        if target.exists() and any(target.iterdir()) and not self.overwrite and not resuming_this_run:
            raise ResumenError(
                f"export directory '{target}' already holds files (a previous export?): choose another "
                "--export.dirpath or pass --export.overwrite=true to replace it when this run finishes."
            )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.interrupted:
            return
        if trainer.global_step == 0:  # nothing was trained: the base model is not a fine-tuned export
            rank_zero_warn("no training step ran, so nothing was exported.")
            return
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        state_dict, epoch = None, pl_module.current_epoch
        if best and Path(best).is_file():
            checkpoint = load_full_checkpoint(best)
            state_dict, epoch = model_state_dict(checkpoint), checkpoint.get("epoch", epoch)
        target = self.target(trainer)  # on every rank: trainer.log_dir is a collective under DDP
        if best and Path(best).is_dir():
            # FSDP/DeepSpeed shards: this process holds only its part of the weights, so consolidating belongs
            # in a separate CPU step rather than here, where every GPU would wait.
            rank_zero_warn(
                f"the best checkpoint '{best}' is sharded, so it was not exported here. Export it with: "
                f"python scripts/export.py {best} --output {target}"
            )
            return
        datamodule = trainer.datamodule
        template = getattr(datamodule, "prompt_template", None) or pl_module.trained_prompt_template or SUMMARY_TEMPLATE
        data = dict(getattr(datamodule, "hparams", {}) or {})
        coverage = getattr(datamodule, "coverage", None)
        if coverage is not None:
            data["coverage_table"] = coverage.table("Tokenizer coverage of the training data")
        if trainer.is_global_zero:
            self.exported_to = export_model(pl_module, target, state_dict, epoch, best, template, data)
            rank_zero_info(f"Exported the best model to {self.exported_to}")
        trainer.strategy.barrier()


    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A test of the checkpoint an export was made from adds its ROUGE to that export's card (model-index)."""
        intervals = getattr(pl_module, "test_intervals", {})
        checkpoint = trainer.ckpt_path
        if not trainer.is_global_zero or not intervals or not checkpoint or not Path(checkpoint).is_file():
            return
        exports = [Path(self.dirpath)] if self.dirpath else []
        exports.append(Path(checkpoint).resolve().parent.parent / "export")  # the fit run's own export
        scores = {key: interval.mean for key, interval in intervals.items()}
        for export in exports:
            if add_test_results(export, checkpoint, scores, len(pl_module.test_scores[0])):
                rank_zero_info(f"Added the test ROUGE to the model card of {export}")
                return


def export_model(
    pl_module: Any, target: Path, state_dict: dict | None, epoch: int, checkpoint: str, prompt_template: str,
    data: dict[str, Any] | None = None,
) -> Path:
    """``save_pretrained`` (safetensors) + tokenizer + generation config + a model card, all or nothing.

    The prompt the model was trained with travels in ``config.json`` (``prompt_template``, kept by every
    ``from_pretrained``/``save_pretrained`` round trip) and in the card; ``predict`` and ``compare.py`` use it.
    ``data``: the data module's settings (and ``coverage_table``), for the card.
    """
    hp = pl_module.hparams
    lora = getattr(pl_module, "lora", None) is not None and pl_module.lora.enabled
    # LoRA: one copy with the best weights is saved as the adapter, then merged into a plain model (no peft needed)
    model = export_copy(pl_module.model, state_dict, base_reference(hp.model_name_or_path)) if lora else pl_module.model
    with atomic_directory(target) as tmp:
        if lora:
            save_adapter(model, pl_module.tokenizer, tmp / ADAPTER_DIR, prompt_template)
            model, state_dict = model.merge_and_unload(), None
        pl_module.generation.apply_to(model.generation_config)  # test/predict's settings become the export's defaults
        model.config.prompt_template = prompt_template
        model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
        pl_module.tokenizer.save_pretrained(tmp)
        data = data or {}
        card = build_card(
            hp.model_name_or_path, prompt_template, epoch, checkpoint, pl_module.val_history.get(epoch, {}),
            recipe_settings(hp, data), dataset=data.get("dataset_name") if not data.get("data_files") else None,
            dataset_config=data.get("dataset_config"), coverage=data.get("coverage_table"),
        )
        card.save(tmp / CARD_FILE)
    return target


def save_adapter(adapter: Any, tokenizer: Any, directory: Path, prompt_template: str) -> None:
    """The LoRA adapter alone (``PeftModel.from_pretrained(base, directory)``), with the tokenizer it needs."""
    from core.loading import ADAPTER_PROMPT_FILE

    adapter.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)  # added characters: the base must be resized to len(tokenizer) first
    (directory / ADAPTER_PROMPT_FILE).write_text(prompt_template, "utf-8")


def recipe_settings(hparams: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The settings a reader of the card needs to reproduce the training."""
    names = ("learning_rate", "weight_decay", "warmup_ratio", "warmup_steps", "extend_vocabulary", "max_new_tokens", "num_beams")
    settings = {f"model.{name}": hparams[name] for name in names if name in hparams}
    lora = hparams.get("lora") or {}
    if lora.get("r"):
        settings.update({f"model.lora.{key}": value for key, value in lora.items()})
    for name in ("dataset_name", "dataset_config", "max_train_samples", "max_source_length", "max_target_length", "batch_size"):
        if data.get(name) is not None and not (name.startswith("dataset") and data.get("data_files")):
            settings[f"data.{name}"] = data[name]
    return settings


class JsonlPredictionWriter(BasePredictionWriter):
    """Write ``predict`` outputs as JSONL, one line per input, in input order, each input exactly once."""

    def __init__(self, output_path: str | None = None) -> None:
        """Prediction file settings.

        Args:
            output_path: JSONL file to write; defaults to ``<run dir>/predictions.jsonl``. Written to a temporary
                name and renamed when complete.
        """
        super().__init__(write_interval="epoch")
        self.output_path = output_path
        self.written_to: Path | None = None

    def write_on_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any, batch_indices: Any) -> None:
        rows = [row for batch in _flatten_batches(predictions) for row in batch]
        if trainer.world_size > 1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part]
        unique = {row["index"]: row for row in rows}  # the distributed sampler repeats some inputs
        path = Path(self.output_path) if self.output_path else run_dir(trainer) / "predictions.jsonl"
        if trainer.is_global_zero:
            remove_stale_temporaries(path.parent)
            with atomic_file(path) as handle:
                for index in sorted(unique):
                    row = {k: v for k, v in unique[index].items() if k != "index"}
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            rank_zero_info(f"Wrote {len(unique)} predictions to {path}")
        self.written_to = path


def _flatten_batches(predictions: Any) -> list[list[dict]]:
    """Lightning nests predictions per dataloader only when there are several."""
    if predictions and isinstance(predictions[0], list) and predictions[0] and isinstance(predictions[0][0], list):
        return [batch for loader in predictions for batch in loader]
    return list(predictions)
