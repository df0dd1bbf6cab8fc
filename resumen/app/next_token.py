"""Which tokens does a causal LM rank next, and with what probability?

    python scripts/next_token.py                                   # gpt2, "The future of AI is"
    python scripts/next_token.py --model .cache/tiny-gpt2 "El niño juega" --top-k 5
    python scripts/next_token.py --positions all --json "Hello world"
    python scripts/next_token.py --plot top10.png

Prints the input as tokens, the most likely next token and a table of the top-k: rank, token (quoted so leading
spaces show; a partial UTF-8 byte shown as <bytes 0x..>), token id, probability (softmax over the full
vocabulary, in fp32) and logit.
"""

from __future__ import annotations

import sys


from resumen.core.errors import ResumenError
from resumen.app.common import base_parser, emit, make_trainer, predict_rows, read_inputs

DEFAULT_TEXT = "The future of AI is"


def format_report(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        lines.append(f"Input: {row['text']!r}")
        lines.append("Tokens: " + " | ".join(row["tokens"]))
        lines.append(f"Most likely next token: {row['next_token']}")
        for step in row["positions"]:
            if len(row["positions"]) > 1:
                lines.append(f"\nAfter {step['prefix']!r}:")
            lines.append(f"{'rank':>4}  {'token':<20} {'id':>7}  {'probability':>11}  {'logit':>9}")
            for top in step["top"]:
                lines.append(f"{top['rank']:>4}  {top['token']:<20} {top['token_id']:>7}  {top['probability']:>11.4%}  {top['logit']:>9.3f}")
        lines.append("")
    return "\n".join(lines).rstrip()


def plot_top_k(row: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resumen.core.files import atomic_file

    top = row["positions"][-1]["top"]
    figure, axis = plt.subplots(figsize=(8, 0.4 * len(top) + 1.2))
    percents = [100 * t["probability"] for t in reversed(top)]
    bars = axis.barh([t["token"] for t in reversed(top)], percents)
    axis.bar_label(bars, labels=[f"{p:.2f}%" if p < 10 else f"{p:.1f}%" for p in percents], padding=3, fontsize=8)
    axis.set_xlabel("probability (%)")
    axis.set_xlim(0, max(percents) * 1.18 if percents else 1)
    axis.set_title(f"Next token after {row['text']!r}")
    figure.tight_layout()
    with atomic_file(path, "wb") as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)
    print(f"Plot: {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = base_parser(__doc__, "gpt2")
    parser.add_argument("--top-k", type=int, default=10, help="rows in the table (default: 10)")
    parser.add_argument("--positions", choices=["last", "all"], default="last", help="table after the last or every position")
    parser.add_argument("--plot", help="save a bar chart of the first input's top-k to this PNG")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        raise ResumenError(f"--top-k must be at least 1 (got {args.top_k}).")
    from resumen.datamodules.text_prompts import prompt_loader
    from resumen.lightning_modules.causal_lm import CausalLMModule

    texts = read_inputs(args, default=[DEFAULT_TEXT])
    module = CausalLMModule(
        args.model,
        task="next_token",
        top_k_tokens=args.top_k,
        all_positions=args.positions == "all",
        trust_remote_code=args.trust_remote_code,
    )
    loader = prompt_loader(texts, module.tokenizer, args.batch_size, padding_side="right")
    rows = predict_rows(make_trainer(args), module, loader)
    emit(rows, args, format_report)
    if args.plot:
        plot_top_k(rows[0], args.plot)
    return rows


def cli() -> None:
    """Console entry point: one-line errors, exit code 2."""
    from resumen.app.cli_support import main_guard

    main_guard(main)


if __name__ == "__main__":
    cli()
