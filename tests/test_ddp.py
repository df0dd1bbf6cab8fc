"""Two CPU processes (gloo DDP): same ROUGE as one process, each prediction exactly once, in input order."""

import json
import os
import subprocess
import sys

import pytest

from cli_helpers import demo_args, run_train
from conftest import ROOT

DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]


def run_ddp(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")  # a crash shows its stack
    result = subprocess.run([sys.executable, "scripts/train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"exit {result.returncode}: " + result.stdout[-1500:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def ddp_fit(tiny_t5, tmp_path_factory):
    """One uninterrupted 2-process fit of 2 epochs: the metrics test evaluates it, the preemption test resumes to it."""
    runs = tmp_path_factory.mktemp("ddp-fit") / "runs"
    run_ddp(*demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false", *DDP))
    return runs


def scalar(log_dir, tag: str) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    return accumulator.Scalars(tag)[-1].value


def test_ddp_metrics_match_one_process_and_predictions_are_written_once(ddp_fit, tiny_t5, tmp_path, monkeypatch):
    """The validation a 2-process fit ran after its last epoch (5 articles over 2 ranks: the sampler repeats one, the
    metric counts it once) scores what one process's validate of the same weights scores."""
    runs = ddp_fit
    run = runs / "demo" / "version_0"
    best, last = next((run / "checkpoints").glob("best-*.ckpt")), run / "checkpoints" / "last.ckpt"
    assert (run / "export" / "model.safetensors").exists()
    ddp_rouge = {key: scalar(run, f"val/{key}") for key in ("rouge1", "rougeL", "gen_len")}  # epoch 2's, by both ranks

    monkeypatch.chdir(ROOT)
    single = run_train(*demo_args("validate", tiny_t5, runs, f"--ckpt_path={last}")).trainer.callback_metrics
    for key, value in ddp_rouge.items():
        assert value == pytest.approx(float(single[f"val/{key}"]), abs=1e-3), key

    predictions = tmp_path / "predictions.jsonl"
    run_ddp(*demo_args("predict", tiny_t5, runs, f"--ckpt_path={best}", f"--predictions.output_path={predictions}", *DDP))
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    test_ids = [str(i) for i in range(5)]  # 5 inputs over 2 ranks: the sampler repeats one
    assert [row["id"] for row in rows] == test_ids


def test_ddp_with_lora_trains_and_exports_merged_model_and_adapter(tiny_t5, tmp_path):
    import shutil
    import warnings

    from resumen.lightning_modules.checkpoints import load_full_checkpoint

    runs = tmp_path / "runs"
    args = demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--model.lora.r=4", *DDP)
    first = run_ddp(*args, check=False)
    if first.returncode == -6:
        # Seen twice in ~16 runs (SIGABRT on rank 0 while exporting) and not reproduced since: retried once, and
        # kept visible as a warning while its cause is open.
        warnings.warn(f"DDP LoRA run aborted (SIGABRT) and was retried: {first.stderr[-1500:]}", stacklevel=1)
        shutil.rmtree(runs)
        first = run_ddp(*args)
    assert first.returncode == 0, f"exit {first.returncode}: " + first.stderr[-3000:]
    run = runs / "demo" / "version_0"
    checkpoint = load_full_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 3  # 20 articles, batch 4, 2 ranks: 3 steps (the sampler pads to 24)
    assert any(".lora_B." in key for key in checkpoint["state_dict"])
    assert (run / "export" / "model.safetensors").exists() and (run / "export" / "adapter" / "adapter_config.json").exists()


def signalled_ddp(args: list[str], step: int, rank: int, target: str, codes: "os.PathLike") -> subprocess.CompletedProcess:
    """A 2-process run in a process group of its own, sent SIGTERM after ``step`` by ``rank`` (to itself or the group)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", SIGNAL="TERM", STEP=str(step), SIGNAL_RANK=str(rank), SIGNAL_TARGET=target, EXIT_CODES=str(codes))
    return subprocess.run(
        [sys.executable, "tests/signal_at_step.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, start_new_session=True
    )


def test_ddp_preemption_of_one_rank_or_the_group_stops_every_rank_and_resumes_bit_exact(ddp_fit, tiny_t5, tmp_path):
    """The SLURM recipe on a real 2-process CPU run: SIGTERM to rank 1 alone, later to the whole group (what SLURM
    sends); each time every rank saves at the same step, exits 143, and the resume command is printed once. The
    resumed run (dropout on, each rank its own random stream) ends with the uninterrupted run's weights, bit for bit."""
    import torch

    from resumen.core.checkpoint_file import load_checkpoint_file

    def args(runs, *extra):
        return demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false", *DDP, *extra)

    reference = ddp_fit  # the same command, uninterrupted
    runs = tmp_path / "runs"
    last = runs / "demo" / "version_0" / "checkpoints" / "last.ckpt"
    for step, rank, target in ((1, 1, "self"), (4, 0, "group")):  # 3 steps per epoch on 2 ranks
        codes = tmp_path / f"exit-codes-{target}"
        stopped = signalled_ddp(args(runs, *(["--ckpt_path=last"] if last.exists() else [])), step, rank, target, codes)
        output = stopped.stdout + stopped.stderr
        assert stopped.returncode == 143, f"{target}: exit {stopped.returncode}: {output[-3000:]}"
        assert sorted(codes.read_text().split("\n")[:-1]) == ["0 143", "1 143"], f"{target}: every rank exits 143"
        assert output.count("Resume with: python scripts/train.py fit") == 1, output[-3000:]
        assert load_checkpoint_file(last)["global_step"] == step + 1  # the ranks agree at the next batch end
    run_ddp(*args(runs, "--ckpt_path=last"))
    expected, resumed = (load_checkpoint_file(path / "demo" / "version_0" / "checkpoints" / "last.ckpt") for path in (reference, runs))
    assert resumed["global_step"] == expected["global_step"] == 6
    differing = [name for name, tensor in expected["state_dict"].items() if not torch.equal(tensor, resumed["state_dict"][name])]
    assert not differing, f"the resumed DDP run's weights differ: {differing[:3]}"
    assert resumed["val_history"] == expected["val_history"]
