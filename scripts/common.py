"""What every companion script shares: model/device/output options, reading inputs, running predict."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.errors import ResumenError
from core.files import atomic_file


def base_parser(doc: str, default_model: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="input texts; '-' reads one per line from stdin")
    parser.add_argument("--model", default=default_model, help=f"hub id or local directory (default: {default_model})")
    parser.add_argument("--file", help="read inputs from a file, one per line")
    parser.add_argument("--batch-size", type=int, default=8, help="inputs per forward pass (default: 8)")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu, mps or auto (default: auto)")
    parser.add_argument("--devices", default="1", help="devices to use (default: 1)")
    parser.add_argument("--precision", default=None, help="32-true, bf16-mixed, 16-mixed, ... (default: 32-true)")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of the human-readable report")
    parser.add_argument("--output", help="also write the results as JSON lines to this file")
    parser.add_argument("--trust-remote-code", action="store_true", help="let the model repository run its own code")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def read_inputs(args: argparse.Namespace, default: list[str] | None = None) -> list[str]:
    """Inputs from arguments, ``--file`` (one per line) or stdin (``-``); blank lines are skipped.

    Lines end only at ``\n`` (a U+2028 or a form feed inside an article stays in it), and input must be UTF-8 text.
    """
    check_output(args)
    texts = [t for t in args.texts if t != "-"]
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise ResumenError(f"input {number} is empty: pass some text (or --file FILE, or '-' for stdin).")
    if "-" in args.texts:
        texts += _lines(sys.stdin.buffer.read(), "standard input")
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise ResumenError(f"input file '{args.file}' does not exist.")
        texts += _lines(path.read_bytes(), f"input file '{args.file}'")
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
    if Path(output).is_dir():
        raise ResumenError(f"--output '{output}' is a directory: pass a file path (e.g. {Path(output) / 'results.jsonl'}).")
    if getattr(args, "file", None) and Path(output).resolve() == Path(args.file).resolve():
        raise ResumenError(f"--output '{output}' is the input file given with --file: it would be overwritten. Write elsewhere.")


def _lines(raw: bytes, source: str) -> list[str]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ResumenError(
            f"{source} is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}): pass text, one input per line."
        ) from None
    if "\x00" in text:
        raise ResumenError(f"{source} holds binary data (NUL bytes): pass text, one input per line.")
    return [line.removesuffix("\r") for line in text.split("\n") if line.strip()]


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
