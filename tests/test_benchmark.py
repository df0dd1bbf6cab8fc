"""benchmarks/benchmark.py: the smoke run works and its JSON holds every figure; the FLOP count is right."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from resumen.core.precision import cpu_flags
from benchmarks.measure import NOTABLE_CPU_FLAGS
from benchmarks.runners import automatic_precision


def test_flop_count_matches_torch_flop_counter(tiny_t5):
    """The analytic T5 training FLOPs (used for MFU) agree with torch's own count of a real training step."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForSeq2SeqLM

    from benchmarks.measure import t5_training_flops

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5)
    source, target = 40, 12
    inputs = torch.randint(3, 100, (1, source))
    labels = torch.randint(3, 100, (1, target))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=inputs, labels=labels).loss.backward()
    expected = t5_training_flops(model.config, source, target, source, target)
    assert abs(counter.get_total_flops() - expected) / expected < 0.05, (counter.get_total_flops(), expected)


def test_corpus_is_deterministic_and_shaped_like_mlsum():
    from benchmarks.corpus import make_corpus

    rows = make_corpus(200, seed=3)
    assert rows == make_corpus(200, seed=3) and rows != make_corpus(200, seed=4)
    words = sorted(len(row["text"].split()) for row in rows)
    summaries = sorted(len(row["summary"].split()) for row in rows)
    assert words[len(words) // 2] > 350 and summaries[len(summaries) // 2] < 40
    assert any("ñ" in row["text"] for row in rows)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> dict:
    """One smoke run of `make bench` for every figure's structure: one repeat of the tiny preset (the presets' repeats
    are what intervals need; the structure is the same with one), every section but those that only re-run our
    training runner with other settings (variants, batch sizes, and options, whose torch.compile alone takes a minute;
    tests/test_speed_options.py trains with each option)."""
    output = tmp_path_factory.mktemp("bench") / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/benchmark.py",
            "--size",
            "tiny",
            "--repeats",
            "1",
            "--output",
            str(output),
            "--skip",
            "variants",
            "batch_sizes",
            "options",
            "--scaling-rows",
            "100",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {"data": json.loads(output.read_text()), "stdout": result.stdout}


def test_benchmark_smoke_run_writes_every_figure(smoke_run):
    data, stdout = smoke_run["data"], smoke_run["stdout"]
    repeats = data["settings"]["repeats"]
    assert repeats == 1
    machine = data["machine"]
    assert {"processor", "cpu_flags", "cpu_count", "torch_threads", "torch", "lightning", "transformers", "datasets"} <= set(machine)
    assert set(machine["cpu_flags"]) <= NOTABLE_CPU_FLAGS and set(machine["cpu_flags"]) == cpu_flags() & NOTABLE_CPU_FLAGS
    assert data["data"]["articles_over_512_tokens"] > 0.5 and data["data"]["summaries_20_to_60_tokens"] > 0.5

    def check(stat):
        assert {"median", "min", "max", "runs"} <= set(stat) and len(stat["runs"]) == repeats
        assert stat["min"] <= stat["median"] <= stat["max"] and stat["min"] > 0

    # the loop comparison: identical batches (checked inside), every loop with its per-phase seconds
    loop = data["loop"]
    assert loop["steps"] >= 10 and loop["warmup"] >= 1
    assert list(loop["precisions"]) == [automatic_precision()]
    for comparison in loop["precisions"].values():
        assert list(comparison["loops"]) == ["plain PyTorch", "ours (Lightning)", "Seq2SeqTrainer"]
        for stat in comparison["loops"].values():
            check(stat["seconds_per_step"]), check(stat["samples_per_sec"])
            for phase in ("forward", "backward", "optimizer"):
                check(stat["phases"][phase])
            phases = sum(stat["phases"][p]["median"] for p in ("forward", "backward", "optimizer"))
            assert phases <= stat["seconds_per_step"]["max"] * 1.01  # the phases fit inside the step
        for key in ("ours_vs_seq2seqtrainer", "ours_vs_plain", "seq2seqtrainer_vs_plain"):
            check(comparison[key])

    training = data["training"]
    assert training["precision_ours"] == automatic_precision() and training["precision_course"] == "32-true"
    for side in training["runs"].values():
        for key in ("samples_per_sec", "tokens_per_sec", "flops_per_sec", "padding_efficiency"):
            check(side[key])
    check(training["ratio_vs_course"])
    # the headline: both recipes at each precision, and ours at the course's padding
    assert set(training["ratio_vs_course_equal_precision"]) == {"32-true", automatic_precision()}
    for stat in [*training["ratio_vs_course_equal_precision"].values(), *training["ratio_at_course_padding"].values()]:
        check(stat)
    at_course_padding = training["runs"]["ours, padded as the course (to the longest in the data)"]
    assert at_course_padding["padding_efficiency"]["median"] < training["runs"]["ours (recipe)"]["padding_efficiency"]["median"]
    generation = data["generation"]
    for side in ("seq2seqtrainer_predict", "ours", "ours_eval_batch_2x"):
        check(generation[side]["summaries_per_sec"])
        assert 0 <= generation[side]["rougeL"]["median"] <= 100  # both sides scored by the same Spanish ROUGE
    assert generation["ratio"] > 0 and generation["max_new_tokens"] == data["settings"]["max_new_tokens"]
    assert len(data["padding_efficiency"]) == 5 and all(0 < v <= 1 for v in data["padding_efficiency"].values())
    assert 0 < data["mfu"]["ours"] < 1 and data["mfu"]["peak_used"] in data["mfu"]["peak_flops"]
    scaling = data["tokenisation_scaling"]
    assert [row["articles"] for row in scaling] == sorted(data["settings"]["scaling_rows"]) + [266367]
    for row in scaling[:-1]:
        check(row["seconds_cold"]), check(row["peak_rss_gib"])
    assert scaling[-1]["extrapolated_seconds_cold"] > 0
    check(data["cli"]["help_seconds"])
    assert data["cli"]["fit_peak_memory"]["process_rss_gib"] > 0
    training_goals = [goal["goal"] for goal in data["goals"] if goal["goal"].startswith("training throughput")]
    assert training_goals == [f"training throughput vs the course, both {p}" for p in training["ratio_vs_course_equal_precision"]]
    assert len(data["goals"]) == 6 + len(training_goals) and all(isinstance(goal["met"], bool) for goal in data["goals"])
    assert "| goal | value | target | met |" in stdout and "| loop, identical batches" in stdout


def test_phase_clock_times_each_phase_of_a_plain_loop():
    """forward / backward / optimizer come from hooks every loop shares; they add up to the step, in order."""
    import torch

    from benchmarks.phases import PhaseClock

    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    clock = PhaseClock(warmup=1, steps=3)
    clock.watch(optimizer)
    with clock.attached(model):
        for _ in range(4):
            model(torch.randn(2048, 256)).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    result = clock.result()
    assert torch.Tensor.backward.__name__ == "backward"  # the wrapper is gone after the block
    phases = result["phases"]
    assert all(phases[p] > 0 for p in ("forward", "backward", "optimizer"))
    assert abs(sum(phases.values()) - result["seconds_per_step"]) < 1e-9 and phases["other"] >= -1e-3


def test_benchmark_inference_sections_write_their_figures(smoke_run):
    """The engines (ours, the core in fp32, CTranslate2 float32 and int8) and the server under load, batched and
    not, at the smallest configuration (the server with CTranslate2: tests/test_serving.py)."""
    data, stdout = smoke_run["data"], smoke_run["stdout"]
    engines = data["engines"]["configs"]["batch8_beams4"]
    for engine in ("ours", "core_torch_fp32", "ctranslate2_float32", "ctranslate2_int8"):
        assert engines[engine]["summaries_per_sec"]["median"] > 0
    for engine in ("core_torch_fp32", "ctranslate2_float32", "ctranslate2_int8"):
        assert engines[engine]["peak_rss_gib"]["median"] > 0
    assert engines["ctranslate2_int8_vs_ours"]["median"] > 0 and 0 <= engines["ctranslate2_float32_same_summaries_as_torch_fp32"] <= 1
    serving = data["serving"]
    assert list(serving["configs"]) == ["torch_batched", "torch_unbatched"]  # the tiny preset's pair (CTranslate2's: small)
    for level in serving["configs"]["torch_batched"]["levels"].values():
        assert level["requests_per_sec"] > 0 and 0 < level["p50_seconds"] <= level["p95_seconds"]
    assert serving["batching_vs_unbatched"]["torch"] > 0 and "ctranslate2_int8" not in serving["batching_vs_unbatched"]
    goals = {goal["goal"] for goal in data["goals"]}
    assert any(goal.startswith("CTranslate2 int8 vs ours") for goal in goals) and any(goal.startswith("server, batched") for goal in goals)
    assert "| CTranslate2 int8 |" in stdout and "| torch_batched |" in stdout


def test_every_measured_run_is_a_process_of_its_own_with_the_threads_of_a_new_interpreter(capfd):
    """Without CUDA each run is forked from a server that only imported the libraries: a new process each time, with
    the thread count a new interpreter gets, its output kept out of the benchmark's tables, its failure reported."""
    import os

    from benchmarks.worker import run_forked

    first, second = run_forked("os:getpid", {}), run_forked("os:getpid", {})
    assert len({first, second, os.getpid()}) == 3
    new_interpreter = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker"],
        input='{"function": "torch:get_num_threads", "kwargs": {}}',
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[-1]
    assert run_forked("torch:get_num_threads", {}) == json.loads(new_interpreter)
    assert run_forked("builtins:print", {}) is None and capfd.readouterr().out == ""
    with pytest.raises(RuntimeError, match=r"json:loads failed in its process \(exit 1\): json.decoder.JSONDecodeError"):
        run_forked("json:loads", {"s": "{"})
    with pytest.raises(RuntimeError, match=r"exit 3\): no result"):
        run_forked("os:_exit", {"status": 3})


def test_benchmark_measures_what_a_longer_article_costs(smoke_run):
    """docs/models.md and docs/performance.md: step time and peak memory at each source length (tiny: 128/256/512;
    the small preset: 512/1024/2048), padded to that length; longer is never cheaper."""
    data, stdout = smoke_run["data"], smoke_run["stdout"]
    table = data["lengths"]["by_source_length"]
    assert list(table) == ["128", "256", "512"]
    steps = [table[length]["seconds_per_step"]["median"] for length in table]
    assert all(step > 0 for step in steps) and all(table[length]["peak_rss_gib"]["median"] > 0 for length in table)
    assert table["128"]["step_time_vs_shortest"]["median"] == 1.0 and table["512"]["step_time_vs_shortest"]["median"] > 1.0
    assert "### A longer article" in stdout and "| 512 |" in stdout
