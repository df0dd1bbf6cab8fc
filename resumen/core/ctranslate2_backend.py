"""CTranslate2, the inference engine built for T5-style models: float32 or int8 on a CPU, half precision on a GPU.

An export is converted once into its ``ctranslate2/`` subdirectory (atomically, with a record of the weights it came
from, by content), converted again when the export's weights changed or the conversion is damaged, and loaded with the compute type asked for (quantisation is
chosen when loading). Articles are encoded by the DataModule's own function and the generated tokens decoded by the
project's one decoder, so the template, truncation and added characters behave as with torch. Settings where the two
engines can differ are in docs/serving.md ("CTranslate2").
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from resumen.core.errors import ResumenError, first_line
from resumen.core.generation import GenerationSettings

CONVERSION_DIR = "ctranslate2"
SOURCE_FILE = "resumen_source.json"  # inside the conversion: the export files it was made from
_WEIGHT_FILES = ("config.json", "tokenizer.json", "model.safetensors", "model.safetensors.index.json")
# Bumped when resumen converts differently: conversions made by an older resumen are made again.
CONVERTER_VERSION = 2  # 2: T5's decoder-output scaling read from scale_decoder_outputs (see _LOADER_FIXES)


def _ctranslate2():
    try:
        import ctranslate2
    except ImportError as error:
        raise ResumenError("--backend ctranslate2 needs the ctranslate2 package: pip install 'ctranslate2>=4.5'.") from error
    return ctranslate2


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_files(export: Path) -> list[Path]:
    return sorted(p for p in set(export.glob("model-*.safetensors")) | {export / name for name in _WEIGHT_FILES} if p.is_file())


def source_fingerprint(export: Path) -> dict[str, Any]:
    """What a conversion was made from: each weights/config file's size and SHA-256 (its content, so a copy with new
    modification times still matches), and its modification time, which lets an untouched export skip the hashing."""
    files = {path.name: {"size": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns, "sha256": _sha256(path)} for path in _source_files(export)}
    return {"resumen converter": CONVERTER_VERSION, "files": files}


def _same_source(export: Path, recorded: dict[str, Any]) -> bool:
    """Whether ``export``'s files are the ones ``recorded`` was made from: by size and modification time when those
    match (no reading), else by content (a copy: ``cp -r``, ``kubectl cp``, an object store)."""
    files = recorded.get("files")
    if recorded.get("resumen converter") != CONVERTER_VERSION or not isinstance(files, dict):
        return False
    present = _source_files(export)
    if sorted(files) != [path.name for path in present]:
        return False
    for path in present:
        entry, stat = files[path.name], path.stat()
        if not isinstance(entry, dict) or entry.get("size") != stat.st_size:
            return False
        if entry.get("mtime_ns") != stat.st_mtime_ns:
            if entry.get("sha256") != _sha256(path):
                return False
            entry["mtime_ns"] = stat.st_mtime_ns  # the same content under a new time: recorded below when writable
    return True


def _damage(target: Path, recorded: dict[str, Any]) -> str | None:
    """What is wrong with a conversion's own files (None when each is the regular file of the size written)."""
    for name, size in (recorded.get("converted") or {}).items():
        path = target / name
        if path.is_symlink() or not path.is_file():
            return f"{name} is missing or not a regular file"
        if path.stat().st_size != size:
            return f"{name} is {path.stat().st_size:,} bytes, not the {size:,} written"
    return None if recorded.get("converted") else "it records none of its files"


def conversion_dir(model: str) -> Path:
    """Where a model's conversion lives: inside a local export, else in the user's cache (a hub id)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path / CONVERSION_DIR
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "resumen" / "ctranslate2"
    return cache / model.replace("/", "--")


def ensure_conversion(model: str, announce: Any = print) -> Path:
    """The CTranslate2 conversion of ``model`` (an export dir or a hub id), made now if missing or out of date."""
    ctranslate2 = _ctranslate2()
    source = Path(model).expanduser()
    if (source / "adapter_config.json").is_file():
        raise ResumenError(f"'{model}' is a LoRA adapter: convert the merged export it came from (the directory above it).")
    target = conversion_dir(model)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ResumenError(f"'{target}' is a file or a link, not a conversion resumen made: move it away, then run again.")
    recorded = _read_record(target / SOURCE_FILE)
    if recorded is not None:
        as_read = json.dumps(recorded, sort_keys=True)  # _same_source records a copy's new times in it
        current = (
            _same_source(source, recorded) if source.is_dir() else recorded.get("hub id") == model and (recorded.get("resumen converter") == CONVERTER_VERSION)
        )
        damage = _damage(target, recorded) if current else None
        if current and damage is None:
            if json.dumps(recorded, sort_keys=True) != as_read:
                _refresh_record(target / SOURCE_FILE, recorded)
            return target
        reason = f"is damaged ({damage})" if current else f"was converted from other weights than {model}'s now, or by an older resumen"
        announce(f"CTranslate2: {target} {reason}: converting again.")
    else:
        announce(f"CTranslate2: converting {model} into {target} (once; later loads reuse it).")
    from resumen.core.files import atomic_directory, remove_stale_temporaries

    remove_stale_temporaries(target.parent)  # a killed conversion's full-size temporary copy
    fingerprint = source_fingerprint(source) if source.is_dir() else {"hub id": model, "resumen converter": CONVERTER_VERSION}
    _fit_loaders_to_transformers5()
    try:
        with atomic_directory(target) as tmp:
            converter = ctranslate2.converters.TransformersConverter(str(source) if source.is_dir() else model)
            converter.convert(str(tmp), force=True)
            fingerprint["converted"] = {p.name: p.stat().st_size for p in Path(tmp).iterdir() if p.is_file()}
            (Path(tmp) / SOURCE_FILE).write_text(json.dumps(fingerprint), encoding="utf-8")
    except ResumenError:
        raise
    except Exception as error:  # the converter raises whatever transformers or its own checks raise
        raise ResumenError(f"could not convert '{model}' to CTranslate2 ({type(error).__name__}: {first_line(error)}).") from None
    return target


def _refresh_record(path: Path, recorded: dict[str, Any]) -> None:
    """Record a copied export's new modification times, so the next load skips the hashing; a read-only mount keeps
    the old record (each load then hashes the weights once)."""
    from resumen.core.files import atomic_file

    try:
        with atomic_file(path) as handle:
            json.dump(recorded, handle)
    except (OSError, ResumenError):
        pass


def _read_record(path: Path) -> dict[str, Any] | None:
    """The conversion's record, or None when it is missing or not one (read as every small record is: a regular file
    of bounded size)."""
    from resumen.core.files import read_small_json

    if not (path.exists() or path.is_symlink()):
        return None
    try:
        record = read_small_json(path)
    except ResumenError:
        return None
    return record if isinstance(record, dict) else None


def _t5_output_scaling(spec: Any, model: Any) -> None:
    """transformers 5 split T5's decoder-output scaling (``config.scale_decoder_outputs``) from
    ``tie_word_embeddings``; CTranslate2 4.x still scales when the embeddings are tied. A tied model without the
    scaling (the tiny test and demo models) then converted with its logits 1/sqrt(d_model) of torch's: the same
    argmax, so greedy matched, but softer probabilities, so beam search wrote other summaries (demo test split:
    ROUGE-L 10 points lower, repeated words). The spec follows the flag transformers itself reads."""
    from ctranslate2.specs import model_spec

    scale = getattr(model.config, "scale_decoder_outputs", None)
    if scale is not None:
        spec.decoder.scale_outputs = model.config.d_model**-0.5 if scale else model_spec.OPTIONAL


def _bart_norm_placement(model: Any) -> None:
    """transformers 5's ``BartConfig`` no longer carries ``normalize_before`` (BART is post-norm; mBART's and
    Marian's loaders set it themselves), and CTranslate2's BART loader reads it."""
    if not hasattr(model.config, "normalize_before"):
        model.config.normalize_before = False


def _start_tokens_from_model(config: Any, model: Any, tokenizer: Any) -> None:
    """CTranslate2's BART and T5Gemma loaders copy the tokenizer's ``bos_token`` (T5Gemma's also as the decoder's start
    token); a tokenizer without one (a T5-style vocabulary) wrote ``null`` into the conversion, which then failed to
    load ("type must be string, but is null"). The model's own ``decoder_start_token_id`` says which token starts
    the decoder; it stands in for the missing ``bos_token`` (which only starts a decoder in these models)."""
    if config.decoder_start_token is None:
        start = getattr(model.generation_config, "decoder_start_token_id", None)
        start = start if start is not None else model.config.decoder_start_token_id
        config.decoder_start_token = tokenizer.convert_ids_to_tokens(start)
    if config.bos_token is None:
        config.bos_token = config.decoder_start_token


class _LoaderFix(NamedTuple):
    """What one CTranslate2 4.x loader needs under transformers 5: hooks around its ``get_model_spec`` and after its
    ``set_config``."""

    before_spec: Any = None  # (model) -> None
    after_spec: Any = None  # (spec, model) -> None
    after_config: Any = None  # (config, model, tokenizer) -> None


# config class -> its fix. Each architecture of docs/models.md's matrix converts with these (tests/test_architectures.py).
_LOADER_FIXES: dict[str, _LoaderFix] = {
    "T5Config": _LoaderFix(after_spec=_t5_output_scaling),
    "MT5Config": _LoaderFix(after_spec=_t5_output_scaling),
    "BartConfig": _LoaderFix(before_spec=_bart_norm_placement, after_config=_start_tokens_from_model),
    "T5GemmaConfig": _LoaderFix(after_config=_start_tokens_from_model),
}


def _fit_loaders_to_transformers5() -> None:
    """Wrap CTranslate2's registered loaders with ``_LOADER_FIXES`` (once per process)."""
    from ctranslate2.converters import transformers as converters

    for config_name, fix in _LOADER_FIXES.items():
        loader = converters._MODEL_LOADERS.get(config_name)  # CTranslate2's registry of loaders (no public setter)
        if loader is None or getattr(loader, "fitted_to_transformers5", False):
            continue

        class FittedLoader(type(loader)):  # type: ignore[misc]  # the registered loader's own class, subclassed
            fitted_to_transformers5 = True

            def get_model_spec(self, model: Any, fix: _LoaderFix = fix) -> Any:
                if fix.before_spec is not None:
                    fix.before_spec(model)
                spec = super().get_model_spec(model)
                if fix.after_spec is not None:
                    fix.after_spec(spec, model)
                return spec

            def set_config(self, config: Any, model: Any, tokenizer: Any, fix: _LoaderFix = fix) -> None:
                super().set_config(config, model, tokenizer)
                if fix.after_config is not None:
                    fix.after_config(config, model, tokenizer)

        converters._MODEL_LOADERS[config_name] = FittedLoader()


# int8 products summed in int8 dot-product instructions; without them (AVX2 only) int8 GEMMs add pairs in saturating
# int16 (int8 lost 8.2 ROUGE-L on the demo on such a CPU). Even with VNNI int8 lost 4.2 ROUGE-L on the demo's export
# (docs/serving.md), so int8 is never the CPU default: float32 writes torch's summaries and is 2.3x our torch
# generation at batch 8 with 4 beams.
INT8_DOT_PRODUCT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})


def choose_compute_type(device: str, requested: str | None) -> tuple[str, str]:
    """``(compute type, why)``: float32 on a CPU (the summaries torch writes), the fastest half type on CUDA; int8 when
    asked for; a type the device cannot run is refused with the ones it can."""
    from resumen.core.precision import cpu_flags

    ctranslate2 = _ctranslate2()
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if device not in ("cpu",) and kind != "cuda":
        raise ResumenError(f"CTranslate2 runs on cpu or cuda, not {device}: use --backend torch there.")
    supported = sorted(ctranslate2.get_supported_compute_types(kind))
    if requested in (None, "auto"):
        if kind == "cuda":
            chosen = next(t for t in ("bfloat16", "float16", "int8_float16", "float32") if t in supported)
            return chosen, "the default on CUDA"
        return "float32", (
            "the default on a CPU, torch's own summaries; --compute-type int8 is faster with beams but "
            "changes them: compare.py --dataset --models EXPORT EXPORT@ctranslate2:int8 --data-config CONFIG says how much"
        )
    if requested not in supported:
        raise ResumenError(f"compute type '{requested}' cannot run on this {kind} with CTranslate2: it can run {', '.join(supported)}.")
    if kind == "cpu" and requested.startswith("int8") and not INT8_DOT_PRODUCT_FLAGS & cpu_flags():
        return requested, (
            "asked for, on a CPU without int8 dot products (no VNNI), where int8 lost 8.2 ROUGE-L on the demo: float32 is the accurate choice here"
        )
    return requested, "asked for"


class CTranslate2Engine:
    """A converted model behind the same ``generate`` contract as torch: token ids in, texts and lengths out."""

    def __init__(self, model: str, device: str = "cpu", compute_type: str | None = None, announce: Any = print) -> None:
        ctranslate2 = _ctranslate2()
        self.path = ensure_conversion(model, announce)
        self.compute_type, self.why = choose_compute_type(device, compute_type)
        kind, _, index = device.partition(":")
        threads = int(os.environ.get("RESUMEN_CT2_THREADS", "0"))  # 0: CTranslate2's own choice (all cores)
        try:
            self.translator = ctranslate2.Translator(
                str(self.path), device=kind, device_index=int(index or 0), compute_type=self.compute_type, intra_threads=threads
            )
        except Exception as error:  # a conversion damaged after its record was written (CTranslate2's own errors)
            raise ResumenError(
                f"CTranslate2 could not load the conversion in '{self.path}' ({first_line(error)}): delete that "
                "folder and run again to convert anew (or python scripts/export.py --ctranslate2 EXPORT)."
            ) from None

    def generate(self, tokenizer: Any, input_ids: list[list[int]], settings: GenerationSettings) -> tuple[list[list[int]], list[int]]:
        """Generated ids (without the start and end tokens) and their lengths counted as torch counts them."""
        if settings.do_sample:
            raise ResumenError("--backend ctranslate2 decodes greedily or with beams: sampling is torch's only.")
        tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in input_ids]
        results = self.translator.translate_batch(
            tokens,
            beam_size=settings.num_beams,
            max_decoding_length=settings.max_new_tokens,
            length_penalty=settings.length_penalty,
            no_repeat_ngram_size=settings.no_repeat_ngram_size,
            repetition_penalty=settings.repetition_penalty,
            max_batch_size=0,
        )
        ids = [tokenizer.convert_tokens_to_ids(result.hypotheses[0]) for result in results]
        # torch counts the end token when one was written (the summary stopped before max_new_tokens)
        lengths = [len(i) + (1 if len(i) < settings.max_new_tokens else 0) for i in ids]
        return ids, lengths

    def stream(self, tokenizer: Any, input_ids: list[int], settings: GenerationSettings):
        """Greedy decoding, token by token (``generate_tokens``)."""
        for step in self.translator.generate_tokens(
            tokenizer.convert_ids_to_tokens(input_ids),
            max_decoding_length=settings.max_new_tokens,
            repetition_penalty=settings.repetition_penalty,
            no_repeat_ngram_size=settings.no_repeat_ngram_size,
        ):
            yield step.token_id
