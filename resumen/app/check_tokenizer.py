"""Which characters of your data a tokenizer cannot write, and whether extending the vocabulary fixes it.

    python scripts/check_tokenizer.py --model google/flan-t5-small --data datamodules/data/train.jsonl
    python scripts/check_tokenizer.py --model google/flan-t5-small --dataset mteb/mlsum --data-config es --split validation

Prints the share of examples and tokens that are unknown, per character in articles and summaries, and the
round-trip fidelity of the summaries (``decode(encode(x)) == x`` after whitespace normalisation), then the same
after ``extend_vocabulary`` (``--no-extend`` skips it). The training data module prints the same table at setup.
"""

from __future__ import annotations

import argparse
import json


from resumen.app.cli_support import main_guard


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="google/flan-t5-small", help="tokenizer hub id or local directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", nargs="+", help="local json/jsonl/csv/parquet file(s)")
    source.add_argument("--dataset", help="hub dataset (e.g. mteb/mlsum)")
    parser.add_argument("--data-config", default=None, help="hub dataset configuration (MLSUM: es)")
    parser.add_argument("--split", default="validation", help="hub dataset split (default: validation)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--summary-column", default="summary", help="checked when present")
    parser.add_argument("--samples", type=int, default=1000, help="examples checked (default: 1000)")
    parser.add_argument("--no-extend", action="store_true", help="do not show the extended tokenizer's result")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser.parse_args(argv)


def load_rows(args: argparse.Namespace):
    from resumen.core.errors import ResumenError
    from resumen.datamodules.sources import load_raw_dataset

    if args.data:
        raw = load_raw_dataset(None, None, None, {"data": args.data}, None)
        dataset = raw["data"]
    else:
        raw = load_raw_dataset(args.dataset, args.data_config, None, None, None)
        if args.split not in raw:
            raise ResumenError(f"the dataset has no split '{args.split}' (it has {sorted(raw)}): pass --split.")
        dataset = raw[args.split]
    if args.text_column not in dataset.column_names:
        raise ResumenError(f"the data has no column '{args.text_column}'; its columns are {dataset.column_names}: pass --text-column.")
    dataset = dataset.select(range(min(args.samples, len(dataset))))
    articles = [str(text) for text in dataset[args.text_column]]
    summaries = [str(s) for s in dataset[args.summary_column]] if args.summary_column in dataset.column_names else None
    return articles, summaries


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from resumen.core.loading import load_tokenizer
    from resumen.core.vocabulary import extend_tokenizer
    from resumen.datamodules.coverage import coverage_report

    tokenizer = load_tokenizer(args.model, trust_remote_code=args.trust_remote_code)
    articles, summaries = load_rows(args)
    reports = {"tokenizer": coverage_report(tokenizer, articles, summaries)}
    lost = list(reports["tokenizer"].unknown_characters)
    if lost and not args.no_extend:
        reports["extended"] = coverage_report(extend_tokenizer(tokenizer, lost), articles, summaries)
    if args.json:
        print(json.dumps({name: report.as_dict() for name, report in reports.items()}, ensure_ascii=False, indent=2))
    else:
        print(reports["tokenizer"].table(f"{args.model}"))
        if "extended" in reports:
            print()
            print(reports["extended"].table(f"{args.model} + extend_vocabulary ({' '.join(lost)})"))
        elif lost:
            print("\nTrain with --model.extend_vocabulary=true to let the model write these characters.")
    return reports


def cli() -> None:
    """Console entry point: one-line errors, exit code 2."""
    main_guard(main)


if __name__ == "__main__":
    cli()
