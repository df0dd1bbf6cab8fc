"""Search a trained model's generation settings, without retraining: beams, length penalty, no-repeat n-grams and
max_new_tokens, scored by Spanish ROUGE-L on the validation split.

    python scripts/tune_generation.py --model runs/demo/version_0/export --data-file validation.jsonl --trials 12
    python scripts/tune_generation.py --model EXPORT --data-config configs/mlsum_flan_t5_small.yaml --trials 20 --write

Optuna (TPE, seeded) proposes the settings; trial 0 is the model's current settings, so the search starts from
them. Settings that decode the same way (any length penalty with greedy decoding) share one key, and every key's
summaries are cached: no article is summarised twice with the same settings. The best is reported against the
current settings with the paired bootstrap difference on the same articles. --write replaces the export's
generation_config.json (and adds a section to its model card saying what changed and why), each file atomically,
and only when the best scores higher than the current settings. Tune on validation, report on test
(`train.py test` or `compare.py --dataset`): the best of many trials on one split flatters that split.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


from resumen.app.cli_support import main_guard

BEAMS = (1, 2, 4, 6)
NO_REPEAT = (0, 2, 3, 4)
LENGTH_PENALTIES = (0.6, 0.8, 1.0, 1.2, 1.5, 2.0)
CARD_SECTION = "## Generation settings (tuned)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="an export directory (or a .ckpt: tuned, never written)")
    parser.add_argument("--data-file", help="validation articles: a json/jsonl/csv/parquet file with text and summary")
    parser.add_argument("--data-config", help="a training config whose data section names the validation split")
    parser.add_argument("--max-articles", type=int, default=200, help="validation articles scored per trial (default 200)")
    parser.add_argument("--trials", type=int, default=12, help="settings tried, the current ones included (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    parser.add_argument("--write", action="store_true", help="write the best settings into the export")
    parser.add_argument("--batch-size", type=int, default=8, help="articles per generate call (default 8)")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu, mps or auto (default: auto)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--trust-remote-code", action="store_true", help="let the model repository run its own code")
    args = parser.parse_args(argv)
    from resumen.core.errors import ResumenError

    if not args.data_file and not args.data_config:
        raise ResumenError("give the validation articles: --data-file FILE (text and summary columns) or --data-config CONFIG.")
    if args.trials < 1 or args.max_articles < 1:
        raise ResumenError(f"--trials and --max-articles must be at least 1 (got {args.trials} and {args.max_articles}).")
    if args.write and not (Path(args.model) / "generation_config.json").is_file():
        raise ResumenError(f"--write needs an export directory with a generation_config.json; '{args.model}' has none.")
    if args.write:  # before the search: both files must be writable, or neither is written
        from resumen.core.files import check_output_file

        for name in ("generation_config.json", "README.md"):
            check_output_file(Path(args.model) / name, "--write")
    return args


def validation_articles(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The validation split as the data module selects it (columns, empty rows, the seeded subset)."""
    from resumen.datamodules.summarization import SummarizationDataModule
    from resumen.app.compare import data_settings

    settings = data_settings(argparse.Namespace(data_config=args.data_config, data_file=None, max_samples=None))
    if args.data_file:
        settings["data_files"] = {"validation": args.data_file}
        settings.pop("dataset_name", None)
    settings["max_val_samples"] = args.max_articles
    _, articles, references = SummarizationDataModule(**settings).articles("validation")
    return articles, references


def decoding_key(settings: Any) -> tuple:
    """Settings that decode identically share a key: greedy decoding ignores the length penalty."""
    length_penalty = settings.length_penalty if settings.num_beams > 1 else 1.0
    return (settings.num_beams, length_penalty, settings.no_repeat_ngram_size, settings.max_new_tokens)


class GenerationSearch:
    """Scores settings on fixed articles, each distinct decoding once."""

    def __init__(self, summarizer: Any, articles: list[str], references: list[str]) -> None:
        self.summarizer, self.articles, self.references = summarizer, articles, references
        self.cache: dict[tuple, dict[str, Any]] = {}
        self.generated = 0  # decodings actually run (the rest came from the cache)

    def score(self, settings: Any) -> dict[str, Any]:
        import numpy as np

        from resumen.core.rouge import ROUGE_KEYS, SpanishRougeScorer

        key = decoding_key(settings)
        if key not in self.cache:
            start = time.perf_counter()
            overrides = dict(zip(("num_beams", "length_penalty", "no_repeat_ngram_size", "max_new_tokens"), key))
            summaries = self.summarizer.summarize(self.articles, **overrides)
            scores = SpanishRougeScorer().score_rows([s.summary for s in summaries], self.references)
            self.generated += 1
            self.cache[key] = {
                "settings": overrides,
                "scores": scores,
                "seconds": round(time.perf_counter() - start, 2),
                "rougeL": float(scores[:, ROUGE_KEYS.index("rougeL")].mean()),
                "gen_len": float(np.mean([s.output_tokens for s in summaries])),
            }
        return self.cache[key]


def search(args: argparse.Namespace, summarizer: Any, articles: list[str], references: list[str]) -> dict[str, Any]:
    import optuna

    current = summarizer.generation
    lengths = sorted({max(8, current.max_new_tokens // 2), max(8, current.max_new_tokens * 3 // 4), current.max_new_tokens, current.max_new_tokens * 3 // 2})
    searcher = GenerationSearch(summarizer, articles, references)

    def objective(trial: optuna.Trial) -> float:
        settings = current.with_overrides(
            num_beams=trial.suggest_categorical("num_beams", sorted({*BEAMS, current.num_beams})),
            length_penalty=trial.suggest_categorical("length_penalty", sorted({*LENGTH_PENALTIES, float(current.length_penalty)})),
            no_repeat_ngram_size=trial.suggest_categorical("no_repeat_ngram_size", sorted({*NO_REPEAT, current.no_repeat_ngram_size})),
            max_new_tokens=trial.suggest_categorical("max_new_tokens", lengths),
        )
        result = searcher.score(settings)
        trial.set_user_attr("gen_len", result["gen_len"])
        return result["rougeL"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed))
    study.enqueue_trial(
        {
            "num_beams": current.num_beams,
            "length_penalty": float(current.length_penalty),
            "no_repeat_ngram_size": current.no_repeat_ngram_size,
            "max_new_tokens": current.max_new_tokens,
        }
    )
    study.optimize(objective, n_trials=args.trials)
    baseline = searcher.score(current)
    best = max(searcher.cache.values(), key=lambda r: r["rougeL"])  # ties: the first found (the current one)
    return {"baseline": baseline, "best": best, "searcher": searcher}


def report(args: argparse.Namespace, found: dict[str, Any], articles: int) -> dict[str, Any]:
    from resumen.core.rouge import describe_difference, paired_differences

    baseline, best, searcher = found["baseline"], found["best"], found["searcher"]
    difference = paired_differences(baseline["scores"], best["scores"])["rougeL"]
    trials = [
        {**r["settings"], "rougeL": round(r["rougeL"], 2), "gen_len": round(r["gen_len"], 1), "seconds": r["seconds"]}
        for r in sorted(searcher.cache.values(), key=lambda r: -r["rougeL"])
    ]
    return {
        "model": args.model,
        "articles": articles,
        "trials": args.trials,
        "decodings_run": searcher.generated,
        "current": {**baseline["settings"], "rougeL": round(baseline["rougeL"], 2)},
        "best": {**best["settings"], "rougeL": round(best["rougeL"], 2)},
        "difference": {**difference.as_dict(), "significant": difference.excludes_zero(), "in_words": describe_difference("rougeL", difference)},
        "better": best["rougeL"] > baseline["rougeL"],
        "distinct_settings": trials,
    }


def write_settings(export: Path, result: dict[str, Any]) -> list[str]:
    """The best settings into ``generation_config.json`` and a card section, as one change (resumen.core.files.atomic_files):
    both files are new, or both are as they were."""
    from transformers import GenerationConfig

    from resumen.core.files import atomic_files
    from resumen.core.generation import GenerationSettings

    config = GenerationConfig.from_pretrained(export)
    best = {k: result["best"][k] for k in ("num_beams", "length_penalty", "no_repeat_ngram_size", "max_new_tokens")}
    GenerationSettings.from_generation_config(config).with_overrides(**best).apply_to(config)
    config_text = config.to_json_string(use_diff=True)
    card_path = export / "README.md"
    card = card_path.read_text(encoding="utf-8") if card_path.is_file() else ""
    card = card.split(f"\n{CARD_SECTION}\n", 1)[0].rstrip("\n") + "\n"  # a later search replaces an earlier one
    changed = ", ".join(f"{k} {result['current'][k]} -> {v}" for k, v in best.items() if result["current"][k] != v)
    d = result["difference"]
    card += (
        f"\n{CARD_SECTION}\n\nscripts/tune_generation.py searched {result['trials']} settings on "
        f"{result['articles']} validation articles: {changed or 'no change'}. Validation ROUGE-L (Spanish) "
        f"{result['current']['rougeL']:.2f} -> {result['best']['rougeL']:.2f}, paired difference "
        f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] ({'significant' if d['significant'] else 'not significant'}"
        f" at 95%). Tuned on validation: judge it on test.\n"
    )
    atomic_files({export / "generation_config.json": config_text, card_path: card})
    return ["generation_config.json", "README.md"]


def print_report(result: dict[str, Any]) -> None:
    rows = result["distinct_settings"]
    print(
        f"{len(rows)} distinct settings from {result['trials']} trials on {result['articles']} validation articles "
        f"({result['decodings_run']} decodings run, the rest cached):"
    )
    print("| num_beams | length_penalty | no_repeat_ngram_size | max_new_tokens | ROUGE-L | gen_len | seconds |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['num_beams']} | {row['length_penalty']} | {row['no_repeat_ngram_size']} | {row['max_new_tokens']} | "
            f"{row['rougeL']:.2f} | {row['gen_len']:.1f} | {row['seconds']:.1f} |"
        )
    print(
        f"current: ROUGE-L {result['current']['rougeL']:.2f}; best: ROUGE-L {result['best']['rougeL']:.2f} "
        f"({', '.join(f'{k} {v}' for k, v in result['best'].items() if k != 'rougeL')})"
    )
    print(f"best vs current (paired bootstrap, same articles): {result['difference']['in_words']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import json

    from resumen.app.common import load_summarizer

    args = parse_args(argv)
    articles, references = validation_articles(args)  # before the model loads: a data error costs nothing
    summarizer = load_summarizer(args.model, args.accelerator, "32-true", args.trust_remote_code, args.batch_size)
    result = report(args, search(args, summarizer, articles, references), len(articles))
    if args.write:
        if result["better"]:
            result["written"] = write_settings(Path(args.model), result)
        else:
            result["written"] = []
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_report(result)
        if args.write:
            print(f"Wrote {' and '.join(result['written'])} in {args.model}." if result["written"] else "The current settings scored best: nothing written.")
    return result


def cli() -> None:
    main_guard(main)


if __name__ == "__main__":
    cli()
