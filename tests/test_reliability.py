"""Bad input gets one clear line and exit code 2 before any work; crashes lose nothing; runs are reproducible."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cli_helpers import demo_args
from conftest import ROOT
from lightning_modules.cli_support import main_guard
from lightning_modules.files import atomic_directory, atomic_file
from synthetic import write_jsonl


def run_guarded(main, args, capsys):
    """Run an entry point like its console script does; return (exit code, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main_guard(main, list(args))
    err = capsys.readouterr().err
    return exit_info.value.code, err


def train_main(args):
    from scripts.train import cli_main

    return cli_main(args)


def assert_one_line_error(code, err, pattern):
    import re

    assert code == 2, err
    assert "Traceback" not in err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, err
    assert re.search(pattern, error_lines[0]), error_lines[0]


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def fit_args(tiny_t5, tmp_path, *extra):
    return demo_args("fit", tiny_t5, tmp_path / "runs", "--trainer.max_epochs=1", *extra)


@pytest.mark.parametrize(
    "make_file,pattern",
    [
        (lambda d: d / "missing.jsonl", r"'.*missing.jsonl' does not exist"),
        (lambda d: _write(d / "data.xlsx", "x"), r"unsupported extension '.xlsx'"),
        (lambda d: _write(d / "bad.jsonl", '{"text": "a", "summary": "b"}\n{"text": "a", \n'), r"line 2 is not valid JSON"),
        (lambda d: _write(d / "empty.jsonl", ""), r"is empty"),
    ],
)
def test_bad_data_files(tiny_t5, tmp_path, capsys, in_root, make_file, pattern):
    path = make_file(tmp_path)
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, f"--data.data_files.train={path}"), capsys)
    assert_one_line_error(code, err, pattern)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.ckpt"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_column_lists_columns(tiny_t5, tmp_path, capsys, in_root):
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, "--data.text_column=body"), capsys)
    assert_one_line_error(code, err, r"no column\(s\) \['body'\]; its columns are \['text', 'summary'")


def test_empty_split_after_filtering(tiny_t5, tmp_path, capsys, in_root):
    path = write_jsonl(tmp_path / "blank.jsonl", [{"text": " ", "summary": "x"}, {"text": None, "summary": "y"}])
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, f"--data.data_files.train={path}"), capsys)
    assert_one_line_error(code, err, r"train split is empty after dropping rows")


def test_huge_article_is_truncated_not_a_crash(tiny_t5, tmp_path):
    from datamodules.summarization import SummarizationDataModule

    rows = [{"text": "palabra " * 130_000, "summary": "Un resumen."}, {"text": "Corto.", "summary": "Breve."}]
    path = str(write_jsonl(tmp_path / "big.jsonl", rows))
    assert os.path.getsize(path) > 1_000_000
    dm = SummarizationDataModule(tiny_t5, data_files={"train": path, "validation": path}, max_source_length=64)
    dm.setup("fit")
    assert max(dm.datasets["train"]["length"]) == 64


@pytest.mark.parametrize(
    "extra,pattern",
    [
        (["--data.prompt_template=Resume esto"], r"no \{text\} placeholder"),
        (["--data.prompt_template=Resume {titulo}: {text}"], r"unknown placeholder\(s\) \['titulo'\]"),
        (["--trainer.precision=16-mixed"], r"16-mixed.*overflows.*bf16-mixed.*32-true"),
        (["--model.num_beams=0"], r"num_beams must be at least 1"),
        (["--model.max_new_tokens=0"], r"max_new_tokens must be at least 1"),
    ],
)
def test_bad_settings(tiny_t5, tmp_path, capsys, in_root, extra, pattern):
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, *extra), capsys)
    assert_one_line_error(code, err, pattern)
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.parametrize(
    "model,pattern",
    [
        ("/nonexistent/model", r"does not exist"),
        ("google/flan-t5-small", r"hub cannot be reached.*hf download"),
    ],
)
def test_bad_model_paths(tmp_path, capsys, in_root, model, pattern):
    code, err = run_guarded(train_main, fit_args(model, tmp_path), capsys)
    assert_one_line_error(code, err, pattern)


def test_directory_without_config_and_wrong_model_kind(tmp_path, tiny_gpt2, capsys, in_root):
    code, err = run_guarded(train_main, fit_args(str(tmp_path), tmp_path), capsys)
    assert_one_line_error(code, err, r"no config.json")
    code, err = run_guarded(train_main, fit_args(tiny_gpt2, tmp_path), capsys)
    assert_one_line_error(code, err, r"decoder-only")
    from scripts import next_token

    code, err = run_guarded(next_token.main, ["--model", str(tmp_path), "x"], capsys)
    assert_one_line_error(code, err, r"no config.json")


def test_tokenizer_larger_than_embeddings(tiny_t5, tmp_path, capsys, in_root):
    import shutil

    from transformers import AutoTokenizer

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_t5, model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.add_tokens(["<nuevo1>", "<nuevo2>"])
    tokenizer.save_pretrained(model_dir)
    code, err = run_guarded(train_main, fit_args(str(model_dir), tmp_path), capsys)
    assert_one_line_error(code, err, r"tokenizer .* has \d+ tokens but the model's embeddings only \d+")


@pytest.mark.parametrize(
    "args,pattern",
    [
        (["--source", "xx", "hola"], r"not one of GemmaX2's 28"),
        (["--num-beams", "0", "hola"], r"num_beams must be at least 1"),
    ],
)
def test_translate_errors(tiny_gemma2, capsys, args, pattern):
    from scripts import translate

    code, err = run_guarded(translate.main, ["--model", tiny_gemma2, *args], capsys)
    assert_one_line_error(code, err, pattern)


def test_top_p_out_of_range(tiny_gpt2, capsys):
    from scripts import generate

    code, err = run_guarded(generate.main, ["--model", tiny_gpt2, "--do-sample", "--top-p", "0", "hola"], capsys)
    assert_one_line_error(code, err, r"top_p must be in \(0, 1\]")


def test_debug_shows_the_traceback(tiny_gpt2):
    from lightning_modules.errors import ResumenError
    from scripts import generate

    with pytest.raises(ResumenError):
        main_guard(generate.main, ["--debug", "--model", tiny_gpt2, "--top-p", "2", "hola"])


def test_existing_export_is_refused_before_training(tiny_t5, tmp_path, capsys, in_root):
    export = tmp_path / "export"
    export.mkdir()
    (export / "config.json").write_text("{}")
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, f"--export.dirpath={export}"), capsys)
    assert_one_line_error(code, err, r"already holds files.*--export.overwrite=true")
    assert [p.name for p in export.iterdir()] == ["config.json"]
    assert not list(tmp_path.rglob("*.ckpt"))


def test_atomic_writes_leave_the_previous_output_on_a_crash(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "model.safetensors").write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "model.safetensors").write_text("half")
            raise RuntimeError("killed while saving")
    assert (target / "model.safetensors").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]

    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text('{"id": "0"}\n')
    with pytest.raises(RuntimeError):
        with atomic_file(predictions) as handle:
            handle.write('{"id": "half')
            raise RuntimeError("killed while writing")
    assert predictions.read_text() == '{"id": "0"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "predictions.jsonl"]


def test_nan_loss_stops_with_the_step_and_the_fix(tiny_t5, tmp_path, capsys, in_root, monkeypatch):
    from lightning_modules.seq2seq import Seq2SeqSummarizer

    real_forward = Seq2SeqSummarizer.forward

    def forward_with_nan_after_3_steps(self, *args, **kwargs):
        output = real_forward(self, *args, **kwargs)
        if self.training and self.global_step >= 6:
            output.loss = output.loss * float("nan")
        return output

    monkeypatch.setattr(Seq2SeqSummarizer, "forward", forward_with_nan_after_3_steps)
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, "--trainer.max_epochs=3"), capsys)
    assert_one_line_error(code, err, r"loss became nan at step 6: lower the learning rate .* bf16-mixed")
    assert list(tmp_path.rglob("last.ckpt")), "the last good checkpoint (end of epoch 0) is kept"


def test_same_seed_same_losses_and_predictions(tiny_t5, tmp_path, in_root):
    from scripts.train import cli_main

    results = []
    for run in ("a", "b"):
        runs = tmp_path / run
        fit = cli_main(demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=2"))
        predict = cli_main(demo_args("predict", tiny_t5, runs))
        writer = next(cb for cb in predict.trainer.callbacks if hasattr(cb, "written_to"))
        results.append((fit.model.val_history, writer.written_to.read_text(encoding="utf-8")))
    assert results[0][0] == results[1][0]
    assert results[0][1] == results[1][1]


def test_kill_9_then_resume_from_last(tiny_t5, tmp_path):
    runs = tmp_path / "runs"
    epochs, batches = 6, 5  # 20 shipped training rows, batch 4
    command = [sys.executable, "scripts/train.py", *demo_args("fit", tiny_t5, runs, f"--trainer.max_epochs={epochs}")]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = runs / "demo" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if last.exists() and torch.load(last, map_location="cpu", weights_only=True)["global_step"] >= batches:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert batches <= saved["global_step"] < epochs * batches

    from scripts.train import cli_main

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        resumed = cli_main(demo_args("fit", tiny_t5, runs, f"--trainer.max_epochs={epochs}", "--ckpt_path=last"))
    finally:
        os.chdir(cwd)
    assert resumed.trainer.global_step == epochs * batches
    # AdamW's per-parameter step counter continued from the checkpoint instead of restarting at 0
    optimizer_state = next(iter(resumed.trainer.optimizers[0].state.values()))
    assert int(optimizer_state["step"]) == epochs * batches
