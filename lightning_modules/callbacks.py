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
        if trainer.is_global_zero:
            self.exported_to = export_model(pl_module, target, state_dict, epoch, best, template)
            rank_zero_info(f"Exported the best model to {self.exported_to}")
        trainer.strategy.barrier()


def export_model(pl_module: Any, target: Path, state_dict: dict | None, epoch: int, checkpoint: str, prompt_template: str) -> Path:
    """``save_pretrained`` (safetensors) + tokenizer + generation config + a model card, all or nothing.

    The prompt the model was trained with travels in ``config.json`` (``prompt_template``, kept by every
    ``from_pretrained``/``save_pretrained`` round trip) and in the card; ``predict`` and ``compare.py`` use it.
    """
    hp = pl_module.hparams
    model = pl_module.model
    pl_module.generation.apply_to(model.generation_config)  # test/predict's settings become the export's defaults
    model.config.prompt_template = prompt_template
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
        pl_module.tokenizer.save_pretrained(tmp)
        card = model_card(hp, pl_module.val_history.get(epoch, {}), epoch, checkpoint, prompt_template)
        (tmp / "README.md").write_text(card, "utf-8")
    return target


def model_card(hparams: Any, metrics: dict[str, float], epoch: int, checkpoint: str, prompt_template: str) -> str:
    rows = "\n".join(f"| {name} | {value:.2f} |" for name, value in sorted(metrics.items())) or "| (none) | |"
    shown = prompt_template.replace("\n", "\\n")
    prefix, _, suffix = prompt_template.partition("{text}")
    return f"""---
language: es
tags: [summarization, resumen]
base_model: {hparams.model_name_or_path}
---
# Spanish news summariser (fine-tuned with resumen)

Fine-tuned from `{hparams.model_name_or_path}` to summarise Spanish news. It was trained with the prompt
`{shown}` (`{{text}}` is the article); `config.json` keeps it as `prompt_template`.

Best checkpoint: epoch {epoch} (`{Path(checkpoint).name if checkpoint else 'final weights'}`).

| validation metric (epoch {epoch}) | value |
|---|---|
{rows}

ROUGE is F-measure in 0-100 on Unicode words (accents kept, no stemming).

```python
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("<this directory>")
model = AutoModelForSeq2SeqLM.from_pretrained("<this directory>")
prompt = model.config.prompt_template.format(text=article)  # {prefix!r} + article + {suffix!r}
print(tokenizer.decode(model.generate(**tokenizer(prompt, return_tensors="pt"))[0], skip_special_tokens=True))
```
"""


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
