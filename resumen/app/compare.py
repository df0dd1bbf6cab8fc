"""Run the same prompts through several models, one in memory at a time, and compare them side by side.

    python scripts/compare.py                                   # t5-base, google/flan-t5-base, google/flan-t5-large
    python scripts/compare.py --models google/flan-t5-base runs/mlsum_flan_t5_small/version_0/export
    python scripts/compare.py --dataset --models google/flan-t5-small runs/.../export --data-config configs/mlsum_flan_t5_small.yaml
    python scripts/compare.py --dataset --data-file articles.jsonl --models t5-base runs/.../export --plot rouge.png

Prompt mode prints a table with each model's parameter count, load time and generation time, and every output;
``--json-output``/``--markdown-output`` save it. Encoder-decoder models run through the seq2seq module, decoder-only
ones through the causal-LM module.

``--dataset`` mode scores each model with the project's Spanish ROUGE and every metric beyond it
(``resumen.core.summary_metrics``: length, novel n-grams, coverage, density, repetition, unsupported numbers and
names) on the data module's test split (or ``--data-file``): the before/after fine-tuning comparison. ``lead-3``
(any ``lead-K``) and ``oracle`` name extractive baselines, scored the same way: a model should beat lead-K.
Each model goes through the inference core with its own prompt template, max_source_length and generation
settings (an export's, as ``summarize.py`` and the server use them), so a fine-tuned export scores here what
``train.py test`` scored for its checkpoint. A baseline trained with another prompt gets its own with
``--template NAME=TEMPLATE`` (the original T5 checkpoints get ``summarize: {text}``, the prefix they were trained
with, unless told otherwise). Each score comes with its 95% bootstrap interval, and
each model after the first with its paired difference from the first (same examples, same resamples), said in words
when it is not significant; ``--plot FILE.png`` draws the scores with their intervals.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import sys
import time
from pathlib import Path
from typing import Any


from resumen.core.errors import ResumenError
from resumen.core.prompts import SUMMARY_TEMPLATE, format_prompt
from resumen.app.common import accelerator_device, add_backend_options, base_parser, check_output, make_trainer, model_spec, predict_rows, read_inputs

DEFAULT_MODELS = ["t5-base", "google/flan-t5-base", "google/flan-t5-large"]
DEFAULT_PROMPTS = [
    "The best thing about living near the sea is",
    "Lo mejor de vivir cerca del mar es",
    format_prompt(
        SUMMARY_TEMPLATE,
        "El Ayuntamiento de Valencia ha anunciado que las doce bibliotecas municipales abrirán hasta la medianoche "
        "durante los meses de mayo y junio. La medida, reclamada por las asociaciones de estudiantes, costará unos "
        "180.000 euros.",
    ),
    "Why do leaves change colour in autumn?",
    "Review: The food was cold and the waiter was rude. Sentiment: negative\n"
    "Review: A wonderful evening, we will come back. Sentiment: positive\n"
    "Review: The film was long but the ending made it worth it. Sentiment:",
]


def load_module(name: str, max_new_tokens: int, num_beams: int, trust_remote_code: bool):
    """The project's module for this model's kind (seq2seq or causal), and the seconds it took to load."""
    from resumen.core.loading import load_config

    start = time.perf_counter()
    config = load_config(name, trust_remote_code=trust_remote_code)
    if config.is_encoder_decoder:
        from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer

        from resumen.core.generation import GenerationSettings

        generation = GenerationSettings(max_new_tokens=max_new_tokens, num_beams=num_beams)
        module = Seq2SeqSummarizer(name, generation=generation, trust_remote_code=trust_remote_code)
    else:
        from resumen.lightning_modules.causal_lm import CausalLMModule

        module = CausalLMModule(name, max_new_tokens=max_new_tokens, num_beams=num_beams, trust_remote_code=trust_remote_code)
    return module, time.perf_counter() - start


def release_memory() -> None:
    """Collect the model just used before the next loads (two large models may not fit together)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def compare_prompts(args, prompts: list[str]) -> list[dict]:
    rows = []
    for name in args.models:
        rows += one_model(name, lambda name=name: prompt_rows(args, name, prompts))  # the model lives only inside prompt_rows
    return rows


def one_model(name: str, run) -> list[dict]:
    """One model's rows; a model that fails (missing, offline, wrong kind, out of memory) becomes an error row
    instead of losing the other models' results."""
    try:
        rows = run()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: BLE001 - each model is independent (a Rust panic too): report it, go on
        from resumen.core.errors import error_chain

        user_error = next((e for e in error_chain(error) if isinstance(e, ResumenError)), None)
        text = str(error).strip()
        message = str(user_error) if user_error else f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
        print(f"error: {name}: {message}", file=sys.stderr)
        rows = [{"model": name, "error": message}]
    release_memory()
    return rows if isinstance(rows, list) else [rows]


def prompt_rows(args, name: str, prompts: list[str]) -> list[dict]:
    from resumen.datamodules.text_prompts import prompt_loader

    module, load_seconds = load_module(name, args.max_new_tokens, args.num_beams, args.trust_remote_code)
    parameters = sum(p.numel() for p in module.model.parameters())
    seq2seq = bool(module.model.config.is_encoder_decoder)
    loader = prompt_loader(prompts, module.tokenizer, args.batch_size, "right" if seq2seq else "left")
    start = time.perf_counter()
    outputs = predict_rows(make_trainer(args), module, loader)
    seconds = time.perf_counter() - start
    return [
        {
            "model": name,
            "parameters": parameters,
            "load_seconds": round(load_seconds, 3),
            "generate_seconds": round(seconds, 3),
            "prompt": prompt,
            "output": output["summary"] if seq2seq else output["outputs"][0],
        }
        for prompt, output in zip(prompts, outputs)
    ]


def compare_dataset(args, kept: dict[str, Any] | None = None) -> list[dict]:
    """Spanish ROUGE of each model on the test split (or a file), each through the inference core."""
    from resumen.datamodules.summarization import SummarizationDataModule

    from resumen.core.baselines import is_baseline
    from resumen.core.summary_metrics import intervals, reference_rows

    ids, articles, references = SummarizationDataModule(**data_settings(args)).articles("test")
    reference = trained_generation(args)
    rows = []
    for number, name in enumerate(args.models, start=1):
        print(f"[{number}/{len(args.models)}] {name}: summarising {len(articles)} articles ...", file=sys.stderr, flush=True)
        score = baseline_row if is_baseline(name) else dataset_row
        rows += one_model(name, lambda name=name, score=score: score(args, name, articles, references, reference))
        summaries = rows[-1].pop("_summaries", None)
        if kept is not None and summaries is not None:  # for the report: each model's summaries, the data
            kept.setdefault("summaries", {})[name] = summaries
        if "rougeL" in rows[-1]:
            row = rows[-1]
            print(f"[{number}/{len(args.models)}] {name}: ROUGE-L {row['rougeL']:.2f} in {row['generate_seconds']:.0f} s", file=sys.stderr)
    add_paired_differences(rows)
    if kept is not None:
        kept.update(articles=articles, references=references)
    if rows and any("rougeL" in row for row in rows):  # how long, abstractive and faithful the data's own summaries are
        rows.append({"model": REFERENCES, "examples": len(articles), **interval_cells(intervals(reference_rows(references, articles)))})
    return rows


# the row of the reference summaries' own model-free metrics (not a model: no ROUGE, no differences)
REFERENCES = "(references)"


def interval_cells(found: dict[str, Any]) -> dict[str, float]:
    """``{key: mean, key_low: low, key_high: high}`` for each metric's interval, rounded as printed."""
    cells: dict[str, float] = {}
    for key, interval in found.items():
        cells.update({key: round(interval.mean, 2), f"{key}_low": round(interval.low, 2), f"{key}_high": round(interval.high, 2)})
    return cells


def scored_row(args, row: dict[str, Any], summaries: list[str], articles: list[str], references: list[str]) -> dict[str, Any]:
    """``row`` with every metric of resumen.core.summary_metrics (mean and interval), BERTScore when asked for, and
    the per-example scores the paired differences need."""
    import numpy as np

    from resumen.core.rouge import LiteratureRougeScorer, rouge_intervals
    from resumen.core.summary_metrics import KEYS, intervals, score_rows

    scores, keys = score_rows(summaries, references, articles), KEYS
    if "bertscore" in args.metrics:
        from resumen.core.bertscore import bertscore_rows

        bert = bertscore_rows(summaries, references, args.bertscore_model, args.bertscore_layer, accelerator_device(args.accelerator), args.batch_size)
        scores, keys = np.column_stack([scores, bert]), (*KEYS, "bertscore")
    row.update(interval_cells(intervals(scores, keys=keys)))
    literature = rouge_intervals(LiteratureRougeScorer().score_rows(summaries, references))["rougeL"]
    row["literature_rougeL"] = literature.as_dict()
    row["_scores"] = (np.arange(len(articles)), scores, keys)
    row["_summaries"] = list(summaries)
    return row


def baseline_row(args, name: str, articles: list[str], references: list[str], reference: Any = None) -> dict:
    """An extractive baseline (lead-K, oracle) scored like a model: no weights, no generation settings."""
    from resumen.core.baselines import baseline_summaries

    start = time.perf_counter()
    summaries = baseline_summaries(name, articles, references)
    row: dict[str, Any] = {
        "model": name,
        "backend": "extractive baseline",
        "parameters": 0,
        "load_seconds": 0.0,
        "generate_seconds": round(time.perf_counter() - start, 3),
        "examples": len(articles),
    }
    return scored_row(args, row, summaries, articles, references)


def trained_generation(args) -> tuple[str, dict[str, Any]] | None:
    """The generation settings of the first model compared that a resumen run trained (an export or an adapter:
    it records them), ``(its name, settings)``; None when there is none. A model without a record of its own (a
    base model from the hub, the random model a demo starts from) is scored with these rather than its library
    defaults (4 beams and 128 tokens, which a model that learned nothing fills to the end)."""
    from transformers import GenerationConfig

    from resumen.core.baselines import is_baseline
    from resumen.core.generation import GenerationSettings

    for name in args.models:
        path = model_spec(name, args.backend, args.compute_type)[0]
        if is_baseline(name) or trained_record(path) is None:
            continue
        try:
            settings = GenerationSettings.from_generation_config(GenerationConfig.from_pretrained(path))
        except (OSError, ValueError):
            continue
        return name, {k: v for k, v in settings.describe().items() if k in ("max_new_tokens", "num_beams", "length_penalty", "no_repeat_ngram_size")}
    return None


def trained_record(path: str) -> Any:
    """The trained-with record of an export, an adapter directory or a hub id (None for a model resumen did not
    train, for a checkpoint, which keeps its settings in itself, and for a model whose config cannot be read here:
    its own load reports that)."""
    from resumen.core.loading import load_config
    from resumen.core.trained_with import from_model_config

    if path.endswith(".ckpt"):
        return None
    try:
        return from_model_config(load_config(path), path)
    except ResumenError:
        return None


# The original T5 checkpoints were trained to summarise after this prefix; Flan-T5 and resumen exports have their own.
T5_SUMMARY_TEMPLATE = "summarize: {text}"
ORIGINAL_T5 = re.compile(r"^(google-t5/)?t5-(small|base|large|3b|11b)$")


def template_for(name: str, args) -> str | None:
    """The template a model is scored with: ``--template NAME=...``, T5's own prefix, or the model's own (None)."""
    given = dict(args.templates)
    if name in given:
        return given[name]
    if ORIGINAL_T5.match(name):
        print(f"note: {name} is scored with its own task prefix {T5_SUMMARY_TEMPLATE!r} (--template {name}=... to change)", file=sys.stderr)
        return T5_SUMMARY_TEMPLATE
    return None


def dataset_row(args, name: str, articles: list[str], references: list[str], reference: tuple[str, dict] | None = None) -> dict:
    import numpy as np

    from resumen.app.common import load_summarizer

    start = time.perf_counter()
    path, backend, compute_type = model_spec(name, args.backend, args.compute_type)
    overrides = generation_overrides(args)
    if reference is not None and not overrides and trained_record(path) is None and not path.endswith(".ckpt"):
        overrides = dict(reference[1])
        shown = ", ".join(f"{k}={v}" for k, v in overrides.items())
        print(
            f"note: {name} has no generation settings of its own: scored with {reference[0]}'s ({shown}); "
            "--num-beams and --max-new-tokens choose others for every model",
            file=sys.stderr,
        )
    summarizer = load_summarizer(
        path,
        args.accelerator,
        args.precision or "32-true",
        args.trust_remote_code,
        args.batch_size,
        template_for(path, args),
        name=name,
        backend=backend,
        compute_type=compute_type,
    )
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    summaries = summarizer.summarize(articles, **overrides)
    seconds = time.perf_counter() - start
    row: dict[str, Any] = {
        "model": name,
        "backend": summarizer.backend,
        "precision": summarizer.precision,
        "parameters": sum(p.numel() for p in summarizer.model.parameters()) if summarizer.model is not None else None,
        "load_seconds": round(load_seconds, 3),
        "generate_seconds": round(seconds, 3),
        "examples": len(articles),
        "prompt_template": summarizer.trained_with.prompt_template,
        "generation": summarizer.settings(**overrides).describe(),
        "gen_len": round(float(np.mean([s.output_tokens for s in summaries])), 2),
    }
    return scored_row(args, row, [s.summary for s in summaries], articles, references)


def paired(baseline: dict, row: dict) -> dict[str, dict] | None:
    """``row``'s metrics minus ``baseline``'s on the same examples, each with its interval and in words."""
    from resumen.core.rouge import describe_difference
    from resumen.core.summary_metrics import BY_KEY, paired_differences

    if list(baseline["_scores"][0]) != list(row["_scores"][0]):
        return None
    keys = row["_scores"][2]  # (indices, scores, the columns' keys)
    return {
        key: {**interval.as_dict(), "significant": interval.excludes_zero(), "in_words": describe_difference(key, interval, BY_KEY[key].higher_is_better)}
        for key, interval in paired_differences(baseline["_scores"][1], row["_scores"][1], keys=keys).items()
    }


def generation_overrides(args) -> dict[str, Any]:
    """Settings given on the command line replace every model's own (dataset mode)."""
    return {k: v for k, v in {"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams}.items() if v is not None}


def plot_scores(rows: list[dict], path: str) -> None:
    """Each model's ROUGE-1/2/L with its 95% interval as error bars (a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resumen.core.files import atomic_file

    scored = [row for row in rows if "rougeL" in row]
    keys = ("rouge1", "rouge2", "rougeL")
    figure, axes = plt.subplots(figsize=(max(6.0, 1.6 * len(scored) * len(keys) / 2), 4.2))
    width = 0.8 / max(len(scored), 1)
    for i, row in enumerate(scored):
        positions = [k + (i - (len(scored) - 1) / 2) * width for k in range(len(keys))]
        means = [row[key] for key in keys]
        errors = [[row[key] - row[f"{key}_low"] for key in keys], [row[f"{key}_high"] - row[key] for key in keys]]
        bars = axes.bar(positions, means, width, yerr=errors, capsize=4, label=Path(row["model"]).name or row["model"])
        axes.bar_label(bars, labels=[f"{m:.1f}" for m in means], padding=2, fontsize=8)
    axes.set_xticks(range(len(keys)), ["ROUGE-1", "ROUGE-2", "ROUGE-L"])
    axes.set_ylabel("Spanish ROUGE F1 (0-100)")
    axes.set_title(f"ROUGE on {scored[0]['examples'] if scored else 0} test articles, 95% bootstrap intervals")
    axes.legend(fontsize=8)
    figure.tight_layout()
    with atomic_file(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120)
    plt.close(figure)
    print(f"Plot: {path}", file=sys.stderr)


def add_paired_differences(rows: list[dict]) -> None:
    """Each model's metrics minus the first (successful) model's, and each model's minus every baseline's (lead-K,
    oracle), with paired bootstrap intervals, in place."""
    from resumen.core.baselines import is_baseline

    scored = [row for row in rows if row.get("_scores") is not None]
    for row in scored[1:]:
        difference = paired(scored[0], row)
        if difference is None:
            row["difference_error"] = "not the same test examples as the first model: no paired difference"
            continue
        row["difference_vs"], row["difference"] = scored[0]["model"], difference
    baselines = [row for row in scored if is_baseline(row["model"])]
    for row in scored:
        if not is_baseline(row["model"]) and baselines:
            versus = {baseline["model"]: paired(baseline, row) for baseline in baselines}
            row["versus_baselines"] = {name: difference for name, difference in versus.items() if difference is not None}
    for row in rows:
        row.pop("_scores", None)  # per-example scores: for the pairing only, not for the report


def data_settings(args) -> dict[str, Any]:
    """Data module arguments from ``--data-config`` (a training recipe's ``data:`` section) and ``--data-file``."""
    settings: dict[str, Any] = {}
    if args.data_config:
        import yaml

        settings = dict(yaml.safe_load(Path(args.data_config).read_text(encoding="utf-8")).get("data", {}))
        settings.pop("tokenizer_name", None)
    if args.data_file:
        settings["data_files"] = {"test": args.data_file}
    if not settings.get("data_files") and not settings.get("dataset_name"):
        settings.setdefault("dataset_name", "mteb/mlsum")
    if args.max_samples is not None:
        settings["max_test_samples"] = args.max_samples
    return settings


def named_template(value: str) -> tuple[str, str]:
    """``NAME=TEMPLATE`` for --template (the template is checked like any other)."""
    from resumen.core.prompts import validate_template

    name, separator, template = value.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=TEMPLATE, e.g. t5-base='summarize: {{text}}' (got {value!r})")
    try:
        return name, validate_template(template, f"--template {name}")
    except ResumenError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def markdown_table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(column for row in rows for column in row))  # error rows have fewer columns

    def cell(value: Any) -> str:
        return str(value).replace("\n", " ").replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def dataset_markdown(rows: list[dict]) -> str:
    """The dataset comparison: ROUGE with 95% intervals per model and baseline, the metrics beyond ROUGE (the
    references' own beside them), then each model's paired differences in words."""
    from resumen.core.rouge import LITERATURE_SCORER
    from resumen.core.summary_metrics import HEADLINE, MODEL_METRICS, shown_metrics

    def interval(row: dict, key: str) -> str:
        return f"{row[key]:.2f} [{row[f'{key}_low']:.2f}, {row[f'{key}_high']:.2f}]" if key in row else ""

    metrics = shown_metrics(rows)  # BERTScore too when it was asked for
    rouge_table, beyond_table = [], []
    for row in rows:
        if "error" in row:
            rouge_table.append({"model": row["model"], "error": row["error"]})
            continue
        if row["model"] != REFERENCES:
            cells = {"model": row["model"], "examples": row["examples"], "prompt": row.get("prompt_template", "").replace("\n", "\\n")}
            cells.update({m.key: interval(row, m.key) for m in metrics if m.group == "rouge"})
            if "literature_rougeL" in row:
                lit = row["literature_rougeL"]
                cells["rougeL, literature-comparable"] = f"{lit['mean']:.2f} [{lit['low']:.2f}, {lit['high']:.2f}]"
            rouge_table.append(cells)
        beyond_table.append({"model": row["model"], **{m.label: interval(row, m.key) for m in metrics if m.group != "rouge"}})
    lines = [
        markdown_table(rouge_table),
        "",
        "ROUGE: mean [95% bootstrap interval] over the test examples. The last column is "
        f"scored as published MLSUM-es figures were ({LITERATURE_SCORER}), to place a model among them; not "
        "Spanish-aware. lead-K is the article's first K sentences; the oracle picks sentences knowing the reference "
        "(the ceiling of extraction).",
        "",
        "Beyond ROUGE (docs/evaluation.md says what each means; (references) is the data's own summaries):",
        "",
        markdown_table(beyond_table),
    ]
    from resumen.core.baselines import is_baseline

    shown = [*HEADLINE, *(m.key for m in MODEL_METRICS)]  # in words: the headline metrics; the JSON output has every one

    def in_words(model: str, versus: str, difference: dict) -> list[str]:
        return [f"\n{model} vs {versus} (paired bootstrap, same examples):", *(f"- {difference[key]['in_words']}" for key in shown if key in difference)]

    baselines = any(is_baseline(row["model"]) for row in rows)
    for row in rows:
        if "difference" in row and not (baselines and is_baseline(row["model"])):  # a baseline's is the model's, mirrored
            lines += in_words(row["model"], row["difference_vs"], row["difference"])
        elif "difference_error" in row:
            lines.append(f"\n{row['model']}: {row['difference_error']}")
        for name, difference in row.get("versus_baselines", {}).items():
            if name != row.get("difference_vs"):
                lines += in_words(row["model"], name, difference)
    return "\n".join(lines)


def text_report(rows: list[dict]) -> str:
    failed = [row for row in rows if "error" in row]
    errors = "".join(f"\n{row['model']}: failed ({row['error']})" for row in failed)
    if any("examples" in row for row in rows):
        return dataset_markdown([row for row in rows if "error" not in row]) + errors
    rows = [row for row in rows if "error" not in row]
    if not rows:
        return "No model ran." + errors
    models = list(dict.fromkeys(row["model"] for row in rows))
    lines = [f"{'model':<40} {'parameters':>12} {'load s':>8} {'generate s':>11}"]
    for name in models:
        row = next(r for r in rows if r["model"] == name)
        lines.append(f"{name:<40} {row['parameters']:>12,} {row['load_seconds']:>8.2f} {row['generate_seconds']:>11.2f}")
    for prompt in dict.fromkeys(row["prompt"] for row in rows):
        lines.append(f"\nPrompt: {prompt!r}")
        for row in rows:
            if row["prompt"] == prompt:
                lines.append(f"  {row['model']:<38} {row['output']!r}")
    return "\n".join(lines) + errors


def main(argv: list[str] | None = None) -> list[dict]:
    parser = base_parser(__doc__, DEFAULT_MODELS[0])
    parser.add_argument(
        "--models", nargs="+", default=DEFAULT_MODELS, help="hub ids or local directories to compare; with --dataset also lead-K (K sentences) and oracle"
    )
    parser.add_argument("--max-new-tokens", type=int, help="generated tokens (prompts: 64; --dataset: each model's own)")
    parser.add_argument("--num-beams", type=int, help="beam search width (prompts: 1; --dataset: each model's own)")
    parser.add_argument(
        "--template",
        dest="templates",
        action="append",
        default=[],
        type=named_template,
        metavar="NAME=TEMPLATE",
        help="the prompt one model is scored with (--dataset), e.g. t5-base='summarize: {text}'; repeat for several",
    )
    parser.add_argument("--plot", help="--dataset: write a PNG of each model's ROUGE with its 95%% interval")
    parser.add_argument("--report", help="--dataset: write one self-contained HTML page: metrics, charts, examples side by side")
    parser.add_argument("--report-examples", type=int, default=10, help="articles shown in --report (default 10)")
    parser.add_argument("--metrics", nargs="+", default=[], choices=["bertscore"], help="--dataset: model-based metrics to add (they load an encoder)")
    parser.add_argument("--bertscore-model", default=None, help="BERTScore's encoder: a hub id or a local directory (default bert-base-multilingual-cased)")
    parser.add_argument("--bertscore-layer", type=int, default=None, help="the encoder layer whose embeddings are matched (default 9)")
    add_backend_options(parser)  # --dataset; PATH@ctranslate2[:TYPE] in --models picks one model's engine
    parser.add_argument("--dataset", action="store_true", help="score ROUGE on a test split instead of prompts")
    parser.add_argument("--data-config", help="recipe YAML whose data section chooses the test split")
    parser.add_argument("--data-file", help="test file (json/jsonl/csv/parquet with text and summary columns)")
    parser.add_argument("--max-samples", type=int, default=None, help="test examples to score")
    parser.add_argument("--json-output", help="write the comparison as JSON")
    parser.add_argument("--markdown-output", help="write the comparison as a Markdown table")
    args = parser.parse_args(argv)
    from resumen.core.generation import GenerationSettings

    GenerationSettings().with_overrides(max_new_tokens=args.max_new_tokens, num_beams=args.num_beams)  # checked first
    if not args.dataset:
        from resumen.core.baselines import is_baseline

        named = [name for name in args.models if is_baseline(name)]
        if named:
            raise ResumenError(f"{', '.join(named)}: a baseline summarises test articles; add --dataset (prompts have no article).")
        args.max_new_tokens, args.num_beams = args.max_new_tokens or 64, args.num_beams or 1
    elif args.plot and not args.plot.lower().endswith(".png"):
        raise ResumenError(f"--plot writes a PNG: give a file name ending in .png (got {args.plot}).")
    if args.metrics and not args.dataset:
        raise ResumenError("--metrics scores summaries against references: add --dataset.")
    if "bertscore" in args.metrics:  # the encoder is checked before any model generates
        from resumen.core.bertscore import DEFAULT_ENCODER, DEFAULT_LAYER, check_encoder

        args.bertscore_model, args.bertscore_layer = args.bertscore_model or DEFAULT_ENCODER, args.bertscore_layer or DEFAULT_LAYER
        check_encoder(args.bertscore_model, args.bertscore_layer)
    if args.report and not args.dataset:
        raise ResumenError("--report describes a test set: add --dataset.")
    if args.report and not args.report.lower().endswith((".html", ".htm")):
        raise ResumenError(f"--report writes an HTML page: give a file name ending in .html (got {args.report}).")
    from resumen.core.files import atomic_file, check_output_file

    outputs = (
        ("--json-output", args.json_output),
        ("--markdown-output", args.markdown_output),
        ("--plot", args.plot if args.dataset else None),
        ("--report", args.report),
    )
    for option, path in outputs:
        if path:  # before any model loads: a bad output path is not found after every score is computed
            check_output_file(path, option)
    check_output(args)
    kept: dict[str, Any] = {}
    rows = compare_dataset(args, kept) if args.dataset else compare_prompts(args, read_inputs(args, default=DEFAULT_PROMPTS))
    # the table first: a file that still cannot be written (a full disk) leaves the scores on the screen
    print("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) if args.json else text_report(rows), flush=True)
    if args.json_output:
        with atomic_file(args.json_output) as handle:
            json.dump(rows, handle, ensure_ascii=False, indent=2)
    if args.markdown_output:
        with atomic_file(args.markdown_output) as handle:
            handle.write((dataset_markdown(rows) if args.dataset else markdown_table(rows)) + "\n")
    if args.plot and args.dataset:
        plot_scores(rows, args.plot)
    if args.report and kept.get("articles") is not None:
        from resumen.app.report import build_report

        with atomic_file(args.report) as handle:
            handle.write(build_report(rows, kept.get("summaries", {}), kept["articles"], kept["references"], args.report_examples))
        print(f"Report: {args.report}", file=sys.stderr)
    failed = [row["model"] for row in rows if "error" in row]
    if failed:  # the others' results are printed and written; the exit code still tells a script
        raise ResumenError(f"{len(failed)} of {len(args.models)} model(s) failed: {', '.join(failed)} (see above).")
    return rows


def cli() -> None:
    """Console entry point: one-line errors, exit code 2."""
    from resumen.app.cli_support import main_guard

    main_guard(main)


if __name__ == "__main__":
    cli()
