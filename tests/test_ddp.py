"""Two CPU processes (gloo DDP): same ROUGE as one process, each prediction exactly once, in input order."""

import json
import os
import subprocess
import sys

import pytest

from cli_helpers import demo_args, run_train
from conftest import ROOT

DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]


def run_ddp(*args: str) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    result = subprocess.run([sys.executable, "scripts/train.py", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def scalar(log_dir, tag: str) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    return accumulator.Scalars(tag)[-1].value


def test_ddp_metrics_match_one_process_and_predictions_are_written_once(tiny_t5, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    run_ddp(*demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=2", *DDP))
    best = next((runs / "demo" / "version_0" / "checkpoints").glob("best-*.ckpt"))
    assert (runs / "demo" / "version_0" / "export" / "model.safetensors").exists()

    run_ddp(*demo_args("validate", tiny_t5, runs, f"--ckpt_path={best}", *DDP))
    ddp_rouge = {key: scalar(runs / "demo" / "version_1", f"val/{key}") for key in ("rouge1", "rougeL", "gen_len")}

    monkeypatch.chdir(ROOT)
    single = run_train(*demo_args("validate", tiny_t5, runs, f"--ckpt_path={best}")).trainer.callback_metrics
    for key, value in ddp_rouge.items():
        assert value == pytest.approx(float(single[f"val/{key}"]), abs=1e-3), key

    predictions = tmp_path / "predictions.jsonl"
    run_ddp(*demo_args("predict", tiny_t5, runs, f"--ckpt_path={best}", f"--predictions.output_path={predictions}", *DDP))
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    test_ids = [str(i) for i in range(5)]  # 5 inputs over 2 ranks: the sampler repeats one
    assert [row["id"] for row in rows] == test_ids
