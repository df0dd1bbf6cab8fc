"""The companion scripts, in-process on tiny models."""

import json
from pathlib import Path
import weakref

import pytest
import torch

from resumen.core.errors import ResumenError
from resumen.app import compare, generate, next_token, translate


def test_next_token_probabilities_equal_a_direct_forward_pass(tiny_gpt2, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = next_token.main(["--model", tiny_gpt2, "--top-k", "10", "El niño juega", "Hola"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    for row, text in zip(rows, ["El niño juega", "Hola"]):
        ids = tokenizer(text, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = model(ids).logits[0, -1].float()
        expected_p, expected_ids = torch.softmax(logits, -1).topk(10)
        top = row["positions"][-1]["top"]
        assert [t["token_id"] for t in top] == expected_ids.tolist()
        assert [t["probability"] for t in top] == pytest.approx(expected_p.tolist(), rel=1e-5)
        assert [t["logit"] for t in top] == pytest.approx(logits[expected_ids].tolist(), rel=1e-5)
        probabilities = [t["probability"] for t in top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert row["token_ids"] == ids[0].tolist()
    printed = capsys.readouterr().out
    assert "Most likely next token:" in printed and "probability" in printed


def test_next_token_all_positions_and_plot(tiny_gpt2, tmp_path):
    plot = tmp_path / "top.png"
    rows = next_token.main(["--model", tiny_gpt2, "--positions", "all", "--top-k", "3", "--plot", str(plot), "Hola mundo"])
    assert len(rows[0]["positions"]) == len(rows[0]["token_ids"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_next_token_on_real_gpt2_vocabulary_shows_spaces(real_gpt2_dir):
    from transformers import GPT2TokenizerFast

    from resumen.core.tokens import display_token

    tokenizer = GPT2TokenizerFast.from_pretrained(real_gpt2_dir)
    assert tokenizer("The future of AI is").input_ids == [464, 2003, 286, 9552, 318]
    assert display_token(tokenizer, 2003) == "' future'"
    partial = tokenizer("ñ").input_ids  # one character, possibly split into bytes
    shown = [display_token(tokenizer, i) for i in partial]
    assert shown == ["'ñ'"] or all(s.startswith("<bytes 0x") for s in shown)


def test_generation_with_a_seed_is_reproducible(tiny_gpt2):
    args = ["--model", tiny_gpt2, "--do-sample", "--top-p", "0.9", "--max-new-tokens", "12", "--seed", "7", "Había una vez"]
    first, second = generate.main(args), generate.main(args)
    other = generate.main(args[:-2] + ["8", "Había una vez"])
    assert first[0]["outputs"] == second[0]["outputs"]
    assert first[0]["outputs"] != other[0]["outputs"]


def test_greedy_equals_the_pipeline_and_batches_are_left_padded(tiny_gpt2):
    prompts = ["El niño juega en el parque", "Hola"]
    ours = generate.main(["--model", tiny_gpt2, "--max-new-tokens", "10", *prompts])
    theirs = generate.main(["--model", tiny_gpt2, "--max-new-tokens", "10", "--pipeline", *prompts])
    assert [r["outputs"] for r in ours] == [r["outputs"] for r in theirs]
    alone = generate.main(["--model", tiny_gpt2, "--max-new-tokens", "10", "Hola"])
    assert alone[0]["outputs"] == ours[1]["outputs"]  # padding in a batch does not change a prompt's output


@pytest.mark.parametrize("flag,value", [("--top-p", "1.5"), ("--num-beams", "0"), ("--max-new-tokens", "0")])
def test_generation_settings_are_checked(tiny_gpt2, flag, value):
    with pytest.raises(ResumenError):
        generate.main(["--model", tiny_gpt2, flag, value, "Hola"])


def test_translation_builds_the_exact_prompt_and_strips_it(tiny_gemma2, capsys):
    rows = translate.main(["--model", tiny_gemma2, "--source", "es", "--target", "zh", "--max-new-tokens", "8", "--json", "El niño"])
    assert rows[0]["prompt"] == "Translate this from Spanish to Chinese:\nSpanish: El niño\nChinese:"
    assert "Translate this" not in rows[0]["translation"] and "\n" not in rows[0]["translation"]
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["translation"] == rows[0]["translation"]


def test_translation_rejects_an_unknown_language(tiny_gemma2):
    with pytest.raises(ResumenError, match="not one of GemmaX2's 28.*zh \\(Chinese\\)"):
        translate.main(["--model", tiny_gemma2, "--source", "klingon", "--target", "en", "hola"])


def test_chinese_round_trips_through_the_byte_fallback_tokenizer(tiny_gemma2):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_gemma2)
    text = "Translate this from Chinese to Spanish:\nChinese: 我爱你，世界！\nSpanish:"
    ids = tokenizer(text).input_ids
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_seq2seq_model_translates_through_the_same_command(tiny_t5):
    rows = translate.main(["--model", tiny_t5, "--max-new-tokens", "4", "我爱你", "El niño"])
    assert [r["text"] for r in rows] == ["我爱你", "El niño"] and all("translation" in r for r in rows)


def test_compare_one_row_per_model_and_prompt_and_frees_models(tiny_t5, tiny_gpt2, tmp_path, monkeypatch):
    loaded = []
    real_load = compare.load_module

    def tracking_load(*args, **kwargs):
        assert all(ref() is None for ref in loaded), "the previous model is still in memory"
        module, seconds = real_load(*args, **kwargs)
        loaded.append(weakref.ref(module.model))
        return module, seconds

    monkeypatch.setattr(compare, "load_module", tracking_load)
    json_out, md_out = tmp_path / "c.json", tmp_path / "c.md"
    rows = compare.main(["--models", tiny_t5, tiny_gpt2, "--max-new-tokens", "4", "--json-output", str(json_out), "--markdown-output", str(md_out)])
    assert len(rows) == 2 * len(compare.DEFAULT_PROMPTS)
    assert {(r["model"], r["prompt"]) for r in rows} == {(m, p) for m in (tiny_t5, tiny_gpt2) for p in compare.DEFAULT_PROMPTS}
    assert all(r["parameters"] > 0 and r["load_seconds"] >= 0 for r in rows)
    assert json.loads(json_out.read_text()) == rows
    assert md_out.read_text().startswith("| model | parameters |")


def test_compare_dataset_mode_reports_rouge_with_intervals_and_paired_difference(tiny_t5, sample_files, tmp_path):
    json_out, md_out = tmp_path / "c.json", tmp_path / "c.md"
    rows = compare.main(
        [
            "--dataset",
            "--models",
            tiny_t5,
            tiny_t5,
            "--data-file",
            sample_files["test"],
            "--max-new-tokens",
            "4",
            "--json-output",
            str(json_out),
            "--markdown-output",
            str(md_out),
        ]
    )
    assert len(rows) == 3 and json.loads(json_out.read_text()) == rows
    references = rows.pop()  # the data's own summaries: model-free metrics only
    assert references["model"] == "(references)" and "novel_2grams" in references and "rougeL" not in references
    for row in rows:
        assert {"rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len"} <= set(row) and row["examples"] == 5
        assert all(row[f"{k}_low"] <= row[k] <= row[f"{k}_high"] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum"))
    assert "difference" not in rows[0] and rows[1]["difference_vs"] == tiny_t5
    # the same model twice: every paired difference is 0 and said to be not significant
    for difference in rows[1]["difference"].values():
        assert difference["mean"] == 0 and difference["significant"] is False
        assert "not significant" in difference["in_words"]
    markdown = md_out.read_text()
    assert "[95% bootstrap interval]" in markdown and "not significant" in markdown


def test_compare_scores_lead_k_and_the_oracle_like_models_and_pairs_every_model_with_them(tiny_t5, sample_files, tmp_path):
    from resumen.core.baselines import baseline_summaries
    from resumen.datamodules.sources import load_raw_dataset
    from resumen.core.summary_metrics import intervals, score_rows

    md_out = tmp_path / "c.md"
    args = ["--dataset", "--models", "lead-1", "oracle", tiny_t5, "--data-file", sample_files["test"], "--max-new-tokens", "4"]
    rows = compare.main([*args, "--markdown-output", str(md_out)])
    assert [row["model"] for row in rows] == ["lead-1", "oracle", tiny_t5, "(references)"]
    test = load_raw_dataset(None, None, None, {"test": sample_files["test"]}, None)["test"]
    expected = intervals(score_rows(baseline_summaries("lead-1", test["text"], test["summary"]), test["summary"], test["text"]))
    assert rows[0]["rougeL"] == pytest.approx(expected["rougeL"].mean, abs=0.01) and rows[0]["parameters"] == 0
    assert rows[1]["rougeL"] >= rows[0]["rougeL"]  # the oracle is the ceiling of extraction
    assert set(rows[2]["versus_baselines"]) == {"lead-1", "oracle"} and "versus_baselines" not in rows[0]
    assert rows[2]["versus_baselines"]["lead-1"]["rougeL"]["mean"] == pytest.approx(rows[2]["rougeL"] - rows[0]["rougeL"], abs=0.02)
    markdown = md_out.read_text()
    assert f"{tiny_t5} vs oracle (paired bootstrap" in markdown and "| (references) |" in markdown and "unsupported numbers %" in markdown
    with pytest.raises(ResumenError, match="lead-1: a baseline summarises test articles; add --dataset"):
        compare.main(["--models", "lead-1", "Hola"])


def test_paired_difference_says_significant_only_when_the_interval_excludes_zero():
    import numpy as np

    from resumen.core.rouge import ROUGE_KEYS

    indices = np.arange(40)
    base = np.tile([[10.0, 5.0, 10.0, 10.0]], (40, 1))
    better = base + np.array([[3.0, 0.0, 3.0, 3.0]]) + np.linspace(-0.5, 0.5, 40)[:, None]  # rouge2: +/-0.5 noise
    rows = [
        {"model": "a", "_scores": (indices, base, ROUGE_KEYS)},
        {"model": "b", "_scores": (indices, better, ROUGE_KEYS)},
        {"model": "c", "_scores": (indices[:-1], base[:-1], ROUGE_KEYS)},
    ]  # ROUGE columns only
    compare.add_paired_differences(rows)
    assert rows[1]["difference"]["rouge1"]["significant"] and "significantly higher" in rows[1]["difference"]["rouge1"]["in_words"]
    assert not rows[1]["difference"]["rouge2"]["significant"]
    assert "not the same test examples" in rows[2]["difference_error"]
    assert all("_scores" not in row for row in rows)


def test_scripts_refuse_the_wrong_model_kind(tiny_t5):
    with pytest.raises(ResumenError, match="encoder-decoder"):
        next_token.main(["--model", tiny_t5, "Hola"])


def test_compare_reproduces_train_py_tests_rouge_for_the_same_checkpoint(finished_run, tmp_path):
    """The export scored by compare.py (its own template, lengths and generation settings, through the inference
    core) gets the ROUGE that train.py test gave the checkpoint it was exported from."""
    from cli_helpers import in_root

    run = finished_run["runs"] / "demo" / "version_0"
    tested = json.loads((run / "test_results.json").read_text())
    export = run / "export"
    assert f"resumen_checkpoint: {Path(tested['checkpoint']).name}" in (export / "README.md").read_text()  # its checkpoint
    plot = tmp_path / "rouge.png"
    rows = in_root(
        compare.main, ["--dataset", "--data-config", str(run / "config.yaml"), "--models", str(export), "--plot", str(plot)]
    )  # the run's own data section
    from resumen.core.summary_metrics import METRICS

    for metric in METRICS:  # every metric, not only ROUGE: one collection behind both doors
        assert rows[0][metric.key] == pytest.approx(tested[metric.group][metric.key]["mean"], abs=0.01), metric.key
        assert rows[0][f"{metric.key}_low"] == pytest.approx(tested[metric.group][metric.key]["low"], abs=0.01)
    assert rows[1]["model"] == "(references)" and rows[1]["words"] == pytest.approx(tested["references"]["words"]["mean"], abs=0.01)
    assert rows[0]["generation"]["num_beams"] == 2 and rows[0]["examples"] == tested["examples"] == 5
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000


def test_compare_gives_the_original_t5_its_own_prefix_and_takes_a_template_per_model(tiny_t5, sample_files, tmp_path, capsys):
    import shutil

    t5_base = tmp_path / "t5-base"  # a local directory named like the hub's original T5
    shutil.copytree(tiny_t5, t5_base)
    args = [
        "--dataset",
        "--data-file",
        sample_files["test"],
        "--max-new-tokens",
        "2",
        "--models",
        "t5-base",
        tiny_t5,
        "--template",
        f"{tiny_t5}=Noticia: {{text}}",
    ]
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        rows = compare.main(args)
    finally:
        os.chdir(cwd)
    assert [row.get("prompt_template") for row in rows] == ["summarize: {text}", "Noticia: {text}", None]  # then the references
    assert "scored with its own task prefix 'summarize: {text}'" in capsys.readouterr().err


def test_an_article_file_can_be_read_by_line_by_paragraph_or_whole_and_says_so(tiny_t5, tmp_path, capsys):
    """A file of articles with paragraphs became one summary per line, without a word: --split reads them by
    blank-line-separated paragraph or as one article, and the count and the layout used are printed."""
    from resumen.app import summarize

    path = tmp_path / "articles.txt"
    path.write_text("El Betis ganó al Celta.\nEl partido terminó 2-1.\n\nEl Ayuntamiento aprobó el presupuesto.\n", encoding="utf-8")
    expected = {"lines": 3, "paragraphs": 2, "none": 1}
    for split, count in expected.items():
        rows = summarize.main(["--model", tiny_t5, "--file", str(path), "--split", split, "--max-new-tokens", "2", "--num-beams", "1", "--json"])
        assert len(rows) == count
        err = capsys.readouterr().err
        assert f"Read {count} input(s) from {path}" in err and f"(--split {split};" in err
    rows = summarize.main(["--model", tiny_t5, "--file", str(path), "--split", "paragraphs", "--max-new-tokens", "2", "--num-beams", "1"])
    assert rows[0]["input_tokens"] > rows[1]["input_tokens"]  # the first article's two lines, joined


def test_compare_shows_progress_and_scores_a_base_model_with_the_exports_settings(finished_run, tiny_t5, sample_files, capsys):
    """The README's last command ran for minutes in silence, most of it on the random base model decoding with its
    library defaults (4 beams, 128 tokens). Each model now says when it starts and ends, and a model without
    settings of its own decodes with the compared export's (unless --num-beams / --max-new-tokens say otherwise)."""
    export = str(finished_run["runs"] / "demo" / "version_0" / "export")
    rows = compare.main(["--dataset", "--models", tiny_t5, export, "--data-file", sample_files["test"]])
    err = capsys.readouterr().err
    own = json.loads((finished_run["runs"] / "demo" / "version_0" / "export" / "generation_config.json").read_text())
    assert rows[0]["generation"]["num_beams"] == rows[1]["generation"]["num_beams"] == own["num_beams"]
    assert rows[0]["generation"]["max_new_tokens"] == rows[1]["generation"]["max_new_tokens"] == own["max_new_tokens"]
    assert f"note: {tiny_t5} has no generation settings of its own: scored with {export}'s" in err
    for number, name in ((1, tiny_t5), (2, export)):
        assert f"[{number}/2] {name}: summarising 5 articles" in err and f"[{number}/2] {name}: ROUGE-L" in err
    rows = compare.main(["--dataset", "--models", tiny_t5, export, "--data-file", sample_files["test"], "--num-beams", "1"])
    assert rows[0]["generation"]["num_beams"] == rows[1]["generation"]["num_beams"] == 1  # told otherwise
