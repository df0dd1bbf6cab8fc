"""What every companion script shares: model/device/output options, reading inputs, running predict."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from resumen.core.errors import ResumenError
from resumen.core.files import atomic_file


def base_parser(doc: str, default_model: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="input texts; '-' reads stdin (one input per line, see --split)")
    parser.add_argument("--model", default=default_model, help=f"hub id or local directory (default: {default_model})")
    parser.add_argument("--file", help="read inputs from a file (one input per line, see --split)")
    parser.add_argument(
        "--split",
        choices=sorted(SPLITS),
        default="lines",
        help="how --file and stdin hold their inputs: lines (one per line, the default), paragraphs (separated by blank "
        "lines: an article's lines are joined) or none (the whole file is one input)",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="inputs per forward pass (default: 8)")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu, mps or auto (default: auto)")
    parser.add_argument("--devices", default="1", help="devices to use (default: 1)")
    parser.add_argument("--precision", default=None, help="32-true, bf16-mixed, 16-mixed, ... (default: 32-true)")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of the human-readable report")
    parser.add_argument("--output", help="also write the results as JSON lines to this file")
    parser.add_argument("--trust-remote-code", action="store_true", help="let the model repository run its own code")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """The inference engine: torch, or CTranslate2 (by default float32 on a CPU, half precision on a GPU)."""
    parser.add_argument(
        "--backend",
        choices=["torch", "ctranslate2"],
        default="torch",
        help="generation engine (default torch); ctranslate2 converts an export once, then reuses it",
    )
    parser.add_argument(
        "--compute-type",
        default=None,
        help="ctranslate2: float32 (CPU default: torch's summaries), int8, int8_float32 (faster, changes summaries) or bfloat16, float16, "
        "int8_float16 (CUDA; default the fastest half type)",
    )


def model_spec(spec: str, backend: str = "torch", compute_type: str | None = None) -> tuple[str, str, str | None]:
    """``PATH[@ENGINE[:COMPUTE_TYPE]]`` -> (path, engine, compute type); the defaults apply without ``@``.

    ``runs/x/export@ctranslate2:int8`` lets compare.py and serve.py put two engines side by side.
    """
    if "@" in spec and not Path(spec).exists():
        path, _, engine = spec.rpartition("@")
        chosen, _, kind = engine.partition(":")
        if chosen not in ("torch", "ctranslate2"):
            raise ResumenError(f"'{spec}': after @ comes torch or ctranslate2[:COMPUTE_TYPE] (got {engine!r}).")
        return path, chosen, kind or None
    return spec, backend, compute_type


def describe_engine(summarizer: Any) -> str:
    """One line: which engine and numbers a summariser runs with (printed at start)."""
    if summarizer.backend == "ctranslate2":
        return f"Backend: ctranslate2, compute type {summarizer.engine.compute_type} ({summarizer.engine.why}) on {summarizer.device}"
    return f"Backend: torch, precision {summarizer.precision} on {summarizer.device}"


# --split: how a file (or stdin) holds its inputs, in the words the count line uses
SPLITS = {"lines": "one per line", "paragraphs": "separated by blank lines", "none": "the whole text as one"}


def read_inputs(args: argparse.Namespace, default: list[str] | None = None) -> list[str]:
    """Inputs from arguments, ``--file`` or stdin (``-``), split as ``--split`` says (blank inputs are skipped); how
    many were read from a file or stdin, and how, is said on stderr (a file of paragraphs read line by line would
    otherwise become one summary per line without a word).

    Lines end only at ``\n`` (a U+2028 or a form feed inside an article stays in it), and input must be UTF-8 text.
    """
    check_output(args)
    texts = [t for t in args.texts if t != "-"]
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise ResumenError(f"input {number} is empty: pass some text (or --file FILE, or '-' for stdin).")
    split = getattr(args, "split", "lines")
    sources = []
    if "-" in args.texts:
        sources.append(("standard input", _split(sys.stdin.buffer.read(), "standard input", split)))
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise ResumenError(f"input file '{args.file}' does not exist.")
        sources.append((args.file, _split(path.read_bytes(), f"input file '{args.file}'", split)))
    for source, inputs in sources:
        texts += inputs
        others = " or ".join(f"--split {name}" for name in sorted(SPLITS) if name != split)
        print(f"Read {len(inputs)} input(s) from {source}, {SPLITS[split]} (--split {split}; {others} for other layouts).", file=sys.stderr)
    if not texts:
        if default is None:
            raise ResumenError("no input: pass texts as arguments, --file FILE, or '-' to read stdin.")
        texts = list(default)
    return texts


def check_output(args: argparse.Namespace) -> None:
    """``--output`` must be a file that is not the input (it would be overwritten): refused before any model loads."""
    output = getattr(args, "output", None)
    if not output:
        return
    from resumen.core.files import check_output_file

    check_output_file(output, "--output")
    if getattr(args, "file", None) and Path(output).resolve() == Path(args.file).resolve():
        raise ResumenError(f"--output '{output}' is the input file given with --file: it would be overwritten. Write elsewhere.")


def _split(raw: bytes, source: str, split: str = "lines") -> list[str]:
    """The inputs of a file's bytes: its lines, its blank-line-separated paragraphs (lines joined by a space), or the
    whole text; blank ones dropped."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ResumenError(f"{source} is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}): pass text, one input per line.") from None
    if "\x00" in text:
        raise ResumenError(f"{source} holds binary data (NUL bytes): pass text, one input per line.")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if split == "none":
        return [text.strip()] if text.strip() else []
    if split == "paragraphs":
        paragraphs, current = [], []
        for line in [*lines, ""]:
            if line.strip():
                current.append(line.strip())
            elif current:
                paragraphs.append(" ".join(current))
                current = []
        return paragraphs
    return [line for line in lines if line.strip()]


def make_trainer(args: argparse.Namespace):
    """A predict-only Trainer on the requested accelerator; no logs, no checkpoints."""
    import lightning as L

    devices: Any = int(args.devices) if str(args.devices).isdigit() else args.devices
    return L.Trainer(
        accelerator=args.accelerator,
        devices=devices,
        precision=args.precision or "32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def predict_rows(trainer: Any, module: Any, loader: Any) -> list[dict[str, Any]]:
    """Run ``trainer.predict`` and return the rows in input order."""
    module.check_precision(trainer.precision)
    batches = trainer.predict(module, dataloaders=loader)
    rows = [row for batch in batches for row in batch]
    return sorted(rows, key=lambda row: row["index"])


def emit(rows: list[dict[str, Any]], args: argparse.Namespace, human: Any) -> None:
    """Print rows (human-readable or JSON lines) and optionally write them as JSON lines."""
    clean = [{k: v for k, v in row.items() if k != "index"} for row in rows]
    if args.output:
        with atomic_file(args.output) as handle:
            for row in clean:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    if args.json:
        for row in clean:
            print(json.dumps(row, ensure_ascii=False))
    else:
        print(human(rows))


def latest_export(root: Path = Path("runs")) -> Path | None:
    """The export of the run whose fit ended last under ``root`` (what ``make demo`` just wrote), by the time its
    ``status.json`` records, never by file times: testing, converting or re-exporting an older run changes its
    files but does not make it the newest. Runs without that record count as older, in version order."""
    from resumen.core.runs import RunLayout, version_of

    def ended(export: Path) -> tuple[float, int]:
        recorded = RunLayout(export.parent).status().get("time")
        return (float(recorded) if isinstance(recorded, (int, float)) else float("-inf"), version_of(export.parent) or -1)

    exports = [p for p in root.glob("*/version_*/export") if (p / "config.json").is_file()]
    return max(exports, key=ended) if exports else None


def accelerator_device(accelerator: str) -> str:
    """The torch device a script's ``--accelerator`` (cpu, gpu, mps, auto) runs models on."""
    from resumen.core.inference import resolve_device

    return resolve_device({"gpu": "cuda"}.get(accelerator, accelerator))


def load_summarizer(
    model: str,
    accelerator: str = "auto",
    precision: str | None = "32-true",
    trust_remote_code: bool = False,
    batch_size: int = 8,
    prompt_template: str | None = None,
    name: str | None = None,
    backend: str = "torch",
    compute_type: str | None = None,
):
    """The inference core for an export, a LoRA adapter directory, a hub id, or a training checkpoint (``.ckpt`` or a
    sharded directory: built through the training module, with the checkpoint's record and generation settings)."""
    from resumen.core.inference import Summarizer, resolve_precision

    device = accelerator_device(accelerator)
    path = Path(model).expanduser()
    if path.is_dir() and not (path / "config.json").exists() and (path / "export" / "config.json").is_file():
        from resumen.core.errors import ResumenError

        raise ResumenError(
            f"'{model}' is a run directory, not a model: did you mean its export, --model {path / 'export'} "
            f"(or one of its checkpoints in {path / 'checkpoints'})?"
        )
    is_checkpoint = path.suffix == ".ckpt" or (path.is_dir() and not (path / "config.json").exists() and not (path / "adapter_config.json").exists())
    if is_checkpoint and backend == "ctranslate2":
        from resumen.core.errors import ResumenError

        raise ResumenError(
            f"--backend ctranslate2 needs an export, not a checkpoint: python scripts/export.py {model} --output DIR --ctranslate2, then --model DIR."
        )
    if is_checkpoint:
        from resumen.core.trained_with import TrainedWith
        from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer

        module, record, _ = Seq2SeqSummarizer.from_checkpoint(str(path), trust_remote_code=trust_remote_code)
        if prompt_template is not None:
            record = TrainedWith(**{**record.as_dict(), "prompt_template": prompt_template})
        chosen, _ = resolve_precision(precision, device)
        summarizer = module.summarizer(device, chosen, batch_size, record)
        summarizer.name = name or model
        return summarizer
    return Summarizer.load(
        model,
        device=device,
        precision=precision,
        trust_remote_code=trust_remote_code,
        batch_size=batch_size,
        prompt_template=prompt_template,
        name=name,
        backend=backend,
        compute_type=compute_type,
        announce=lambda line: print(line, file=sys.stderr),
    )
