"""Callbacks: export the best checkpoint as a Hugging Face directory, and write predictions as JSONL."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter, Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from resumen.core.contract import data_settings, summarization_data, summarizer_results
from resumen.core.errors import ResumenError
from resumen.core.loading import merge_adapter
from resumen.core.files import atomic_directory, atomic_file, remove_stale_temporaries, write_failure
from resumen.core.trained_with import TrainedWith, write_to_adapter_dir, write_to_model_config
from resumen.lightning_modules.checkpoints import load_full_checkpoint, model_state_dict
from resumen.lightning_modules.lora import ADAPTER_DIR, base_reference, export_copy
from resumen.lightning_modules.model_card import CARD_FILE, add_test_results, build_card
from resumen.lightning_modules.run_files import run_dir


# What an export holds (save_pretrained of a model and its tokenizer, the card, the adapter, the CTranslate2 copy):
# only a directory holding nothing else may be replaced by a new export.
EXPORT_FILE = re.compile(
    r"(config|generation_config|tokenizer|tokenizer_config|special_tokens_map|added_tokens|trained_with|"
    r"model\.safetensors\.index|preprocessor_config)\.json|model(-\d{5}-of-\d{5})?\.safetensors|spiece\.model|"
    r"vocab\.(json|txt)|merges\.txt|README\.md|chat_template\.jinja|\..*\.(tmp|old)-.*"
)
EXPORT_SUBDIRECTORIES = {"adapter", "ctranslate2"}


def check_export_target(target: Path, overwrite: bool, option: str = "--export.dirpath") -> None:
    """Refuse to write an export where it would delete anything but a previous export."""
    if not target.exists():
        return
    if not target.is_dir():
        raise ResumenError(f"export path '{target}' is a file, not a directory: choose another {option}.")
    entries = sorted(target.iterdir())
    if not entries:
        return
    foreign = [e.name for e in entries if not (EXPORT_FILE.fullmatch(e.name) if e.is_file() else e.name in EXPORT_SUBDIRECTORIES)]
    if foreign:
        raise ResumenError(
            f"export directory '{target}' holds {', '.join(repr(n) for n in foreign[:3])}"
            f"{' and more' if len(foreign) > 3 else ''}, which no export writes: an export replaces the whole "
            f"directory, so it only replaces a previous export. Choose an empty or new {option}."
        )
    if not overwrite:
        raise ResumenError(
            f"export directory '{target}' already holds an export: choose another {option} or pass "
            f"{'--export.overwrite=true' if option == '--export.dirpath' else '--overwrite'} to replace it when this run finishes."
        )


class HFExport(Callback):
    """At the end of ``fit``, save the best checkpoint's weights as a Hugging Face model directory."""

    def __init__(self, dirpath: str | None = None, overwrite: bool = False, ctranslate2: bool = False) -> None:
        """Export settings.

        Args:
            dirpath: where to write the model directory; defaults to ``<run dir>/export``.
            overwrite: replace an existing export in ``dirpath`` (otherwise ``fit`` refuses to start).
            ctranslate2: also convert the export for CTranslate2 (into ``<export>/ctranslate2``), so the trained
                run is ready for ``--backend ctranslate2`` (summarize.py, serve.py, compare.py). Needs ctranslate2.
        """
        super().__init__()
        self.dirpath = dirpath
        self.overwrite = overwrite
        self.ctranslate2 = ctranslate2
        self.exported_to: Path | None = None
        self.resuming = False  # set by the CLI when fit resumes this run: its own export may be replaced

    def target(self, trainer: L.Trainer) -> Path:
        return Path(self.dirpath) if self.dirpath else run_dir(trainer) / "export"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if self.ctranslate2:
            from resumen.core.ctranslate2_backend import _ctranslate2

            _ctranslate2()  # missing package: refused before training, not after it
        target = self.target(trainer)
        if trainer.is_global_zero:
            remove_stale_temporaries(target.parent)
        resuming_this_run = self.resuming and self.dirpath is None  # a resumed run replaces its own export
        check_export_target(target, self.overwrite or resuming_this_run)

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
        target = self.target(trainer)
        if best and Path(best).is_dir():
            # FSDP/DeepSpeed shards: this process holds only its part of the weights, so consolidating belongs
            # in a separate CPU step rather than here, where every GPU would wait.
            rank_zero_warn(
                f"the best checkpoint '{best}' is sharded, so it was not exported here. Export it with: python scripts/export.py {best} --output {target}"
            )
            return
        record = pl_module.trained_with()
        data = data_settings(trainer)
        datamodule = summarization_data(trainer)
        if datamodule is not None and datamodule.coverage is not None:
            data["coverage_table"] = datamodule.coverage.table("Tokenizer coverage of the training data")
        if trainer.is_global_zero:
            self.exported_to = export_model(pl_module, target, state_dict, epoch, best, record, data)
            rank_zero_info(f"Exported the best model to {self.exported_to}")
            if self.ctranslate2:
                from resumen.core.ctranslate2_backend import ensure_conversion

                ensure_conversion(str(self.exported_to), rank_zero_info)
        trainer.strategy.barrier()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A test of the checkpoint an export was made from adds its ROUGE to that export's card (model-index)."""
        scored, checkpoint = summarizer_results(pl_module), trainer.ckpt_path
        if not trainer.is_global_zero or scored is None or not scored.test_intervals:
            return
        if not checkpoint or not Path(checkpoint).is_file():
            return
        exports = [Path(self.dirpath)] if self.dirpath else []
        exports.append(Path(checkpoint).resolve().parent.parent / "export")  # the fit run's own export
        scores = {key: interval.mean for key, interval in scored.test_intervals.items()}
        literature = {key: interval.mean for key, interval in scored.test_literature_intervals.items()}
        for export in exports:
            if add_test_results(export, checkpoint, scores, len(scored.test_scores[0]), literature):
                rank_zero_info(f"Added the test ROUGE to the model card of {export}")
                return


def export_model(
    pl_module: Any,
    target: Path,
    state_dict: dict | None,
    epoch: int,
    checkpoint: str,
    record: TrainedWith,
    data: dict[str, Any] | None = None,
) -> Path:
    """``save_pretrained`` (safetensors) + tokenizer + generation config + a model card, all or nothing.

    What the model was trained with (its trained-with record: prompt, lengths, added characters, LoRA, base model)
    travels in ``config.json`` (the ``resumen`` entry, kept by every ``from_pretrained``/``save_pretrained`` round
    trip) and in the card; ``predict``, ``summarize.py``, the server and ``compare.py`` use it.
    ``data``: the data module's settings (and ``coverage_table``), for the card.
    """
    prompt_template = record.prompt_template
    hp = pl_module.hparams
    lora = pl_module.lora.enabled
    # LoRA: one copy with the best weights is saved as the adapter, then merged into a plain model (no peft needed)
    model = export_copy(pl_module.model, state_dict, base_reference(hp.model_name_or_path)) if lora else pl_module.model
    check_export_target(target, overwrite=True)  # again: something else may have been written there since setup
    with atomic_directory(target) as tmp:
        if lora:
            save_adapter(model, pl_module.tokenizer, tmp / ADAPTER_DIR, record)
            model, state_dict = merge_adapter(model), None
        pl_module.generation.apply_to(model.generation_config)  # test/predict's settings become the export's defaults
        write_to_model_config(model.config, record)
        model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
        pl_module.tokenizer.save_pretrained(tmp)
        data = data or {}
        card = build_card(
            hp.model_name_or_path,
            prompt_template,
            epoch,
            checkpoint,
            pl_module.val_history.get(epoch, {}),
            recipe_settings(hp, data),
            dataset=data.get("dataset_name") if not data.get("data_files") else None,
            dataset_config=data.get("dataset_config"),
            coverage=data.get("coverage_table"),
            max_source_length=record.max_source_length or 512,
        )
        card.save(tmp / CARD_FILE)
    return target


def save_adapter(adapter: Any, tokenizer: Any, directory: Path, record: TrainedWith) -> None:
    """The LoRA adapter alone (``PeftModel.from_pretrained(base, directory)``), with the tokenizer it needs and its
    trained-with record (``trained_with.json``: an adapter's config.json is PEFT's)."""
    adapter.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)  # added characters: the base must be resized to len(tokenizer) first
    write_to_adapter_dir(directory, record)


def recipe_settings(hparams: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The settings a reader of the card needs to reproduce the training."""
    names = ("learning_rate", "weight_decay", "warmup_ratio", "warmup_steps", "extend_vocabulary", "max_new_tokens", "num_beams")
    settings = {f"model.{name}": hparams[name] for name in names if name in hparams}
    lora = hparams.get("lora") or {}
    if lora.get("r"):
        settings.update({f"model.lora.{key}": value for key, value in lora.items()})
    for name in ("dataset_name", "dataset_config", "dataset_revision", "max_train_samples", "max_source_length", "max_target_length", "batch_size"):
        if data.get(name) is not None and not (name.startswith("dataset") and data.get("data_files")):
            settings[f"data.{name}"] = data[name]
    return settings


class JsonlPredictionWriter(BasePredictionWriter):
    """Write ``predict`` outputs as JSONL, one line per input, in input order, each input exactly once.

    Every finished batch is appended at once to a partial file beside the output (``.<name>.partial-<rank>``,
    fsynced), so a kill, a full disk or a stop by signal keeps what was done: the same command run again skips
    those inputs and continues. The output itself is written atomically when every input is done.
    """

    def __init__(self, output_path: str | None = None) -> None:
        """Prediction file settings.

        Args:
            output_path: JSONL file to write; defaults to ``<run dir>/predictions.jsonl``. Must not be the input
                file or a directory. Partial results sit beside it until every input is done.
        """
        super().__init__(write_interval="batch")
        self.output_path = output_path
        self.written_to: Path | None = None
        self.path: Path | None = None
        self.done = 0
        self.total = 0
        self._fingerprint = ""

    # ------------------------------------------------------------------------------------------- partials
    def _partials(self) -> list[Path]:
        assert self.path is not None
        return sorted(self.path.parent.glob(f".{self.path.name}.partial-*"))

    def _partial(self, rank: int) -> Path:
        assert self.path is not None
        return self.path.with_name(f".{self.path.name}.partial-{rank}")

    def _read_partials(self) -> dict[int, dict]:
        """Rows of the partial files written for this same job (other jobs' partials are set aside)."""
        rows: dict[int, dict] = {}
        for partial in self._partials():
            lines = partial.read_text(encoding="utf-8").split("\n")
            try:
                header = json.loads(lines[0])
            except (ValueError, IndexError):
                header = {}
            if header.get("resumen_partial") != self._fingerprint:
                continue
            for line in lines[1:]:
                try:
                    row = json.loads(line)
                except ValueError:  # the line a kill cut short
                    continue
                rows[int(row["index"])] = row
        return rows

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        self.path = Path(self.output_path) if self.output_path else run_dir(trainer) / "predictions.jsonl"
        check_prediction_output(self.path, data_settings(trainer).get("predict_file"))
        self._fingerprint = _job_fingerprint(trainer, pl_module)
        if trainer.is_global_zero:
            remove_stale_temporaries(self.path.parent)
        trainer.strategy.barrier()
        done = self._read_partials()
        datamodule = summarization_data(trainer)
        self.total = datamodule.predict_rows() if datamodule is not None else 0
        if done and datamodule is not None:
            rank_zero_info(
                f"Continuing an interrupted predict: {len(done)} of {self.total} inputs are already in "
                f"{self._partials()[0].parent}, {self.total - len(done)} to go."
            )
            datamodule.skip_predict_rows(set(done))
        stale = [p for p in self._partials() if not self._belongs(p)]
        if trainer.is_global_zero:
            for partial in stale:  # another job's partial results (other input, model or settings)
                rank_zero_warn(f"set aside {partial}: it holds predictions of another input, model or setting.")
                partial.rename(partial.with_name(partial.name.replace(".partial-", ".stale-")))
        self.done = len(done)
        trainer.strategy.barrier()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_to_last_line(self._partial(trainer.global_rank))  # a write a kill or a full disk cut short
        with open(self._partial(trainer.global_rank), "a", encoding="utf-8") as handle:
            if handle.tell() == 0:
                handle.write(json.dumps({"resumen_partial": self._fingerprint}) + "\n")

    def _belongs(self, partial: Path) -> bool:
        try:
            first = partial.read_text(encoding="utf-8").split("\n", 1)[0]
            return json.loads(first).get("resumen_partial") == self._fingerprint
        except (OSError, ValueError):
            return False

    # ---------------------------------------------------------------------------------------------- writes
    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx) -> None:
        partial = self._partial(trainer.global_rank)
        try:
            with open(partial, "a", encoding="utf-8") as handle:
                handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in prediction))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise write_failure(partial, error) from error
        self.done += len(prediction)

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.strategy.barrier()  # every rank's partial file is complete
        if trainer.is_global_zero:
            self._write_output()
        trainer.strategy.barrier()
        self.written_to = self.path

    def _write_output(self) -> None:
        assert self.path is not None
        rows = self._read_partials()  # the distributed sampler repeats some inputs: one row per index
        with atomic_file(self.path) as handle:
            for index in sorted(rows):
                handle.write(json.dumps({k: v for k, v in rows[index].items() if k != "index"}, ensure_ascii=False) + "\n")
        for partial in self._partials():
            partial.unlink(missing_ok=True)
        rank_zero_info(f"Wrote {len(rows)} predictions to {self.path}")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if self.path is None or not trainer.predicting or not self._partials():
            return
        rank_zero_info(
            f"predict stopped after {self.done} of {self.total} inputs; they are kept in {self._partial(0)}"
            f"{' (one file per rank)' if trainer.world_size > 1 else ''}. Run the same command again to continue "
            f"from there; {self.path} is written when every input is done."
        )


def _cut_to_last_line(path: Path) -> None:
    """Drop a last line written only in part, so that appended rows start on a line of their own."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def check_prediction_output(path: Path, predict_file: str | None) -> None:
    """Refuse, before any work, an output that is a directory or the input itself (it would be overwritten)."""
    if path.is_dir():
        raise ResumenError(f"the predictions output '{path}' is a directory: pass a file path (e.g. {path / 'predictions.jsonl'}).")
    if predict_file and path.resolve() == Path(predict_file).resolve():
        raise ResumenError(f"the predictions output '{path}' is the input file: it would be overwritten. Write elsewhere.")


def _job_fingerprint(trainer: L.Trainer, module: L.LightningModule) -> str:
    """What makes two predict runs the same job: inputs, model, checkpoint and settings."""
    import hashlib

    parts: dict[str, Any] = {"data": data_settings(trainer), "model": dict(module.hparams)}
    for name in ("predict_file",):
        path = parts["data"].get(name)
        if path and Path(path).is_file():
            parts[f"{name}_stat"] = [Path(path).stat().st_size, Path(path).stat().st_mtime_ns]
    checkpoint = trainer.ckpt_path
    parts["checkpoint"] = [str(checkpoint), Path(checkpoint).stat().st_mtime_ns] if checkpoint and Path(checkpoint).exists() else None
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
