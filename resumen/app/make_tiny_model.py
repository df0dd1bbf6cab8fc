"""Build a tiny random-weight model with a locally trained tokenizer (no hub, well under a second).

    python scripts/make_tiny_model.py --kind t5 --out .cache/tiny-t5
    python scripts/make_tiny_model.py --kind gpt2 --out .cache/tiny-gpt2
    python scripts/make_tiny_model.py --kind gemma2 --out .cache/tiny-gemma2
    python scripts/make_tiny_model.py --kind bert --out .cache/tiny-bert      # an encoder for BERTScore tests

The tokenizer is trained on the shipped Spanish sample (or ``--corpus FILE``, one text per line). T5's keeps
Spanish accents, GPT-2's is byte-level, Gemma2's has byte fallback so any script (Chinese too) round-trips.
"""

from __future__ import annotations

import argparse
from pathlib import Path


from resumen.app.cli_support import main_guard
from resumen.app.tiny_models import BUILDERS
from resumen.core.errors import ResumenError


def corpus_texts(path: Path) -> list[str]:
    import json

    from resumen.core.prompts import SUMMARY_TEMPLATE

    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix != ".jsonl":
        return lines
    rows = [json.loads(line) for line in lines]
    # the instruction's own words too: the prompt is tokenised with every article
    return [SUMMARY_TEMPLATE.replace("{text}", "").strip()] + [row[key] for row in rows for key in ("text", "summary") if row.get(key)]


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=sorted(BUILDERS), required=True, help="model family to build")
    parser.add_argument("--out", required=True, help="directory to write the model and tokenizer to")
    parser.add_argument(
        "--corpus",
        nargs="+",
        help="files to train the tokenizer on: text (one per line) or JSONL (the text and summary fields of each row); default: the shipped sample",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights")
    parser.add_argument(
        "--tie-embeddings",
        action="store_true",
        help="t5: one embedding matrix for input and output, so a tiny model soon copies the article's names (make demo's)",
    )
    args = parser.parse_args(argv)
    if args.tie_embeddings and args.kind != "t5":
        raise ResumenError(f"--tie-embeddings shapes a T5 (got --kind {args.kind}).")
    texts = None
    if args.corpus:
        texts = [text for path in args.corpus for text in corpus_texts(Path(path))]
    options = {"tie_word_embeddings": True} if args.tie_embeddings else {}
    out = BUILDERS[args.kind](args.out, texts=texts, seed=args.seed, **options)
    print(f"tiny {args.kind} written to {out}")
    return out


def cli() -> None:
    """Console entry point: one-line errors, exit code 2."""
    main_guard(main)  # one-line errors, and no weight-writing progress bar for a model written in milliseconds


if __name__ == "__main__":
    cli()
