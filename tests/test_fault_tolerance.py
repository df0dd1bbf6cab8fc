"""Preemption, kill -9, plateaus, full disks and crafted files: a run loses nothing and resumes exactly."""

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli_helpers import demo_args, in_root
from conftest import ROOT
from resumen.core.errors import ResumenError
from resumen.core.checkpoint_file import load_checkpoint_file
from resumen.lightning_modules.checkpoints import AtomicCheckpointIO
from resumen.lightning_modules.last_checkpoint import PREEMPTED_EXIT_CODE

EPOCHS, BATCHES = 3, 5  # the shipped sample: 20 training rows, batch 4
STEPS = EPOCHS * BATCHES


def fit_args(model: str, runs: Path, *extra: str) -> list[str]:
    return demo_args(
        "fit",
        model,
        runs,
        f"--trainer.max_epochs={EPOCHS}",
        "--last_checkpoint.every_n_train_steps=3",
        "--trainer.enable_progress_bar=false",
        *extra,
    )


def train(args: list[str]):
    from resumen.app.train import cli_main

    return in_root(cli_main, args)


def run_and_signal(signal_name: str, step: int | str, args: list[str]) -> subprocess.CompletedProcess:
    """The real CLI in its own process, sent ``signal_name`` right after training step ``step`` (or at ``AT``, e.g.
    ``val:0:2``: during epoch 0's validation batch 2; see tests/signal_at_step.py)."""
    at = step if isinstance(step, str) else f"train:{step}"
    env = dict(os.environ, SIGNAL=signal_name, AT=at, PYTHONUNBUFFERED="1")
    command = [sys.executable, str(ROOT / "tests" / "signal_at_step.py"), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def step_losses(run_dir: Path) -> dict[int, float]:
    """``train/loss_step`` per step, from every event file of a run directory (later files win)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    losses: dict[int, float] = {}
    for events in sorted(run_dir.glob("events.out.tfevents.*"), key=os.path.getmtime):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        if "train/loss_step" in accumulator.Tags()["scalars"]:
            losses.update({event.step: event.value for event in accumulator.Scalars("train/loss_step")})
    return losses


@pytest.fixture(scope="module")
def uninterrupted(tiny_t5, tmp_path_factory) -> dict:
    runs = tmp_path_factory.mktemp("uninterrupted") / "runs"
    cli = train(fit_args(tiny_t5, runs))
    return {
        "weights": {name: tensor.detach().clone() for name, tensor in cli.model.state_dict().items()},
        "history": cli.model.val_history,
        "losses": step_losses(runs / "demo" / "version_0"),
    }


def assert_same_run(resumed_cli, runs: Path, uninterrupted: dict, first_new_step: int) -> None:
    assert resumed_cli.trainer.global_step == STEPS
    weights = resumed_cli.model.state_dict()
    differing = [name for name, tensor in uninterrupted["weights"].items() if not torch.equal(tensor, weights[name])]
    assert not differing, f"weights differ from the uninterrupted run: {differing[:5]}"
    assert resumed_cli.model.val_history == uninterrupted["history"]
    resumed = {step: loss for step, loss in step_losses(runs / "demo" / "version_0").items() if step >= first_new_step}
    assert resumed and all(resumed[step] == uninterrupted["losses"][step] for step in resumed)


def test_last_checkpoint_is_fresh_after_a_plateau(finished_run):
    """ROUGE of the tiny model stays flat: ModelCheckpoint alone left last.ckpt at the best (first) epoch."""
    checkpoints = finished_run["runs"] / "demo" / "version_0" / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == 15  # the final epoch of the 3
    best = torch.load(next(checkpoints.glob("best-*.ckpt")), map_location="cpu", weights_only=True)
    assert best["global_step"] <= last["global_step"]


def test_kill_9_mid_epoch_then_resume_matches_the_uninterrupted_run(tiny_t5, tmp_path, uninterrupted):
    runs = tmp_path / "runs"
    killed = run_and_signal("KILL", 7, fit_args(tiny_t5, runs))  # last.ckpt was saved at step 6: epoch 1, batch 1
    assert killed.returncode == -9, killed.stderr[-2000:]
    saved = load_checkpoint_file(runs / "demo" / "version_0" / "checkpoints" / "last.ckpt")
    assert saved["global_step"] == 6 and saved["epoch"] == 1
    resumed = train(fit_args(tiny_t5, runs, "--ckpt_path=last"))
    assert not (runs / "demo" / "version_1").exists(), "the resumed run logs into the run it resumes"
    assert_same_run(resumed, runs, uninterrupted, first_new_step=7)
    assert (runs / "demo" / "version_0" / "export" / "model.safetensors").is_file()


def test_sigterm_saves_exits_non_zero_and_resumes_exactly(tiny_t5, tmp_path, uninterrupted):
    runs = tmp_path / "runs"
    stopped = run_and_signal("TERM", 8, fit_args(tiny_t5, runs))
    assert stopped.returncode == PREEMPTED_EXIT_CODE == 143, stopped.stderr[-2000:]
    output = stopped.stdout + stopped.stderr
    assert "Resume with: python scripts/train.py fit --config" in output and "--ckpt_path last" in output
    run = runs / "demo" / "version_0"
    assert load_checkpoint_file(run / "checkpoints" / "last.ckpt")["global_step"] == 8
    assert not (run / "export").exists(), "an unfinished run is not exported"
    resumed = train(fit_args(tiny_t5, runs, "--ckpt_path=last"))
    assert_same_run(resumed, runs, uninterrupted, first_new_step=9)


def test_ctrl_c_saves_like_sigterm_and_exits_130(tiny_t5, tmp_path, uninterrupted):
    runs = tmp_path / "runs"
    stopped = run_and_signal("INT", 8, fit_args(tiny_t5, runs))
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert "Stopped by Ctrl-C (SIGINT) at step 8" in stopped.stdout + stopped.stderr
    assert load_checkpoint_file(runs / "demo" / "version_0" / "checkpoints" / "last.ckpt")["global_step"] == 8
    assert_same_run(train(fit_args(tiny_t5, runs, "--ckpt_path=last")), runs, uninterrupted, first_new_step=9)


# -------------------------------------------------------------------- a stop inside (or just before) validation
VALIDATION_BATCHES = 5  # eval_batch_size 1 over the sample's 5 validation rows


def validating_args(model: str, runs: Path, *extra: str) -> list[str]:
    """Two epochs with several validation batches, last.ckpt every 2 steps (steps 2 and 4 of each 5-step epoch)."""
    return demo_args(
        "fit",
        model,
        runs,
        "--trainer.max_epochs=2",
        "--data.eval_batch_size=1",
        "--trainer.num_sanity_val_steps=0",
        "--last_checkpoint.every_n_train_steps=2",
        "--trainer.enable_progress_bar=false",
        *extra,
    )


@pytest.fixture(scope="module")
def uninterrupted_validating(tiny_t5, tmp_path_factory) -> dict:
    runs = tmp_path_factory.mktemp("validating") / "runs"
    cli = train(validating_args(tiny_t5, runs))
    checkpoints = runs / "demo" / "version_0" / "checkpoints"
    return {"weights": dict(cli.model.state_dict()), "history": cli.model.val_history, "best": sorted(p.name for p in checkpoints.glob("best-*.ckpt"))}


@pytest.mark.parametrize("signal_name", ["TERM", "KILL"])
def test_a_stop_during_validation_resumes_with_that_epochs_whole_validation(signal_name, tiny_t5, tmp_path, uninterrupted_validating):
    runs = tmp_path / "runs"
    stopped = run_and_signal(signal_name, "val:0:2", validating_args(tiny_t5, runs))  # epoch 0, 3rd of 5 batches
    assert stopped.returncode == (143 if signal_name == "TERM" else -9), stopped.stderr[-2000:]
    saved = load_checkpoint_file(runs / "demo" / "version_0" / "checkpoints" / "last.ckpt")
    # SIGTERM saves where it stopped (epoch 0 trained); kill -9 leaves step 4's (the epoch's last step is never
    # saved before its validation, or the resumed run would take that validation as done)
    assert saved["global_step"] == (5 if signal_name == "TERM" else 4) and 0 not in saved.get("val_history", {})
    resumed = train(validating_args(tiny_t5, runs, "--ckpt_path=last"))
    assert resumed.model.val_history == uninterrupted_validating["history"], "an epoch's validation was lost"
    weights = resumed.model.state_dict()
    assert all(torch.equal(t, weights[n]) for n, t in uninterrupted_validating["weights"].items())
    checkpoints = runs / "demo" / "version_0" / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("best-*.ckpt")) == uninterrupted_validating["best"]


@pytest.mark.parametrize("subcommand", ["test", "validate"])
def test_sigterm_during_evaluation_exits_143_without_results(subcommand, finished_run, tiny_t5, tmp_path):
    best = next((finished_run["runs"] / "demo" / "version_0" / "checkpoints").glob("best-*.ckpt"))
    runs = tmp_path / "runs"
    args = demo_args(subcommand, tiny_t5, runs, f"--ckpt_path={best}", "--data.eval_batch_size=1", "--trainer.enable_progress_bar=false")
    stage = "test" if subcommand == "test" else "val:0"
    stopped = run_and_signal("TERM", f"{stage}:1", args)
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert not list(runs.rglob("test_results.json"))


def test_sigterm_before_any_stage_is_one_line_and_exit_143_with_no_run_left(tiny_t5, tmp_path):
    """A scheduler's SIGTERM while the model is set up (or the data prepared) used to end the process without a word."""
    runs = tmp_path / "runs"
    stopped = run_and_signal("TERM", "setup", fit_args(tiny_t5, runs))
    errors = [line for line in stopped.stderr.splitlines() if line.startswith("error:")]
    assert stopped.returncode == 143 and "Traceback" not in stopped.stderr, stopped.stderr[-2000:]
    assert errors == ["error: stopped by SIGTERM before training or evaluation started: nothing was trained or written; rerun the same command."]
    assert not list(runs.rglob("version_*"))  # nothing trained: no run to list


def test_sigterm_after_the_last_batch_lets_the_finished_work_be_written(tiny_t5, tmp_path):
    """During the report after training (Lightning had put the default handler back: the process died mid-report
    and left status.json "running"), and in the last test batch: the work is complete, so it is written, the
    process exits 0 and says the signal came after it."""
    from resumen.core.runs import RunLayout

    runs = tmp_path / "runs"
    done = run_and_signal("TERM", "report", fit_args(tiny_t5, runs, "--trainer.max_epochs=1"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "note: SIGTERM arrived after the last batch: the work above is complete and written." in done.stderr
    run = RunLayout(runs / "demo" / "version_0")
    assert run.status()["status"] == "finished" and run.report.is_file() and (run.export / "model.safetensors").is_file()
    tested = run_and_signal(
        "TERM",
        "test:0",
        demo_args(
            "test",
            tiny_t5,
            runs,
            "--data.eval_batch_size=5",  # one batch
            "--trainer.enable_progress_bar=false",
        ),
    )
    assert tested.returncode == 0 and "arrived after the last batch" in tested.stderr, tested.stderr[-2000:]
    assert run.test_results.is_file()


def test_a_stuck_stop_is_ended_by_the_watchdog_with_the_signals_code(tmp_path):
    """A rank waiting forever for a dead one: the process still ends, with 143, once stop.timeout has passed."""
    code = (
        "import os, signal, sys, time\n"
        "from resumen.lightning_modules.graceful_stop import FLAG\n"
        "FLAG.timeout, FLAG.stage_started = 1.0, True\n"  # inside a stage
        "signal.signal(signal.SIGTERM, FLAG.handler)\n"
        "print(time.monotonic(), flush=True)\n"  # the moment of the signal, after the imports (seconds under load)
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(120)\n"  # the collective that never returns
    )
    import time

    stuck = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    ended = time.monotonic()  # CLOCK_MONOTONIC is one clock for every process of this machine
    signalled = float(stuck.stdout.split()[0])
    assert stuck.returncode == 143 and 1.0 <= ended - signalled < 20  # the 1 s limit, not the 120 s sleep
    assert "still running 1 s after SIGTERM" in stuck.stderr and "--stop.timeout" in stuck.stderr


def test_resume_refuses_a_run_of_another_configuration(tiny_t5, tmp_path, capsys):
    from resumen.app.cli_support import main_guard
    from resumen.app.train import cli_main

    runs = tmp_path / "runs"
    train(demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"))
    before = {p: p.stat().st_mtime_ns for p in (runs / "demo" / "version_0").rglob("*") if p.is_file()}
    # A new run with another learning rate, killed before its first checkpoint, is "resumed":
    args = demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--model.learning_rate=0.01", "--ckpt_path=last")
    with pytest.raises(SystemExit) as exit_info:
        in_root(main_guard, cli_main, args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    error = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "version_0" in error[0] and "model.learning_rate: 0.03 there, 0.01 now" in error[0]
    assert {p: p.stat().st_mtime_ns for p in before} == before, "the other run's files are untouched"
    assert not (runs / "demo" / "version_1" / "export").exists()
    # auto resumes only a run of this configuration: here there is none, so it starts a new one
    auto = demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--model.learning_rate=0.01", "--ckpt_path=auto")
    cli = train([*auto, "--trainer.enable_progress_bar=false"])
    assert cli.trainer.global_step == BATCHES and (runs / "demo" / "version_1" / "export").is_dir()


def test_resuming_a_finished_run_says_so_and_changes_nothing(tiny_t5, tmp_path, caplog):
    runs = tmp_path / "runs"
    args = demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false")
    train(args)
    export = runs / "demo" / "version_0" / "export" / "model.safetensors"
    stamp = export.stat().st_mtime_ns
    cli = train([*args, "--ckpt_path=last"])
    assert "is finished (it already trained 1 of max_epochs=1 epochs" in caplog.text
    assert cli.trainer.global_step == 0 and export.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (runs / "demo").iterdir()) == ["version_0"]


def test_a_run_saved_before_an_option_existed_still_resumes(tiny_t5, tmp_path, caplog, capsys):
    """Options added since a run was saved count as their defaults (which keep the earlier behaviour): the run is
    still this configuration, unless the new option is set to something else."""
    import yaml

    from resumen.app.cli_support import main_guard
    from resumen.app.train import cli_main

    runs = tmp_path / "runs"
    args = demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false")
    train(args)
    saved = runs / "demo" / "version_0" / "config.yaml"
    config = yaml.safe_load(saved.read_text())
    for section, key in (("model", "dropout_rate"), ("model", "compile"), ("checkpoint", "tie_breaker")):
        del config[section][key]  # as written before these options existed
    saved.write_text(yaml.safe_dump(config))
    cli = train([*args, "--ckpt_path=last"])
    assert "is finished (it already trained 1 of max_epochs=1 epochs" in caplog.text and cli.trainer.global_step == 0
    with pytest.raises(SystemExit):  # set to something other than the default, it is another configuration
        in_root(main_guard, cli_main, [*args, "--model.dropout_rate=0.0", "--ckpt_path=last"])
    assert "model.dropout_rate: None there, 0.0 now" in capsys.readouterr().err


# ------------------------------------------------------------------------------- writes on another filesystem
@pytest.fixture
def small_tmpfs(tmp_path):
    """A 3 MiB filesystem of its own (root only): the target of checkpoint writes, away from the temp dir."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_full_disk_during_a_checkpoint_save_keeps_the_previous_one(small_tmpfs, tmp_path, monkeypatch):
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_temp))
    target = small_tmpfs / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "weights": torch.ones(200_000)}, target)  # 0.8 MB
    with pytest.raises(ResumenError, match="the disk is full.*previous file, if any, is intact"):
        io.save_checkpoint({"global_step": 2, "weights": torch.ones(1_000_000)}, target)  # 4 MB: does not fit
    assert load_checkpoint_file(target)["global_step"] == 1
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"], "no partial file is left"
    assert not list(system_temp.iterdir()), "nothing is staged in the system temp directory"


def test_full_disk_during_an_export_keeps_the_previous_export(small_tmpfs, tiny_t5):
    from transformers import AutoModelForSeq2SeqLM

    from resumen.core.files import atomic_directory

    export = small_tmpfs / "export"
    export.mkdir()
    (export / "config.json").write_text('{"previous": true}')
    (small_tmpfs / "filler").write_bytes(b"x" * 2_700_000)  # leaves less room than the model's safetensors
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5)
    with pytest.raises(ResumenError, match="could not write .*export' \\(the disk is full\\); the previous file"):
        with atomic_directory(export) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)  # safetensors: SafetensorError, not OSError
    assert (export / "config.json").read_text() == '{"previous": true}'
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["export", "filler"], "no partial export is left"


KILLED_WRITER = """
import torch
from resumen.lightning_modules.checkpoints import AtomicCheckpointIO
print("writing", flush=True)
AtomicCheckpointIO().save_checkpoint({{"global_step": 2, "weights": torch.ones(150_000_000)}}, {target!r})
"""


def test_kill_during_a_checkpoint_save_on_another_filesystem_keeps_the_previous_one(tmp_path, monkeypatch):
    """A 600 MB save into a tmpfs, killed while writing: the previous last.ckpt still loads; the next run cleans up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "other-disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        target = disk / "checkpoints" / "last.ckpt"
        AtomicCheckpointIO().save_checkpoint({"global_step": 1, "weights": torch.ones(1000)}, target)
        code = KILLED_WRITER.format(root=str(ROOT), target=str(target))
        writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "writing"
        import time

        deadline = time.time() + 60
        while time.time() < deadline and not any(p.name.startswith(".last.ckpt.tmp-") and p.stat().st_size > 10_000_000 for p in target.parent.iterdir()):
            time.sleep(0.01)
        writer.kill()
        writer.wait()
        leftovers = [p for p in target.parent.iterdir() if p.name != "last.ckpt"]
        assert leftovers, "the writer was killed before it started writing"
        assert load_checkpoint_file(target)["global_step"] == 1
        from resumen.core.files import remove_stale_temporaries

        assert remove_stale_temporaries(target.parent) == leftovers
        assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_killed_saves_leftover_is_removed_when_the_run_resumes(tiny_t5, tmp_path):
    runs = tmp_path / "runs"
    train(demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"))
    checkpoints = runs / "demo" / "version_0" / "checkpoints"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    from resumen.core.files import _HOST

    leftover = checkpoints / f".last.ckpt.tmp-{_HOST}-{dead.stdout.strip()}"
    leftover.write_bytes(b"half a checkpoint")
    train(demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false", "--ckpt_path=last"))
    assert not leftover.exists()


# ------------------------------------------------------------------------------------ nothing loaded runs code
class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def fsdp_checkpoint(tmp_path) -> Path:
    """A real sharded checkpoint, written the way Lightning's FSDP strategy writes one (single process)."""
    import warnings

    import torch.distributed.checkpoint as dcp

    directory = tmp_path / "best.ckpt"
    state = {"model": {"model.shared.weight": torch.randn(8, 4)}, "optimizer_0": {"param_groups": [{"lr": 0.1}]}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(state, checkpoint_id=directory, no_dist=True)
    torch.save({"epoch": 1, "hyper_parameters": {"model_name_or_path": "x"}}, directory / "meta.pt")
    return directory


def test_sharded_checkpoint_loads_tensors_only(fsdp_checkpoint):
    from resumen.lightning_modules.checkpoints import load_full_checkpoint

    checkpoint = load_full_checkpoint(fsdp_checkpoint)
    assert checkpoint["epoch"] == 1 and checkpoint["state_dict"]["model.shared.weight"].shape == (8, 4)
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == 0.1


@pytest.mark.parametrize("part", [".metadata", "meta.pt"])
def test_crafted_sharded_checkpoint_is_refused_and_runs_no_code(fsdp_checkpoint, tmp_path, tiny_t5, capsys, part):
    from resumen.app import export
    from resumen.app.cli_support import main_guard
    from resumen.app.train import cli_main

    marker = tmp_path / "pwned"
    with open(fsdp_checkpoint / part, "wb") as handle:
        pickle.dump(_RunsCode(marker), handle)
    for entry_point, args in [
        (export.main, [str(fsdp_checkpoint), "--output", str(tmp_path / "out")]),
        (cli_main, demo_args("fit", tiny_t5, tmp_path / "runs", f"--ckpt_path={fsdp_checkpoint}")),
        (cli_main, demo_args("test", tiny_t5, tmp_path / "runs", f"--ckpt_path={fsdp_checkpoint}")),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            in_root(main_guard, entry_point, args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "refusing to unpickle it" in err, err
        assert not marker.exists(), "unpickling the crafted file ran its code"
    assert not (tmp_path / "out").exists()


def test_crafted_deepspeed_checkpoint_is_refused_and_runs_no_code(tmp_path, capsys):
    from resumen.app import export
    from resumen.app.cli_support import main_guard

    marker = tmp_path / "pwned"
    directory = tmp_path / "best.ckpt" / "checkpoint"
    directory.mkdir(parents=True)
    with open(directory / "mp_rank_00_model_states.pt", "wb") as handle:
        pickle.dump(_RunsCode(marker), handle)
    with pytest.raises(SystemExit):
        main_guard(export.main, [str(tmp_path / "best.ckpt"), "--output", str(tmp_path / "out")])
    assert "refusing to unpickle it" in capsys.readouterr().err
    assert not marker.exists()


def test_a_plain_checkpoint_with_code_is_refused(tmp_path, capsys):
    from resumen.app import export
    from resumen.app.cli_support import main_guard

    marker = tmp_path / "pwned"
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "payload": _RunsCode(marker)}, crafted)
    with pytest.raises(SystemExit):
        main_guard(export.main, [str(crafted), "--output", str(tmp_path / "out")])
    assert "refusing to unpickle it" in capsys.readouterr().err
    assert not marker.exists()


def test_a_crafted_lora_adapter_is_refused_and_runs_no_code(tiny_t5, tmp_path, capsys):
    """An adapter directory handed to a script (here compare.py) loads its .bin weights-only: code is refused."""
    import json
    import shutil

    from resumen.app import compare
    from resumen.app.cli_support import main_guard

    marker = tmp_path / "pwned"
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(tiny_t5) / name, adapter / name)
    (adapter / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "SEQ_2_SEQ_LM",
                "base_model_name_or_path": str(tiny_t5),
                "r": 4,
                "lora_alpha": 8,
                "target_modules": ["q", "v"],
            }
        )
    )
    torch.save({"payload": _RunsCode(marker)}, adapter / "adapter_model.bin")
    with pytest.raises(SystemExit):
        main_guard(compare.main, ["--models", str(adapter), "--max-new-tokens", "2", "hola"])
    err = capsys.readouterr().err
    assert f"error: {adapter}:" in err and "refusing to unpickle" in err, err[-2000:]
    assert not marker.exists(), "loading the crafted adapter ran its code"
