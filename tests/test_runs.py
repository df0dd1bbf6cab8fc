"""One fit, one run directory: claimed atomically, locked while it trains, never shared, never left empty."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli_helpers import demo_args, in_root
from conftest import ROOT
from resumen.core.runs import RunLayout, claim_new_run, list_runs, lock_run, unlock_run
from resumen.app.cli_support import main_guard
from resumen.app.train import cli_main

QUIET = ("--trainer.enable_progress_bar=false",)


def train(args):
    return in_root(cli_main, list(args))


def refused(args, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        in_root(main_guard, cli_main, list(args))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err[-2000:]
    return lines[0]


CLAIMER = "from resumen.core.runs import claim_new_run; from pathlib import Path; print(claim_new_run(Path({runs!r})).name)"


def test_processes_claiming_at_once_get_distinct_versions(tmp_path):
    code = CLAIMER.format(root=str(ROOT), runs=str(tmp_path / "runs"))
    claimers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(6)]
    names = sorted(p.communicate(timeout=60)[0].strip() for p in claimers)
    assert names == [f"version_{i}" for i in range(6)]


@pytest.mark.slow
def test_two_fits_started_together_never_share_a_run(tiny_t5, tmp_path):
    """A requeue race: two `fit --ckpt_path auto` at the same moment, no run yet. Each gets its own directory, with
    its own config, checkpoints and export."""
    runs = tmp_path / "runs"
    args = demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--ckpt_path=auto", *QUIET)
    fits = [
        subprocess.Popen([sys.executable, "scripts/train.py", *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    for fit in fits:
        assert fit.wait(timeout=300) == 0, fit.stderr.read()[-2000:]
    directories = list_runs(runs / "demo")
    assert [run.name for run in directories] == ["version_0", "version_1"]
    for run in directories:
        assert run.config.is_file() and run.last.is_file() and (run.export / "model.safetensors").is_file()
        assert run.status()["status"] == "finished"


@pytest.fixture
def one_run(tiny_t5, tmp_path) -> tuple[Path, list[str]]:
    runs = tmp_path / "runs"
    args = demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", *QUIET)
    train(args)
    return runs, args


def test_a_second_resume_of_a_run_in_use_is_refused(one_run, capsys):
    runs, args = one_run
    run = RunLayout(runs / "demo" / "version_0")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import time; from resumen.core.runs import RunLayout, "
            f"lock_run; lock_run(RunLayout(__import__('pathlib').Path({str(run.directory)!r})), 'x'); print('locked', "
            "flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = {p: p.stat().st_mtime_ns for p in run.directory.rglob("*") if p.is_file()}
        for mode in ("last", "auto"):
            line = refused([*args, "--trainer.max_epochs=2", f"--ckpt_path={mode}"], capsys)
            assert f"is in use by process {holder.pid}" in line and "one process trains in a run at a time" in line
        assert {p: p.stat().st_mtime_ns for p in before} == before
        assert [r.name for r in list_runs(runs / "demo")] == ["version_0"]
        assert run.status()["status"] == "running"  # what the runs listing shows while a process holds it
    finally:
        holder.kill()
        holder.wait()
    assert run.status()["status"] == "finished"  # the lock died with its process (kill -9 too)
    train([*args, "--trainer.max_epochs=2", "--ckpt_path=last"])  # free again: resumed


def test_a_hand_edited_config_does_not_hide_a_changed_setting(one_run, capsys):
    """config.yaml edited from batch 4 to 2 after the run: the checkpoint's own settings still say 4."""
    runs, args = one_run
    config = RunLayout(runs / "demo" / "version_0").config
    saved = yaml.safe_load(config.read_text())
    saved["data"]["batch_size"] = 2
    config.write_text(yaml.safe_dump(saved))
    line = refused([*args, "--data.batch_size=2", "--trainer.max_epochs=2", "--ckpt_path=last"], capsys)
    assert "has a checkpoint of another configuration (data.batch_size: 4 there, 2 now)" in line


def test_a_hand_edited_seed_is_refused_like_any_other_setting(one_run, capsys):
    """config.yaml's seed_everything edited, resumed with that config.yaml: the checkpoint records the seed its run
    was started with."""
    runs, args = one_run
    config = RunLayout(runs / "demo" / "version_0").config
    saved = yaml.safe_load(config.read_text())
    saved["seed_everything"] = 7
    config.write_text(yaml.safe_dump(saved))
    line = refused([*args, "--config", str(config), "--trainer.max_epochs=2", "--ckpt_path=last"], capsys)
    assert "has a checkpoint of another configuration (seed_everything: 42 there, 7 now)" in line


@pytest.mark.parametrize("damage", ["", "\x00\xff garbage: [unclosed"])
def test_a_damaged_config_of_another_run_is_skipped_with_a_warning(damage, one_run, recwarn):
    runs, args = one_run
    train(args)  # version_1, the same configuration
    RunLayout(runs / "demo" / "version_1").config.write_text(damage)  # what a kill mid-write (or a bad disk) leaves
    cli = train([*args, "--trainer.max_epochs=2", "--ckpt_path=auto"])
    assert any("skipping" in str(w.message) and "version_1" in str(w.message) for w in recwarn)
    assert Path(cli.trainer.log_dir).name == "version_0" and cli.trainer.global_step == 10


def test_a_fit_that_fails_before_its_first_step_leaves_no_run_directory(tiny_t5, tmp_path, capsys):
    runs = tmp_path / "runs"
    long = "Resume el siguiente artículo de la sección de deportes y economía en una sola frase corta:\n\n{text}"
    refused(demo_args("fit", tiny_t5, runs, f"--data.prompt_template={long}", "--data.max_source_length=8"), capsys)
    assert list_runs(runs / "demo") == []


def test_a_killed_fit_is_listed_as_killed_not_running(one_run):
    runs, _ = one_run
    run = RunLayout(runs / "demo" / "version_0")
    run.write_status("running")  # what a kill -9 leaves: nobody holds the lock
    assert run.status()["status"] == "killed"


def test_the_lock_is_held_while_training_and_released_after(one_run):
    runs, args = one_run
    run = RunLayout(runs / "demo" / "version_0")
    lock_run(run, "test")
    try:
        assert run.status()["status"] == "running"
    finally:
        unlock_run(run)
    assert run.status()["status"] == "finished"


def test_claiming_skips_versions_that_exist(tmp_path):
    (tmp_path / "version_0").mkdir()
    (tmp_path / "version_7").mkdir()
    assert claim_new_run(tmp_path).name == "version_8"
    assert [r.version for r in list_runs(tmp_path)] == [0, 7, 8]


def test_an_export_over_a_directory_of_runs_deletes_nothing(one_run, tiny_t5, capsys):
    """--export.dirpath pointing at the directory that holds the runs, with --export.overwrite=true: refused before
    training, and every run's checkpoints are still there."""
    runs, _ = one_run
    before = sorted(str(p) for p in runs.rglob("*.ckpt"))
    args = demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", f"--export.dirpath={runs / 'demo'}", "--export.overwrite=true", *QUIET)
    line = refused(args, capsys)
    assert "holds 'version_0'" in line and "only replaces a previous export" in line
    assert sorted(str(p) for p in runs.rglob("*.ckpt")) == before and before


def test_an_export_replaces_a_previous_export(one_run, tiny_t5, tmp_path):
    runs, _ = one_run
    export = RunLayout(runs / "demo" / "version_0").export
    target = tmp_path / "shared-export"
    import shutil

    shutil.copytree(export, target)
    train(demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", f"--export.dirpath={target}", "--export.overwrite=true", *QUIET))
    assert (target / "model.safetensors").stat().st_mtime > (export / "model.safetensors").stat().st_mtime


def test_the_runs_listing_shows_status_epochs_scores_and_exports_in_version_order(finished_run, tmp_path, capsys):
    """runs.py over a directory of runs: finished, preempted, failed and killed ones, version_10 after version_9."""
    import json
    import shutil

    from resumen.app import runs as listing

    root = tmp_path / "runs" / "demo"
    shutil.copytree(finished_run["runs"] / "demo" / "version_0", root / "version_9")
    shutil.copytree(finished_run["runs"] / "demo" / "version_0", root / "version_10")
    RunLayout(root / "version_10").write_status("preempted", step=12)
    (root / "version_2").mkdir()
    RunLayout(root / "version_2").write_status("failed", step=3, error="the training loss became NaN at step 3")
    (root / "version_3").mkdir()
    RunLayout(root / "version_3").write_status("running")  # its process is gone: a kill -9
    rows = listing.main(["--root", str(tmp_path / "runs"), "--json"])
    assert [row["run"] for row in rows] == ["demo/version_2", "demo/version_3", "demo/version_9", "demo/version_10"]
    assert [row["status"] for row in rows] == ["failed", "killed", "finished", "preempted"]
    finished = rows[2]
    results = json.loads((root / "version_9" / "test_results.json").read_text())
    tested = results["rouge"]["rougeL"]
    assert finished["epochs"] == 3 and finished["best_epoch"] in (1, 2, 3) and finished["best_val_rougeL"] >= 0
    assert finished["test_rougeL"] == tested["mean"] and finished["test_rougeL_low"] == tested["low"]
    assert finished["test_vs_lead1"] == results["versus_baselines"]["lead-1"]["rougeL"]["mean"]  # the margin over copying
    assert finished["test_metrics"]["unsupported_names"] == results["faithfulness"]["unsupported_names"]["mean"]
    assert finished["export"].endswith("version_9/export") and "export" not in rows[0]
    assert json.loads(capsys.readouterr().out) == rows
    listing.main(["--root", str(root)])
    table = capsys.readouterr().out
    assert "demo/version_10" in table and "the training loss became NaN" in table and "[" in table
    assert "vs lead-1" in table and f"{finished['test_vs_lead1']:+.2f}" in table


def test_a_loss_monitored_checkpoint_is_named_after_the_loss(tiny_t5, tmp_path):
    runs = tmp_path / "runs"
    train(demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--checkpoint.monitor=val/loss", "--checkpoint.mode=min", *QUIET))
    names = [p.name for p in (runs / "demo" / "version_0" / "checkpoints").glob("best-*.ckpt")]
    assert len(names) == 1 and names[0].startswith("best-epoch01-loss") and "rougeL" not in names[0], names  # the first epoch is 1


def test_one_bad_run_is_one_line_in_the_listing_never_the_end_of_it(finished_run, tmp_path, capsys):
    """Hand-edited or damaged records, each in a run of its own beside a good run: a report that is a list, a
    test result with a text for a score, a status that is a FIFO (it used to hang the listing), a report that is a
    link to /dev/zero (memory without bound), a status with terminal escape sequences."""
    import json
    import os
    import shutil

    from resumen.app import runs as listing

    root = tmp_path / "runs" / "demo"
    good = finished_run["runs"] / "demo" / "version_0"
    for version in range(6):
        shutil.copytree(good, root / f"version_{version}", ignore=shutil.ignore_patterns("checkpoints", "export"))
    (root / "version_1" / "report.json").write_text("[]")
    results = json.loads((root / "version_2" / "test_results.json").read_text())
    results["rouge"]["rougeL"]["mean"] = "high"
    (root / "version_2" / "test_results.json").write_text(json.dumps(results))
    (root / "version_3" / "status.json").unlink()
    os.mkfifo(root / "version_3" / "status.json")
    (root / "version_4" / "report.json").unlink()
    (root / "version_4" / "report.json").symlink_to("/dev/zero")
    (root / "version_5" / "status.json").write_text(json.dumps({"status": "failed", "error": "\x1b[2J\x1b]0;pwned\x07boom"}))
    rows = listing.main(["--root", str(tmp_path / "runs"), "--json"])
    capsys.readouterr()
    assert [row["status"] for row in rows] == ["finished", "unreadable", "unreadable", "finished", "unreadable", "failed"]
    assert "report.json' is not a JSON object" in rows[1]["error"] and "could not convert" in rows[2]["error"]
    assert "status.json' is not a regular file" in rows[3]["error"] and "report.json' is not a regular file" in rows[4]["error"]
    listing.main(["--root", str(root)])
    table = capsys.readouterr().out
    assert "\x1b" not in table and "\x07" not in table and "\\x1b[2J" in table and len(table.splitlines()) == 2 + 6 + 5


def test_a_test_result_is_shown_beside_its_checkpoint_and_outdated_once_another_is_best(tmp_path, capsys):
    """fit (best epoch 8) -> test -> fit --ckpt_path last (best epoch 11, epoch 8's file deleted): the listing no longer
    shows epoch 8's test score as the run's, and says why."""
    import json

    from resumen.app import runs as listing

    run = tmp_path / "runs" / "demo" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    RunLayout(run).write_status("finished")
    tested = {"checkpoint": "runs/demo/version_0/checkpoints/best-epoch08-rougeL78.13.ckpt", "rouge": {"rougeL": {"mean": 87.65, "low": 83.6, "high": 91.0}}}
    (run / "test_results.json").write_text(json.dumps(tested))
    (run / "checkpoints" / "best-epoch08-rougeL78.13.ckpt").write_bytes(b"")
    (run / "report.json").write_text(json.dumps({"best_checkpoint": "runs/demo/version_0/checkpoints/best-epoch08-rougeL78.13.ckpt"}))
    (row,) = listing.main(["--root", str(tmp_path / "runs"), "--json"])
    assert "test_outdated" not in row and row["test_checkpoint"] == "best-epoch08-rougeL78.13.ckpt"

    (run / "report.json").write_text(json.dumps({"best_checkpoint": "runs/demo/version_0/checkpoints/best-epoch11-rougeL79.02.ckpt"}))
    (row,) = listing.main(["--root", str(tmp_path / "runs"), "--json"])
    assert row["test_outdated"] == "tested best-epoch08-rougeL78.13.ckpt; the best is now best-epoch11-rougeL79.02.ckpt"
    (run / "checkpoints" / "best-epoch08-rougeL78.13.ckpt").unlink()
    (row,) = listing.main(["--root", str(tmp_path / "runs"), "--json"])
    assert row["test_outdated"] == "the tested checkpoint best-epoch08-rougeL78.13.ckpt is gone"
    capsys.readouterr()
    listing.main(["--root", str(tmp_path / "runs")])
    table = capsys.readouterr().out
    assert "87.65" not in table and "test outdated: the tested checkpoint best-epoch08-rougeL78.13.ckpt is gone (run train.py test again)" in table
