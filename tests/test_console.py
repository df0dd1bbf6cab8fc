"""What a user sees: in a real terminal (a pseudo-terminal read by a terminal emulator) and in a batch job's log."""

import os
import pty
import select
import subprocess
import sys
import time

import pytest

from cli_helpers import demo_args
from conftest import ROOT

pyte = pytest.importorskip("pyte")


def in_a_terminal(args: list[str], columns: int = 140, rows: int = 60) -> tuple[int, list[str]]:
    """Run ``scripts/train.py`` in a pseudo-terminal (what a user's shell gives it) and return the final screen."""
    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)
    parent, child = pty.openpty()
    env = dict(os.environ, COLUMNS=str(columns), LINES=str(rows), TERM="xterm-256color")
    process = subprocess.Popen([sys.executable, "scripts/train.py", *args], cwd=ROOT, env=env, stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([parent], [], [], 1)
        if ready:
            try:
                data = os.read(parent, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            stream.feed(data)
        elif process.poll() is not None:
            break
    process.wait(timeout=60)
    os.close(parent)
    return process.returncode, [line.rstrip() for line in screen.display]


def test_the_run_report_survives_the_progress_bar_in_a_real_terminal(tiny_t5, tmp_path):
    code, screen = in_a_terminal(demo_args("fit", tiny_t5, tmp_path / "runs", "--trainer.max_epochs=2"))
    text = "\n".join(screen)
    assert code == 0, text
    for line in ("Run report", "  time ", "  training ", "  peak memory", "  learning curve:", "Hugging Face export:"):
        assert line in text, f"{line!r} is not on the final screen:\n{text}"


def run(args: list[str]) -> str:
    done = subprocess.run([sys.executable, "scripts/train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def test_a_log_only_fit_prints_a_line_per_epoch_and_test_its_scores_once(tiny_t5, tmp_path):
    runs = tmp_path / "runs"
    fit = run(demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=3", "--trainer.enable_progress_bar=false"))
    epochs = [line for line in fit.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"], fit[-2000:]
    assert all(key in epochs[0] for key in ("train/loss", "val/loss", "val/rougeL", "elapsed", "ETA")), epochs[0]
    assert "ETA" not in epochs[-1] and fit.count("Tokenizer coverage of the train data") == 1  # coverage, once
    assert "| examples with unknown tokens |" not in fit  # a perfect coverage is one line, not a table of zeros
    for noise in ("💡 Tip", "TPU available", "LeafSpec", "FLOPs", "Loading weights"):
        assert noise not in fit, noise
    tested = run(demo_args("test", tiny_t5, runs, "--trainer.enable_progress_bar=false"))
    assert tested.count("rougeL ") == 1 and "Test metric" not in tested, tested[-3000:]  # once, with its interval
    assert "Tokenizer coverage of the test data:" in tested and "| examples with unknown tokens |" not in tested
    assert "Sample 1:" in tested and "  summary:" in tested and "Resume el siguiente" not in tested
    assert "dirpath has changed" not in tested
    assert f"Test: run {runs / 'demo' / 'version_0'} with its settings" in tested


def test_the_coverage_table_is_printed_when_it_has_something_to_show():
    from resumen.datamodules.coverage import CoverageReport

    perfect = CoverageReport(examples=800)
    lossy = CoverageReport(
        examples=30,
        unknown_characters={"ñ": {"articles": 9, "summaries": 3}},
        articles_with_unknown=0.3,
        summaries_with_unknown=0.1,
        article_tokens_unknown=0.01,
        summary_tokens_unknown=0.02,
        summary_round_trip=0.9,
    )
    assert perfect.perfect and not lossy.perfect
    assert "every summary round-trips (800 examples)" in perfect.summary_line("train")
    assert "ñ (U+00F1)" in lossy.table() and "90.0%" in lossy.table()
    assert "1 unknown character(s) (ñ)" in lossy.summary_line("test")
