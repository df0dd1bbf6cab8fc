"""scripts/tune.py: each trial a normal fit run, pruned on its validation score per epoch, the study in SQLite so a
killed search resumes its interrupted trial's run and finishes; the best run's export named at the end."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, read_only_mount

pytest.importorskip("optuna")


def tune_command(tiny_t5, tmp_path, study, trials, *extra):
    return [
        sys.executable,
        str(ROOT / "scripts" / "tune.py"),
        "--config",
        "configs/demo.yaml",
        "--config",
        "tests/fixtures/sample.yaml",
        f"--model.model_name_or_path={tiny_t5}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        "--trainer.enable_progress_bar=false",
        "--trials",
        str(trials),
        "--storage",
        f"sqlite:///{tmp_path / 'study.db'}",
        "--study-name",
        study,
        "--search",
        "model.learning_rate=1e-5:3e-2:log",
        "--monitor",
        "val/loss",
        "--json",
        *extra,
    ]


def last_json(stdout):
    return json.loads([line for line in stdout.splitlines() if line.startswith('{"study"')][-1])


def test_a_search_prunes_trials_that_fall_behind_and_names_the_best_export(tiny_t5, tmp_path):
    done = subprocess.run(tune_command(tiny_t5, tmp_path, "lr", 3, "--trainer.max_epochs=4"), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = last_json(done.stdout)
    states = [row["state"] for row in result["trials"]]
    assert len(states) == 3 and states[:2] == ["complete", "complete"]  # the median pruner's two startup trials
    assert states[2] == "pruned", result["trials"]  # seeded: trial 2 (and 3, in a longer search) falls behind at epoch 1
    pruned = [row for row in result["trials"] if row["state"] == "pruned"]
    assert all(row["epochs"] < 4 for row in pruned)  # stopped early, as a run that is done
    for row in result["trials"]:  # each trial is a normal run of its own
        assert row["run"] == str(tmp_path / "runs" / f"lr-trial{row['trial']}" / "version_0")
        assert (tmp_path / "runs" / f"lr-trial{row['trial']}" / "version_0" / "export" / "model.safetensors").is_file()
    best = result["best"]
    complete = [row for row in result["trials"] if row["state"] == "complete"]
    assert best["val/loss"] == min(row["val/loss"] for row in complete)
    assert best["export"] == str(tmp_path / "runs" / f"lr-trial{best['trial']}" / "version_0" / "export")


def test_a_stopped_search_resumes_its_trial_and_finishes_the_study(tiny_t5, tmp_path):
    """Stopped twice, the two ways a cluster stops it: SIGTERM to the search during trial 0 (a scheduler: the search
    passes the signal on, the trial saves), then kill -9 of the search and its trial during trial 1 (the node dies).
    Each rerun of the same command resumes the interrupted trial's run; the last one finishes the study."""
    command = tune_command(tiny_t5, tmp_path, "resume", 2, "--trainer.max_epochs=2", "--no-pruning")
    runs = tmp_path / "runs"

    def search_until_an_epoch_of(trial: int) -> tuple[subprocess.Popen, list[str]]:
        search = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        last = runs / f"resume-trial{trial}" / "version_0" / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 300
        while not last.is_file() and time.monotonic() < deadline:  # the trial has finished an epoch
            time.sleep(0.2)
        assert last.is_file(), search.stderr.read() if search.poll() is not None else f"no {last} in time"
        return search, subprocess.run(["pgrep", "-f", f"resume-trial{trial}"], capture_output=True, text=True).stdout.split()

    search, _ = search_until_an_epoch_of(0)
    search.send_signal(signal.SIGTERM)
    assert search.wait(120) == 143
    assert "rerun the same command to continue" in search.stderr.read()

    search, trial = search_until_an_epoch_of(1)  # trial 0 resumed and finished on the way
    search.kill()
    for pid in trial:
        os.kill(int(pid), signal.SIGKILL)
    search.wait(30)
    assert "Trial 0: resuming its run" in search.stderr.read()

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Trial 1: resuming its run" in done.stderr and "Trial 0" not in done.stderr
    assert "resuming" in done.stderr.split("Trial 1: resuming its run", 1)[1].lower()  # the run itself says so
    result = last_json(done.stdout)
    assert [row["state"] for row in result["trials"]] == ["complete", "complete"]
    for number in (0, 1):
        assert sorted(p.name for p in (runs / f"resume-trial{number}").iterdir()) == ["version_0"]  # resumed, not restarted
        assert json.loads((runs / f"resume-trial{number}" / "version_0" / "report.json").read_text())["epochs"] == 2


def test_bad_search_options_are_one_line_before_any_trial(tmp_path):
    from resumen.core.errors import ResumenError
    from resumen.app import tune

    for argv, message in [
        (["--trials", "2", "--study-name", "x"], "give the training config"),
        (["--config", "c.yaml", "--trials", "0", "--study-name", "x"], "at least 1"),
        (["--config", "c.yaml", "--trials", "2", "--study-name", "x", "--search", "model.learning_rate=1:0.1"], "LOW below HIGH"),
        (["--config", "c.yaml", "--trials", "2", "--study-name", "x", "--search", "lr=1e-5:1e-3"], "a fit option"),
        (["--config", "c.yaml", "--trials", "2", "--study-name", "a/b"], "letters, digits"),
        (["--config", "c.yaml", "--trials", "2", "--study-name", "x", "--ckpt_path", "last"], "resumes it itself"),
    ]:
        with pytest.raises(ResumenError, match=message):
            tune.main(argv)


def test_two_searches_share_a_study_without_taking_each_others_trials(tiny_t5, tmp_path):
    """docs/tuning.md: shared storage for several machines. The second search sees the first one's trial beating
    (its heartbeat) and runs a trial of its own with other settings, instead of taking the running one over."""
    command = tune_command(tiny_t5, tmp_path, "shared", 2, "--trainer.max_epochs=3", "--no-pruning")
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "runs" / "shared-trial0" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.is_file() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert last.is_file(), first.stderr.read() if first.poll() is not None else "trial 0 wrote no last.ckpt in time"
    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, err[-2000:] + second.stderr[-2000:]
    assert "resuming its run" not in second.stderr + err, second.stderr[-2000:]
    result = last_json(second.stdout)
    assert [row["state"] for row in result["trials"]] == ["complete", "complete"]
    rates = [row["model.learning_rate"] for row in result["trials"]]
    assert rates[0] != rates[1]  # trial N draws from --seed + N: the searches do not repeat each other
    for number in (0, 1):  # each trained once, in one run
        assert sorted(p.name for p in (tmp_path / "runs" / f"shared-trial{number}").iterdir()) == ["version_0"]
        assert json.loads((tmp_path / "runs" / f"shared-trial{number}" / "version_0" / "report.json").read_text())["epochs"] == 3


def test_a_storage_the_trials_cannot_use_is_refused_before_any_trial(tmp_path):
    from resumen.core.errors import ResumenError
    from resumen.app import tune

    base = ["--config", "c.yaml", "--trials", "2", "--study-name", "x"]
    for storage in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(ResumenError, match="an in-memory study cannot be reached by the trials"):
            tune.main([*base, "--storage", storage])
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only_mount(folder, tmp_path / "mounted") as mount:
        with pytest.raises(ResumenError, match="is read-only: copy it somewhere writable"):
            tune.main([*base, "--storage", f"sqlite:///{mount / 'study.db'}"])


def test_a_search_space_that_does_not_fit_the_study_leaves_no_running_trial(tmp_path):
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    from resumen.core.errors import ResumenError
    from resumen.app import tune

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="space", storage=storage, direction="maximize")
    study.add_trial(
        optuna.trial.create_trial(
            params={"model.learning_rate": 1e-3}, value=1.0, distributions={"model.learning_rate": FloatDistribution(1e-5, 1e-2, log=True)}
        )
    )
    with pytest.raises(ResumenError, match="--search does not fit the study 'space'"):
        tune.main(["--config", "c.yaml", "--trials", "3", "--study-name", "space", "--storage", storage, "--search", "model.learning_rate=0.1,0.2"])
    states = [t.state for t in optuna.load_study(study_name="space", storage=storage).get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]
