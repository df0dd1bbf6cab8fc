"""Summarise Spanish news articles with a fine-tuned model: an export, a checkpoint, a LoRA adapter or a hub id.

    python scripts/summarize.py "El Ayuntamiento de Valencia ha anunciado que ..."      # the newest run's export
    python scripts/summarize.py --model runs/demo/version_0/export --file articles.txt --json
    cat articles.txt | python scripts/summarize.py --model google/flan-t5-small - --output summaries.jsonl

Each article is encoded exactly as training encoded it (the model's own prompt template, cut to the
max_source_length it was trained with) and summarised with the model's own generation settings (an export keeps
them in generation_config.json); --num-beams, --max-new-tokens, --length-penalty and --no-repeat-ngram-size
override them. The same model, settings and precision give the summaries `train.py predict` and the server give.
--backend ctranslate2 runs the export's CTranslate2 conversion (made on first use): float32 on a CPU unless --compute-type int8.
"""

from __future__ import annotations

import sys


from resumen.app.cli_support import main_guard
from resumen.core.generation import add_summary_flags, summary_overrides
from resumen.app.common import (
    add_backend_options,
    base_parser,
    describe_engine,
    emit,
    latest_export,
    load_summarizer,
    read_inputs,
)


def parse_args(argv: list[str] | None):
    parser = base_parser(__doc__, "the newest run's export under runs/")
    parser.set_defaults(model=None, precision="32-true")
    add_summary_flags(parser)  # --max-new-tokens, --num-beams, ...: resumen/core/generation.py's summary options
    parser.add_argument("--prompt-template", help="replace the model's own prompt (one {text} field)")
    add_backend_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    from resumen.core.errors import ResumenError
    from resumen.core.prompts import validate_template

    settings = summary_overrides(args)  # checked before any model loads (bounds: resumen/core/generation.py)
    if args.prompt_template is not None:
        validate_template(args.prompt_template, "--prompt-template")
    articles = read_inputs(args)
    model = args.model
    if model is None:
        found = latest_export()
        if found is None:
            raise ResumenError(
                "no --model given and no run under runs/ has an export yet: pass --model (an export, a "
                "checkpoint, a LoRA adapter directory or a hub id such as google/flan-t5-small)."
            )
        model = str(found)
        print(f"Model: {model} (the newest run's export; --model chooses another)", file=sys.stderr)
    summarizer = load_summarizer(
        model,
        args.accelerator,
        args.precision,
        args.trust_remote_code,
        args.batch_size,
        args.prompt_template,
        backend=args.backend,
        compute_type=args.compute_type,
    )
    print(describe_engine(summarizer), file=sys.stderr)
    summaries = summarizer.summarize(articles, **settings)
    rows = [
        {"id": str(i), "index": i, "summary": s.summary, "input_tokens": s.input_tokens, "output_tokens": s.output_tokens, "truncated": s.truncated}
        for i, s in enumerate(summaries)
    ]
    emit(rows, args, lambda rows: human(rows, articles, summarizer.max_source_length))
    return rows


def human(rows: list[dict], articles: list[str], max_source_length: int) -> str:
    blocks = []
    for row, article in zip(rows, articles):
        note = f", cut to {max_source_length} tokens" if row["truncated"] else ""
        start = article[:90] + ("…" if len(article) > 90 else "")
        blocks.append(f"Article {int(row['id']) + 1} ({row['input_tokens']} tokens{note}): {start}\n  {row['summary']}")
    return "\n\n".join(blocks)


def cli() -> None:
    """Console entry point (resumen-summarize): one-line errors, exit code 2."""
    main_guard(main)


if __name__ == "__main__":
    main_guard(main)
