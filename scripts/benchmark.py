"""Benchmark our pipeline against the course recipe (transformers ``Seq2SeqTrainer``), reproducibly and offline.

    python scripts/benchmark.py                       # flan-t5-small shape, random weights (tens of minutes on a CPU)
    python scripts/benchmark.py --size tiny --output bench.json   # a smoke run (about a minute)

Everything is built locally: a synthetic MLSUM-es-shaped corpus, a tokenizer trained on it, and a Flan-T5-shaped
model with random weights. Each figure is the median of ``--repeats`` runs (min and max beside it). Compared in
one run, with the same model, data, batch size and steps:

1. training throughput: ours (the recipe's settings: dynamic padding to a multiple of 8, length-grouped batches) vs the course
   (``Seq2SeqTrainer``, every example padded to the longest in the data); ``Seq2SeqTrainer`` with dynamic padding
   against ours with the same padding isolates loop overhead;
2. evaluation with generation: ours (predict) vs ``Seq2SeqTrainer.predict(predict_with_generate=True)``;
3. padding efficiency of each padding mode; 4. model FLOPs utilisation against a measured matmul peak;
5. tokenisation time and peak memory as the data grows, and throughput per batch size;
6. peak memory of a real ``scripts/train.py fit`` run, and the CLI's start-up time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.cli_support import main_guard  # noqa: E402

PRESETS = {
    "small": {"repeats": 3, "warmup": 1, "steps": 4, "train_rows": 256, "eval_rows": 32, "max_new_tokens": 64,
              "scaling_rows": [1000, 10000, 100000], "batch_sizes": [4, 8, 16, 32], "batch_size_steps": 2},
    "tiny": {"repeats": 2, "warmup": 1, "steps": 3, "train_rows": 48, "eval_rows": 8, "max_new_tokens": 8,
             "scaling_rows": [100, 300], "batch_sizes": [4, 8], "batch_size_steps": 2},
}
RECIPE = {"padding": "batch", "group_by_length": True, "pad_to_multiple_of": 8}  # configs/mlsum_flan_t5_small.yaml
EQUAL_PADDING = "ours, dynamic padding, no grouping, no multiple of 8"  # what Seq2SeqTrainer's dynamic run does
GOALS = {
    "training_vs_course": 1.3,
    "loop_overhead_max": 0.05,
    "generation_vs_trainer_predict": 1.3,
    "padding_efficiency_grouped": 0.9,
    "mfu": 0.30,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(PRESETS), default="small", help="model shape (default: small)")
    parser.add_argument("--output", help="write every figure as JSON to this file")
    parser.add_argument("--batch-size", type=int, default=8, help="training and evaluation batch size (default: 8)")
    parser.add_argument("--num-beams", type=int, default=1, help="beams for the generation comparison (default: 1)")
    for name in ("repeats", "warmup", "steps", "train_rows", "eval_rows", "max_new_tokens", "batch_size_steps"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"override the preset's {name}")
    parser.add_argument("--scaling-rows", type=int, nargs="+", help="corpus sizes for the tokenisation scaling")
    parser.add_argument("--skip", nargs="*", default=[], choices=["scaling", "batch_sizes", "cli"], help="sections to skip")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(argv)
    for key, value in PRESETS[args.size].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def repeat(args: argparse.Namespace, function, *fargs, **fkwargs) -> dict[str, Any]:
    """Run ``function`` ``args.repeats`` times; summarise each numeric field over the runs."""
    from scripts.benchmarking.measure import summarise

    import gc

    import torch

    runs = []
    for _ in range(args.repeats):
        runs.append(function(*fargs, **fkwargs))
        gc.collect()  # trainers and modules hold reference cycles: free each run's model before the next
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {key: summarise([run[key] for run in runs]) for key in runs[0]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from scripts.benchmarking import runners
    from scripts.benchmarking.corpus import make_corpus, write_jsonl
    from scripts.benchmarking.measure import machine, matmul_peak_flops, ratio, summarise
    from scripts.tiny_models import train_t5_tokenizer

    results: dict[str, Any] = {"machine": machine(), "settings": {k: v for k, v in vars(args).items() if k != "debug"}}
    results["settings"]["cuda"] = torch.cuda.is_available()
    with tempfile.TemporaryDirectory(prefix="resumen-bench-") as work_dir:
        work = Path(work_dir)
        rows = make_corpus(args.train_rows + args.eval_rows, seed=0)
        train_rows, eval_rows = rows[: args.train_rows], rows[args.train_rows :]
        files = {
            "train": str(write_jsonl(train_rows, work / "train.jsonl")),
            "validation": str(write_jsonl(eval_rows, work / "eval.jsonl")),
            "test": str(work / "eval.jsonl"),
        }
        tokenizer = train_t5_tokenizer(
            [r["text"] for r in train_rows] + [r["summary"] for r in train_rows], vocab_size=16000 if args.size == "small" else 2000,
            model_max_length=runners.MAX_SOURCE,
        )
        model_dir = runners.build_model(args.size, tokenizer, work / "model")
        results["data"] = corpus_shape(tokenizer, rows)
        steps = {"warmup": args.warmup, "steps": args.steps}
        batch = args.batch_size

        progress("training: the course (Seq2SeqTrainer, padded to the longest)")
        course = repeat(args, runners.hf_training, model_dir, train_rows, batch, pad_to_longest=True, group_by_length=False, **steps)
        progress("training: Seq2SeqTrainer with dynamic padding")
        hf_dynamic = repeat(args, runners.hf_training, model_dir, train_rows, batch, pad_to_longest=False, group_by_length=False, **steps)
        progress("training: ours (recipe settings)")
        ours = repeat(args, runners.ours_training, model_dir, files, batch, **steps, **RECIPE)
        variants = {}
        for name, settings in {
            "ours, padded to the longest (course padding)": {"padding": "longest_in_dataset"},
            EQUAL_PADDING: {"padding": "batch"},
            "ours, dynamic + grouping, no multiple of 8": {**RECIPE, "pad_to_multiple_of": None},
        }.items():
            progress(f"training: {name}")
            variants[name] = repeat(args, runners.ours_training, model_dir, files, batch, **steps, **settings)
        if torch.cuda.is_available():  # the GPU-only wins, each measured on its own
            for name, options in {
                "ours, 32-true, TF32 off": {"precision": "32-true", "module_settings": {"allow_tf32": False}},
                "ours, 32-true, TF32 on (default)": {"precision": "32-true"},
                "ours, AdamW not fused": {"module_settings": {"fused_adamw": False}},
                "ours, 2 dataloader workers": {"num_workers": 2},
            }.items():
                progress(f"training: {name}")
                variants[name] = repeat(args, runners.ours_training, model_dir, files, batch, **steps, **RECIPE, **options)
        results["training"] = {
            "course": course, "seq2seqtrainer_dynamic": hf_dynamic, "ours": ours, "ours_variants": variants,
            "ratio_vs_course": ratio(ours["samples_per_sec"], course["samples_per_sec"]),
            # Loop overhead: both sides with the same padding (dynamic, random order, no multiple of 8).
            "ratio_vs_seq2seqtrainer_dynamic": ratio(variants[EQUAL_PADDING]["samples_per_sec"], hf_dynamic["samples_per_sec"]),
        }

        progress("evaluation with generation")
        generation = {"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams, "batch_size": batch}
        generation["seq2seqtrainer_predict"] = repeat(args, runners.hf_generation, model_dir, eval_rows, batch, args.max_new_tokens, args.num_beams)
        generation["ours"] = repeat(args, runners.ours_generation, model_dir, files, batch, args.max_new_tokens, args.num_beams)
        generation["ours_eval_batch_2x"] = repeat(args, runners.ours_generation, model_dir, files, 2 * batch, args.max_new_tokens, args.num_beams)
        generation["ratio"] = ratio(generation["ours"]["summaries_per_sec"], generation["seq2seqtrainer_predict"]["summaries_per_sec"])
        generation["ratio_eval_batch_2x"] = ratio(generation["ours_eval_batch_2x"]["summaries_per_sec"], generation["seq2seqtrainer_predict"]["summaries_per_sec"])
        results["generation"] = generation

        progress("padding efficiency")
        results["padding_efficiency"] = {
            name: runners.padding_efficiency(model_dir, files, batch, **settings)
            for name, settings in {
                "longest_in_dataset (course)": {"padding": "longest_in_dataset"},
                "max_length": {"padding": "max_length"},
                "batch": {"padding": "batch"},
                "batch + group_by_length": {**RECIPE, "pad_to_multiple_of": None},
                "batch + group_by_length + pad_to_multiple_of=8 (recipe)": RECIPE,
            }.items()
        }

        progress("matrix-multiply peak")
        peaks = {"fp32": summarise([matmul_peak_flops("float32", "cpu", 2048 if args.size == "small" else 512) for _ in range(args.repeats)])}
        if torch.cuda.is_available():
            peaks["fp32_cuda"] = summarise([matmul_peak_flops("float32", "cuda", 8192) for _ in range(args.repeats)])
            peaks["bf16_cuda"] = summarise([matmul_peak_flops("bfloat16", "cuda", 8192) for _ in range(args.repeats)])
        peak_key = "bf16_cuda" if torch.cuda.is_available() else "fp32"
        results["mfu"] = {
            "peak_flops": peaks, "peak_used": peak_key,
            "ours_flops_per_sec": ours["flops_per_sec"]["median"],
            "ours": ours["flops_per_sec"]["median"] / peaks[peak_key]["median"],
            "course": course["flops_per_sec"]["median"] / peaks[peak_key]["median"],
        }

        if "batch_sizes" not in args.skip:
            results["batch_sizes"] = {}
            for size in args.batch_sizes:
                progress(f"training throughput at batch size {size}")
                results["batch_sizes"][str(size)] = repeat(
                    args, runners.ours_training, model_dir, files, size, warmup=1, steps=args.batch_size_steps, **RECIPE
                )["samples_per_sec"]
        if "scaling" not in args.skip:
            results["tokenisation_scaling"] = tokenisation_scaling(args, model_dir, work, files["validation"])
        if "cli" not in args.skip:
            results["cli"] = cli_measurements(args, model_dir, files, work)
    results["goals"] = goals(results)
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print(format_tables(results))
    return results


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def corpus_shape(tokenizer: Any, rows: list[dict[str, str]]) -> dict[str, float]:
    import numpy as np

    articles = np.array([len(ids) for ids in tokenizer([r["text"] for r in rows])["input_ids"]])
    summaries = np.array([len(ids) for ids in tokenizer([r["summary"] for r in rows])["input_ids"]])
    return {
        "articles_over_512_tokens": float((articles > 512).mean()),
        "article_tokens_median": float(np.median(articles)),
        "summary_tokens_median": float(np.median(summaries)),
        "summaries_20_to_60_tokens": float(((summaries >= 20) & (summaries <= 60)).mean()),
        "summaries_over_100_tokens": float((summaries > 100).mean()),
        "vocabulary": len(tokenizer),
    }


def tokenisation_scaling(args: argparse.Namespace, model_dir: Path, work: Path, validation: str) -> list[dict[str, Any]]:
    """Each size in a fresh process with a fresh cache: time (cold, then cached) and that process's peak memory."""
    from scripts.benchmarking.corpus import make_corpus, write_jsonl
    from scripts.benchmarking.measure import summarise

    largest = max(args.scaling_rows)
    progress(f"tokenisation scaling: generating {largest} articles")
    corpus = make_corpus(largest, seed=7)
    results = []
    for rows in sorted(args.scaling_rows):
        path = write_jsonl(corpus[:rows], work / f"scale-{rows}.jsonl")
        runs = []
        for attempt in range(args.repeats):
            progress(f"tokenisation scaling: {rows} articles, run {attempt + 1}")
            command = [sys.executable, "-m", "scripts.benchmarking.tokenise_run", "--model", str(model_dir), "--train",
                       str(path), "--validation", validation, "--cache", str(work / f"cache-{rows}-{attempt}")]
            output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
            runs.append(json.loads(output.strip().splitlines()[-1]))
        results.append({
            "articles": rows,
            "seconds_cold": summarise([r["seconds_cold"] for r in runs]),
            "seconds_cached": summarise([r["seconds_cached"] for r in runs]),
            "peak_rss_gib": summarise([r["peak_rss_gib"] for r in runs]),
        })
    per_article = results[-1]["seconds_cold"]["median"] / results[-1]["articles"]
    results.append({"articles": 266367, "extrapolated_seconds_cold": per_article * 266367})
    return results


def cli_measurements(args: argparse.Namespace, model_dir: Path, files: dict[str, str], work: Path) -> dict[str, Any]:
    """Start-up time of ``scripts/train.py --help`` and peak memory of a real (short) ``fit`` run."""
    from scripts.benchmarking.measure import summarise

    help_seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "scripts/train.py", "--help"], cwd=ROOT, capture_output=True, check=True)
        help_seconds.append(time.perf_counter() - start)
    progress("a real scripts/train.py fit run")
    runs = work / "runs"
    command = [
        sys.executable, "scripts/train.py", "fit", "--config", "configs/mlsum_flan_t5_small.yaml",
        f"--model.model_name_or_path={model_dir}", f"--data.data_files={json.dumps(files)}",
        f"--trainer.max_steps={args.warmup + args.steps}", "--trainer.limit_val_batches=0",
        "--trainer.enable_progress_bar=false", f"--trainer.logger.init_args.save_dir={runs}",
        f"--trainer.precision={'bf16-mixed' if _cuda() else '32-true'}", "--trainer.devices=1",
        f"--data.batch_size={args.batch_size}", "--data.max_train_samples=null",
    ]
    subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    report = json.loads(next(runs.rglob("report.json")).read_text())
    return {"help_seconds": summarise(help_seconds), "fit_peak_memory": report["peak_memory"]}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    training, generation = results["training"], results["generation"]
    overhead = 1 - training["ratio_vs_seq2seqtrainer_dynamic"]
    checks = [
        ("training throughput vs the course", training["ratio_vs_course"], f">= {GOALS['training_vs_course']}x", training["ratio_vs_course"] >= GOALS["training_vs_course"]),
        ("loop overhead vs Seq2SeqTrainer, equal padding", overhead, f"<= {GOALS['loop_overhead_max']:.0%}", overhead <= GOALS["loop_overhead_max"]),
        ("generation vs Seq2SeqTrainer.predict", generation["ratio"], f">= {GOALS['generation_vs_trainer_predict']}x", generation["ratio"] >= GOALS["generation_vs_trainer_predict"]),
        ("padding efficiency, grouped", results["padding_efficiency"]["batch + group_by_length + pad_to_multiple_of=8 (recipe)"], f">= {GOALS['padding_efficiency_grouped']}", results["padding_efficiency"]["batch + group_by_length + pad_to_multiple_of=8 (recipe)"] >= GOALS["padding_efficiency_grouped"]),
        ("model FLOPs utilisation", results["mfu"]["ours"], f">= {GOALS['mfu']:.0%}", results["mfu"]["ours"] >= GOALS["mfu"]),
    ]
    return [{"goal": name, "value": value, "target": target, "met": bool(met)} for name, value, target, met in checks]


def _cell(stat: dict[str, Any], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(stat['median'])} ({fmt.format(stat['min'])}–{fmt.format(stat['max'])})"


def format_tables(results: dict[str, Any]) -> str:
    m, training = results["machine"], results["training"]
    device = m.get("gpu") or f"{m['processor']}, {m['cpu_count']} cores, {m['torch_threads']} torch threads"
    lines = [
        f"Machine: {device}; torch {m['torch']}, lightning {m['lightning']}, transformers {m['transformers']}",
        f"Model: {results['settings']['size']}; batch {results['settings']['batch_size']}; median (min–max) of "
        f"{results['settings']['repeats']} runs",
        "",
        "| training | samples/s | non-padding tokens/s | padding efficiency | vs course |",
        "|---|---|---|---|---|",
    ]
    course = training["course"]["samples_per_sec"]["median"]
    rows = [("course: Seq2SeqTrainer, padded to longest", training["course"]),
            ("Seq2SeqTrainer, dynamic padding", training["seq2seqtrainer_dynamic"]),
            ("**ours** (recipe: dynamic + grouped + multiple of 8)", training["ours"])] + list(training["ours_variants"].items())
    for name, stat in rows:
        lines.append(
            f"| {name} | {_cell(stat['samples_per_sec'])} | {_cell(stat['tokens_per_sec'], '{:.0f}')} | "
            f"{stat['padding_efficiency']['median']:.3f} | {stat['samples_per_sec']['median'] / course:.2f}x |"
        )
    g = results["generation"]
    lines += [
        "",
        f"| evaluation with generation (max_new_tokens {g['max_new_tokens']}, beams {g['num_beams']}) | summaries/s | vs predict | ROUGE-L |",
        "|---|---|---|---|",
        f"| Seq2SeqTrainer.predict(predict_with_generate), batch {g['batch_size']} | {_cell(g['seq2seqtrainer_predict']['summaries_per_sec'])} | 1.00x | {g['seq2seqtrainer_predict']['rougeL']['median']:.2f} |",
        f"| **ours** (predict), batch {g['batch_size']} | {_cell(g['ours']['summaries_per_sec'])} | {g['ratio']:.2f}x | {g['ours']['rougeL']['median']:.2f} |",
        f"| ours, eval batch {2 * g['batch_size']} (our default: 2x) | {_cell(g['ours_eval_batch_2x']['summaries_per_sec'])} | {g['ratio_eval_batch_2x']:.2f}x | {g['ours_eval_batch_2x']['rougeL']['median']:.2f} |",
        "",
        "ROUGE-L: one Spanish scorer on both sides (the course side through `evaluation/spanish_rouge`, the `evaluate` "
        "module; ours through the training metric). Random weights: the scores only show both sides agree.",
        "",
        "| padding mode | real / computed tokens |",
        "|---|---|",
    ]
    lines += [f"| {name} | {value:.3f} |" for name, value in results["padding_efficiency"].items()]
    mfu = results["mfu"]
    peak = mfu["peak_flops"][mfu["peak_used"]]["median"]
    lines += ["", f"Model FLOPs utilisation: ours {mfu['ours']:.1%}, course {mfu['course']:.1%} of a measured "
              f"{mfu['peak_used']} matmul peak of {peak / 1e9:.1f} GFLOP/s ({mfu['ours_flops_per_sec'] / 1e9:.1f} GFLOP/s)"]
    if "batch_sizes" in results:
        lines += ["", "| batch size | samples/s (ours) |", "|---|---|"]
        lines += [f"| {size} | {_cell(stat)} |" for size, stat in results["batch_sizes"].items()]
    if "tokenisation_scaling" in results:
        lines += ["", "| articles | tokenise, cold (s) | cached (s) | peak memory (GiB) |", "|---|---|---|---|"]
        for row in results["tokenisation_scaling"]:
            if "extrapolated_seconds_cold" in row:
                lines.append(f"| {row['articles']:,} (extrapolated) | {row['extrapolated_seconds_cold']:.0f} | | |")
            else:
                lines.append(f"| {row['articles']:,} | {_cell(row['seconds_cold'], '{:.1f}')} | {_cell(row['seconds_cached'], '{:.1f}')} | {_cell(row['peak_rss_gib'])} |")
    if "cli" in results:
        cli = results["cli"]
        memory = ", ".join(f"{k} {v:.2f}" for k, v in cli["fit_peak_memory"].items())
        lines += ["", f"CLI: `scripts/train.py --help` {_cell(cli['help_seconds'])} s; a `fit` run's peak memory: {memory} GiB"]
    lines += ["", "| goal | value | target | met |", "|---|---|---|---|"]
    lines += [f"| {g['goal']} | {g['value']:.3f} | {g['target']} | {'yes' if g['met'] else '**no**'} |" for g in results["goals"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main_guard(main)
