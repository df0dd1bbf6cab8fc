"""Build a tiny random-weight model with a locally trained tokenizer (no hub, well under a second).

    python scripts/make_tiny_model.py --kind t5 --out .cache/tiny-t5
    python scripts/make_tiny_model.py --kind gpt2 --out .cache/tiny-gpt2
    python scripts/make_tiny_model.py --kind gemma2 --out .cache/tiny-gemma2

The tokenizer is trained on the shipped Spanish sample (or ``--corpus FILE``, one text per line). T5's keeps
Spanish accents, GPT-2's is byte-level, Gemma2's has byte fallback so any script (Chinese too) round-trips.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.tiny_models import BUILDERS  # noqa: E402


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=sorted(BUILDERS), required=True, help="model family to build")
    parser.add_argument("--out", required=True, help="directory to write the model and tokenizer to")
    parser.add_argument("--corpus", help="text file (one text per line) to train the tokenizer on")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights")
    args = parser.parse_args(argv)
    texts = None
    if args.corpus:
        texts = [line for line in Path(args.corpus).read_text(encoding="utf-8").splitlines() if line.strip()]
    out = BUILDERS[args.kind](args.out, texts=texts, seed=args.seed)
    print(f"tiny {args.kind} written to {out}")
    return out


if __name__ == "__main__":
    main()
