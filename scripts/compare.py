"""Run the same prompts through several models, one in memory at a time, and compare them side by side.

    python scripts/compare.py                                   # t5-base, google/flan-t5-base, google/flan-t5-large
    python scripts/compare.py --models google/flan-t5-base runs/mlsum_flan_t5_small/version_0/export
    python scripts/compare.py --dataset --models google/flan-t5-small runs/.../export --data-config configs/mlsum_flan_t5_small.yaml
    python scripts/compare.py --dataset --data-file articles.jsonl --models ...

Prompt mode prints a table with each model's parameter count, load time and generation time, and every output;
``--json-output``/``--markdown-output`` save it. ``--dataset`` mode scores each model with the project's Spanish
ROUGE on the data module's test split (or ``--data-file``): the before/after fine-tuning comparison. Each score
comes with its 95% bootstrap interval, and each model after the first with its paired difference from the first
(same examples, same resamples), said in words when it is not significant.
Encoder-decoder models run through the seq2seq module, decoder-only ones through the causal-LM module.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.errors import ResumenError  # noqa: E402
from core.prompts import SUMMARY_TEMPLATE, format_prompt  # noqa: E402
from scripts.common import base_parser, make_trainer, predict_rows, read_inputs  # noqa: E402

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
    from core.loading import load_config

    start = time.perf_counter()
    config = load_config(name, trust_remote_code=trust_remote_code)
    if config.is_encoder_decoder:
        from lightning_modules.seq2seq import Seq2SeqSummarizer

        module = Seq2SeqSummarizer(name, max_new_tokens=max_new_tokens, num_beams=num_beams, trust_remote_code=trust_remote_code)
    else:
        from lightning_modules.causal_lm import CausalLMModule

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
        rows += one_model(name, lambda: prompt_rows(args, name, prompts))  # the model lives only inside prompt_rows
    return rows


def one_model(name: str, run) -> list[dict]:
    """One model's rows; a model that fails (missing, offline, wrong kind, out of memory) becomes an error row
    instead of losing the other models' results."""
    try:
        rows = run()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: BLE001 - each model is independent (a Rust panic too): report it, go on
        from core.errors import error_chain

        user_error = next((e for e in error_chain(error) if isinstance(e, ResumenError)), None)
        text = str(error).strip()
        message = str(user_error) if user_error else f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
        print(f"error: {name}: {message}", file=sys.stderr)
        rows = [{"model": name, "error": message}]
    release_memory()
    return rows if isinstance(rows, list) else [rows]


def prompt_rows(args, name: str, prompts: list[str]) -> list[dict]:
    from datamodules.text_prompts import prompt_loader

    module, load_seconds = load_module(name, args.max_new_tokens, args.num_beams, args.trust_remote_code)
    parameters = sum(p.numel() for p in module.model.parameters())
    seq2seq = bool(module.model.config.is_encoder_decoder)
    loader = prompt_loader(prompts, module.tokenizer, args.batch_size, "right" if seq2seq else "left")
    start = time.perf_counter()
    outputs = predict_rows(make_trainer(args), module, loader)
    seconds = time.perf_counter() - start
    return [
        {"model": name, "parameters": parameters, "load_seconds": round(load_seconds, 3),
         "generate_seconds": round(seconds, 3), "prompt": prompt,
         "output": output["summary"] if seq2seq else output["outputs"][0]}
        for prompt, output in zip(prompts, outputs)
    ]


def compare_dataset(args) -> list[dict]:
    """Spanish ROUGE of each model on the test split (or a file), via the seq2seq module's ``test``."""
    rows, settings = [], data_settings(args)
    for name in args.models:
        rows += one_model(name, lambda: dataset_row(args, name, settings))
    add_paired_differences(rows)
    return rows


def add_paired_differences(rows: list[dict]) -> None:
    """Each model's ROUGE minus the first (successful) model's, with a paired bootstrap interval, in place."""
    from core.rouge import describe_difference, paired_differences

    scored = [row for row in rows if row.get("_scores") is not None]
    for row in scored[1:]:
        baseline = scored[0]
        if list(baseline["_scores"][0]) != list(row["_scores"][0]):
            row["difference_error"] = "not the same test examples as the first model: no paired difference"
            continue
        differences = paired_differences(baseline["_scores"][1], row["_scores"][1])
        row["difference_vs"] = baseline["model"]
        row["difference"] = {
            key: {**interval.as_dict(), "significant": interval.excludes_zero(), "in_words": describe_difference(key, interval)}
            for key, interval in differences.items()
        }
    for row in rows:
        row.pop("_scores", None)  # per-example scores: for the pairing only, not for the report


def dataset_row(args, name: str, data_kwargs: dict[str, Any]) -> dict:
    from datamodules.summarization import SummarizationDataModule

    module, load_seconds = load_module(name, args.max_new_tokens, args.num_beams, args.trust_remote_code)
    data = SummarizationDataModule(name, **data_kwargs)
    data.connect(module.vocabulary, module.trained_prompt_template)  # an export's own prompt, unless the recipe sets one
    trainer = make_trainer(args)
    module.check_precision(trainer.precision)
    start = time.perf_counter()
    metrics = trainer.test(module, datamodule=data, verbose=False)[0]
    seconds = time.perf_counter() - start
    scores = {key: round(float(metrics[f"test/{key}"]), 2) for key in ("loss", "gen_len") if f"test/{key}" in metrics}
    for key, interval in module.test_intervals.items():
        scores.update({key: round(interval.mean, 2), f"{key}_low": round(interval.low, 2), f"{key}_high": round(interval.high, 2)})
    return {
        "model": name, "parameters": sum(p.numel() for p in module.model.parameters()),
        "load_seconds": round(load_seconds, 3), "generate_seconds": round(seconds, 3),
        "examples": len(data.datasets["test"]), **scores, "_scores": module.test_scores,
    }


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


def markdown_table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(column for row in rows for column in row))  # error rows have fewer columns
    def cell(value: Any) -> str:
        return str(value).replace("\n", " ").replace("|", "\\|")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def dataset_markdown(rows: list[dict]) -> str:
    """The dataset comparison: ROUGE with 95% intervals per model, then each model's paired difference in words."""
    from core.rouge import ROUGE_KEYS

    table = []
    for row in rows:
        if "error" in row:
            table.append({"model": row["model"], "error": row["error"]})
            continue
        cells = {"model": row["model"], "examples": row["examples"], "loss": row.get("loss", "")}
        cells.update({key: f"{row[key]:.2f} [{row[f'{key}_low']:.2f}, {row[f'{key}_high']:.2f}]" for key in ROUGE_KEYS if key in row})
        table.append(cells)
    lines = [markdown_table(table), "", "ROUGE: mean [95% bootstrap interval] over the test examples."]
    for row in rows:
        if "difference" in row:
            lines.append(f"\n{row['model']} vs {row['difference_vs']} (paired bootstrap, same examples):")
            lines += [f"- {value['in_words']}" for value in row["difference"].values()]
        elif "difference_error" in row:
            lines.append(f"\n{row['model']}: {row['difference_error']}")
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
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="hub ids or local directories to compare")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="generated tokens (default: 64)")
    parser.add_argument("--num-beams", type=int, default=1, help="beam search width (default: 1)")
    parser.add_argument("--dataset", action="store_true", help="score ROUGE on a test split instead of prompts")
    parser.add_argument("--data-config", help="recipe YAML whose data section chooses the test split")
    parser.add_argument("--data-file", help="test file (json/jsonl/csv/parquet with text and summary columns)")
    parser.add_argument("--max-samples", type=int, default=None, help="test examples to score")
    parser.add_argument("--json-output", help="write the comparison as JSON")
    parser.add_argument("--markdown-output", help="write the comparison as a Markdown table")
    args = parser.parse_args(argv)
    from lightning_modules.generation import GenerationSettings

    GenerationSettings(max_new_tokens=args.max_new_tokens, num_beams=args.num_beams)  # checked before any model loads
    rows = compare_dataset(args) if args.dataset else compare_prompts(args, read_inputs(args, default=DEFAULT_PROMPTS))
    from core.files import atomic_file

    if args.json_output:
        with atomic_file(args.json_output) as handle:
            json.dump(rows, handle, ensure_ascii=False, indent=2)
    if args.markdown_output:
        with atomic_file(args.markdown_output) as handle:
            handle.write((dataset_markdown(rows) if args.dataset else markdown_table(rows)) + "\n")
    print("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) if args.json else text_report(rows))
    failed = [row["model"] for row in rows if "error" in row]
    if failed:  # the others' results are printed and written; the exit code still tells a script
        raise ResumenError(f"{len(failed)} of {len(args.models)} model(s) failed: {', '.join(failed)} (see above).")
    return rows


if __name__ == "__main__":
    from scripts.cli_support import main_guard

    main_guard(main)
