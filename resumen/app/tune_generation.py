"""Search a trained model's generation settings, without retraining: beams, length penalty, no-repeat n-grams and
max_new_tokens, scored by Spanish ROUGE-L (or --objective, any judging metric of resumen.core.summary_metrics) on
the validation split, under --constraint limits such as "repeated_trigrams<=1" or "words<=40".

    python scripts/tune_generation.py --model runs/demo/version_0/export --data-file validation.jsonl --trials 12
    python scripts/tune_generation.py --model EXPORT --data-config configs/mlsum_flan_t5_small.yaml --trials 20 --write
    python scripts/tune_generation.py --model EXPORT --data-file validation.jsonl --constraint "words<=40" --constraint "unsupported_numbers<=5"

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
    parser.add_argument("--objective", default="rougeL", type=objective_key, help="the metric maximised or minimised (default rougeL)")
    parser.add_argument(
        "--constraint",
        dest="constraints",
        action="append",
        default=[],
        type=constraint,
        metavar="METRIC<=VALUE",
        help="a limit on a validation mean, e.g. 'words<=40' or 'novel_2grams>=10'; settings outside it never win; repeatable",
    )
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


def objective_key(value: str) -> str:
    """A metric that judges (higher or lower is better): a length or abstractiveness describes, use it as a limit."""
    from resumen.core.summary_metrics import BY_KEY, KEYS

    if value not in KEYS:  # the model-free ones and ROUGE: each trial scores them
        raise argparse.ArgumentTypeError(f"unknown metric '{value}' (metrics: {', '.join(KEYS)})")
    if BY_KEY[value].higher_is_better is None:
        raise argparse.ArgumentTypeError(f"{value} describes a summary rather than judging it: limit it with --constraint '{value}<=N' instead")
    return value


def constraint(value: str) -> tuple[str, str, float]:
    """``"words<=40"`` -> ``("words", "<=", 40.0)``."""
    from resumen.core.summary_metrics import KEYS

    for operator in ("<=", ">="):
        key, found, number = value.partition(operator)
        if found:
            key = key.strip()
            if key not in KEYS:
                raise argparse.ArgumentTypeError(f"unknown metric '{key}' in '{value}' (metrics: {', '.join(KEYS)})")
            try:
                return key, operator, float(number)
            except ValueError:
                raise argparse.ArgumentTypeError(f"'{value}': a number must follow {operator}") from None
    raise argparse.ArgumentTypeError(f"'{value}': write METRIC<=VALUE or METRIC>=VALUE, e.g. words<=40")


def violations(means: dict[str, float], constraints: list[tuple[str, str, float]]) -> list[float]:
    """How far each limit is exceeded (<= 0: met), as Optuna's constrained sampling reads them."""
    return [(means[key] - limit) if operator == "<=" else (limit - means[key]) for key, operator, limit in constraints]


class GenerationSearch:
    """Scores settings on fixed articles, each distinct decoding once."""

    def __init__(self, summarizer: Any, articles: list[str], references: list[str], objective: str = "rougeL") -> None:
        from resumen.core.summary_metrics import BY_KEY

        self.objective = objective
        self.sign = 1.0 if BY_KEY[objective].higher_is_better else -1.0  # "goal": the objective, higher is better
        self.summarizer, self.articles, self.references = summarizer, articles, references
        self.cache: dict[tuple, dict[str, Any]] = {}
        self.generated = 0  # decodings actually run (the rest came from the cache)

    def score(self, settings: Any) -> dict[str, Any]:
        import numpy as np

        from resumen.core.summary_metrics import KEYS, score_rows

        key = decoding_key(settings)
        if key not in self.cache:
            start = time.perf_counter()
            overrides = dict(zip(("num_beams", "length_penalty", "no_repeat_ngram_size", "max_new_tokens"), key))
            summaries = self.summarizer.summarize(self.articles, **overrides)
            scores = score_rows([s.summary for s in summaries], self.references, self.articles)
            self.generated += 1
            means = dict(zip(KEYS, (float(v) for v in scores.mean(axis=0))))
            self.cache[key] = {
                "settings": overrides,
                "scores": scores,
                "means": means,
                "seconds": round(time.perf_counter() - start, 2),
                "goal": self.sign * means[self.objective],
                "gen_len": float(np.mean([s.output_tokens for s in summaries])),
            }
        return self.cache[key]


def search(args: argparse.Namespace, summarizer: Any, articles: list[str], references: list[str]) -> dict[str, Any]:
    import optuna

    current = summarizer.generation
    lengths = sorted({max(8, current.max_new_tokens // 2), max(8, current.max_new_tokens * 3 // 4), current.max_new_tokens, current.max_new_tokens * 3 // 2})
    searcher = GenerationSearch(summarizer, articles, references, args.objective)

    def objective(trial: optuna.Trial) -> float:
        settings = current.with_overrides(
            num_beams=trial.suggest_categorical("num_beams", sorted({*BEAMS, current.num_beams})),
            length_penalty=trial.suggest_categorical("length_penalty", sorted({*LENGTH_PENALTIES, float(current.length_penalty)})),
            no_repeat_ngram_size=trial.suggest_categorical("no_repeat_ngram_size", sorted({*NO_REPEAT, current.no_repeat_ngram_size})),
            max_new_tokens=trial.suggest_categorical("max_new_tokens", lengths),
        )
        result = searcher.score(settings)
        trial.set_user_attr("gen_len", result["gen_len"])
        for (key, operator, limit), excess in zip(args.constraints, violations(result["means"], args.constraints)):
            trial.set_constraint(f"{key}{operator}{limit:g}", excess)  # <= 0: met; the sampler steers towards it
        return result["goal"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=args.seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)  # the goal: a lower-is-better objective negated
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
    feasible = [r for r in searcher.cache.values() if max(violations(r["means"], args.constraints), default=0) <= 0]
    # ties: the first found (the current one); no setting within the limits: the current settings stay
    best = max(feasible, key=lambda r: r["goal"]) if feasible else baseline
    return {"baseline": baseline, "best": best, "searcher": searcher, "feasible": bool(feasible)}


def report(args: argparse.Namespace, found: dict[str, Any], articles: int) -> dict[str, Any]:
    from resumen.core.rouge import describe_difference
    from resumen.core.summary_metrics import BY_KEY, paired_differences

    baseline, best, searcher, objective = found["baseline"], found["best"], found["searcher"], args.objective
    difference = paired_differences(baseline["scores"], best["scores"])[objective]
    limited = [key for key, _, _ in args.constraints]
    shown = list(dict.fromkeys(["rougeL", objective, *limited]))

    def values(r: dict[str, Any]) -> dict[str, float]:
        return {key: round(r["means"][key], 2) for key in shown}

    trials = [
        {**r["settings"], **values(r), "gen_len": round(r["gen_len"], 1), "seconds": r["seconds"]}
        for r in sorted(searcher.cache.values(), key=lambda r: -r["goal"])
    ]
    return {
        "model": args.model,
        "articles": articles,
        "trials": args.trials,
        "decodings_run": searcher.generated,
        "objective": objective,
        "constraints": [f"{key}{operator}{limit:g}" for key, operator, limit in args.constraints],
        "within_constraints": found["feasible"],
        "current": {**baseline["settings"], **values(baseline)},
        "best": {**best["settings"], **values(best)},
        "difference": {
            **difference.as_dict(),
            "significant": difference.excludes_zero(),
            "in_words": describe_difference(objective, difference, BY_KEY[objective].higher_is_better),
        },
        "better": best["goal"] > baseline["goal"],
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
        f"{result['articles']} validation articles: {changed or 'no change'}. Validation {result['objective']} "
        f"{result['current'][result['objective']]:.2f} -> {result['best'][result['objective']]:.2f}"
        f"{' within ' + ', '.join(result['constraints']) if result['constraints'] else ''}, paired difference "
        f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] ({'significant' if d['significant'] else 'not significant'}"
        f" at 95%). Tuned on validation: judge it on test.\n"
    )
    atomic_files({export / "generation_config.json": config_text, card_path: card})
    return ["generation_config.json", "README.md"]


def print_report(result: dict[str, Any]) -> None:
    rows = result["distinct_settings"]
    settings = ["num_beams", "length_penalty", "no_repeat_ngram_size", "max_new_tokens"]
    metrics = [key for key in rows[0] if key not in (*settings, "gen_len", "seconds")] if rows else ["rougeL"]
    limits = f" within {', '.join(result['constraints'])}" if result["constraints"] else ""
    print(
        f"{len(rows)} distinct settings from {result['trials']} trials on {result['articles']} validation articles "
        f"({result['decodings_run']} decodings run, the rest cached), objective {result['objective']}{limits}:"
    )
    columns = [*settings, *metrics, "gen_len", "seconds"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(f"{row[c]:.2f}" if c in metrics else str(row[c]) for c in columns) + " |")
    objective = result["objective"]
    if not result["within_constraints"]:
        print(f"no setting met {', '.join(result['constraints'])}: the current settings stay.")
    chosen = ", ".join(f"{k} {result['best'][k]}" for k in settings)
    print(f"current: {objective} {result['current'][objective]:.2f}; best: {objective} {result['best'][objective]:.2f} ({chosen})")
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
