"""predict loses nothing it finished: a stop by signal, a kill or a full disk keeps the done inputs, and the same
command continues; an output that is the input or a directory is refused before any work."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import demo_args, in_root
from conftest import ROOT
from resumen.app.cli_support import main_guard
from resumen.app.train import cli_main

ARTICLES = [f"El equipo {i} ganó el partido de ayer en casa por {i} goles a cero ante su afición." for i in range(12)]


@pytest.fixture(scope="module")
def trained(tiny_t5, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("predict-run") / "runs"
    in_root(cli_main, demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"))
    return next((runs / "demo" / "version_0" / "checkpoints").glob("best-*.ckpt"))


def predict_args(tiny_t5, trained, tmp_path, output: Path, articles: Path) -> list[str]:
    return demo_args(
        "predict",
        tiny_t5,
        tmp_path / "runs",
        f"--ckpt_path={trained}",
        f"--data.predict_file={articles}",
        f"--predictions.output_path={output}",
        "--data.eval_batch_size=1",
        "--data.sort_eval_by_length=false",
        "--trainer.enable_progress_bar=false",
    )


@pytest.fixture
def articles(tmp_path) -> Path:
    path = tmp_path / "articles.txt"
    path.write_text("\n".join(ARTICLES) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def reference_rows(tiny_t5, trained, tmp_path_factory) -> list[dict]:
    work = tmp_path_factory.mktemp("reference")
    source = work / "articles.txt"
    source.write_text("\n".join(ARTICLES) + "\n", encoding="utf-8")
    output = work / "all.jsonl"
    in_root(cli_main, predict_args(tiny_t5, trained, work, output, source))
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]


def test_sigterm_keeps_the_done_inputs_and_the_same_command_continues(tiny_t5, trained, tmp_path, articles, reference_rows):
    output = tmp_path / "out" / "predictions.jsonl"
    args = predict_args(tiny_t5, trained, tmp_path, output, articles)
    env = dict(os.environ, SIGNAL="TERM", AT="predict:3", PYTHONUNBUFFERED="1")
    stopped = subprocess.run([sys.executable, "tests/signal_at_step.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert not output.exists(), "the output is written only when every input is done"
    partial = output.with_name(".predictions.jsonl.partial-0")
    kept = [json.loads(line) for line in partial.read_text(encoding="utf-8").splitlines()[1:]]
    assert len(kept) == 4, "the four batches finished before the stop are kept"
    assert f"stopped after 4 of {len(ARTICLES)} inputs; they are kept in {partial}" in stopped.stdout + stopped.stderr
    cli = in_root(cli_main, args)  # the same command: continues with the 8 others
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert rows == reference_rows and [row["id"] for row in rows] == [str(i) for i in range(len(ARTICLES))]
    assert len(cli.datamodule.datasets["predict"]) == len(ARTICLES) - 4
    assert not list(output.parent.glob(".predictions.jsonl.partial-*"))


def test_a_partial_of_another_input_is_set_aside(tiny_t5, trained, tmp_path, articles, reference_rows, recwarn):
    output = tmp_path / "predictions.jsonl"
    partial = output.with_name(".predictions.jsonl.partial-0")
    partial.write_text('{"resumen_partial": "another job"}\n{"id": "0", "index": 0, "summary": "stale"}\n')
    in_root(cli_main, predict_args(tiny_t5, trained, tmp_path, output, articles))
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert rows == reference_rows
    assert output.with_name(".predictions.jsonl.stale-0").is_file()


def test_a_full_disk_keeps_the_done_inputs_and_a_rerun_continues(tiny_t5, trained, tmp_path, articles, reference_rows, capsys):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "small-disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        filler = disk / "filler"
        filler.write_bytes(b"x" * (256 * 1024 - 4096))  # one free page: a few rows fit, not all twelve
        output = disk / "predictions.jsonl"
        args = predict_args(tiny_t5, trained, tmp_path, output, articles)
        many = tmp_path / "many.txt"
        many.write_text("\n".join(ARTICLES * 8) + "\n", encoding="utf-8")  # 96 rows of 100-200 bytes: several pages
        args = predict_args(tiny_t5, trained, tmp_path, output, many)
        with pytest.raises(SystemExit):
            in_root(main_guard, cli_main, args)
        err = capsys.readouterr().err
        assert "the disk is full" in err
        partial = output.with_name(".predictions.jsonl.partial-0")
        kept = len(partial.read_text(encoding="utf-8").splitlines()) - 1
        assert 0 < kept < 96
        filler.unlink()  # space again: the same command continues
        in_root(cli_main, args)
        rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
        assert len(rows) == 96 and rows[:12] == reference_rows
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.parametrize("where", ["input", "directory"])
def test_a_bad_output_path_is_refused_before_any_work(where, tiny_t5, trained, tmp_path, articles, capsys, monkeypatch):
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad output was refused")

    monkeypatch.setattr(transformers.AutoModelForSeq2SeqLM, "from_pretrained", refuse)
    output = articles if where == "input" else tmp_path
    before = articles.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        in_root(main_guard, cli_main, predict_args(tiny_t5, trained, tmp_path, output, articles))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert ("is the input file" if where == "input" else "is a directory") in err
    assert articles.read_bytes() == before


@pytest.mark.parametrize("where", ["input", "directory"])
def test_the_scripts_refuse_an_output_that_is_their_input_or_a_directory(where, tiny_gpt2, tmp_path, capsys):
    from resumen.app import generate

    inputs = tmp_path / "prompts.txt"
    inputs.write_text("Había una vez\n", encoding="utf-8")
    output = inputs if where == "input" else tmp_path
    with pytest.raises(SystemExit):
        main_guard(generate.main, ["--model", tiny_gpt2, "--file", str(inputs), "--output", str(output)])
    err = capsys.readouterr().err
    assert ("is the input file" if where == "input" else "is a directory") in err
    assert inputs.read_text(encoding="utf-8") == "Había una vez\n"
