"""scripts/benchmark.py: the smoke run works and its JSON holds every figure; the FLOP count is right."""

import json
import subprocess
import sys

from conftest import ROOT


def test_flop_count_matches_torch_flop_counter(tiny_t5):
    """The analytic T5 training FLOPs (used for MFU) agree with torch's own count of a real training step."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForSeq2SeqLM

    from scripts.benchmarking.measure import t5_training_flops

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5)
    source, target = 40, 12
    inputs = torch.randint(3, 100, (1, source))
    labels = torch.randint(3, 100, (1, target))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=inputs, labels=labels).loss.backward()
    expected = t5_training_flops(model.config, source, target, source, target)
    assert abs(counter.get_total_flops() - expected) / expected < 0.05, (counter.get_total_flops(), expected)


def test_corpus_is_deterministic_and_shaped_like_mlsum():
    from scripts.benchmarking.corpus import make_corpus

    rows = make_corpus(200, seed=3)
    assert rows == make_corpus(200, seed=3) and rows != make_corpus(200, seed=4)
    words = sorted(len(row["text"].split()) for row in rows)
    summaries = sorted(len(row["summary"].split()) for row in rows)
    assert words[len(words) // 2] > 350 and summaries[len(summaries) // 2] < 40
    assert any("ñ" in row["text"] for row in rows)


def test_benchmark_smoke_run_writes_every_figure(tmp_path):
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "scripts/benchmark.py", "--size", "tiny", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(output.read_text())
    repeats = data["settings"]["repeats"]
    assert repeats >= 2
    assert {"processor", "cpu_count", "torch_threads", "torch", "lightning", "transformers", "datasets"} <= set(data["machine"])
    assert data["data"]["articles_over_512_tokens"] > 0.5 and data["data"]["summaries_20_to_60_tokens"] > 0.5

    def check(stat):
        assert {"median", "min", "max", "runs"} <= set(stat) and len(stat["runs"]) == repeats
        assert stat["min"] <= stat["median"] <= stat["max"] and stat["min"] > 0

    training = data["training"]
    for side in [training["course"], training["seq2seqtrainer_dynamic"], training["ours"], *training["ours_variants"].values()]:
        for key in ("samples_per_sec", "tokens_per_sec", "flops_per_sec", "padding_efficiency"):
            check(side[key])
    assert training["ratio_vs_course"] > 0 and training["ratio_vs_seq2seqtrainer_dynamic"] > 0
    generation = data["generation"]
    for side in ("seq2seqtrainer_predict", "ours", "ours_eval_batch_2x"):
        check(generation[side]["summaries_per_sec"])
        assert 0 <= generation[side]["rougeL"]["median"] <= 100  # both sides scored by the same Spanish ROUGE
    assert generation["ratio"] > 0 and generation["max_new_tokens"] == data["settings"]["max_new_tokens"]
    assert len(data["padding_efficiency"]) == 5 and all(0 < v <= 1 for v in data["padding_efficiency"].values())
    assert 0 < data["mfu"]["ours"] < 1 and data["mfu"]["peak_used"] in data["mfu"]["peak_flops"]
    for stat in data["batch_sizes"].values():
        check(stat)
    scaling = data["tokenisation_scaling"]
    assert [row["articles"] for row in scaling] == sorted(data["settings"]["scaling_rows"]) + [266367]
    for row in scaling[:-1]:
        check(row["seconds_cold"]), check(row["peak_rss_gib"])
    assert scaling[-1]["extrapolated_seconds_cold"] > 0
    check(data["cli"]["help_seconds"])
    assert data["cli"]["fit_peak_memory"]["process_rss_gib"] > 0
    assert len(data["goals"]) == 5 and all(isinstance(goal["met"], bool) for goal in data["goals"])
    assert "| goal | value | target | met |" in result.stdout
