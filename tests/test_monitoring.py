"""What a user sees of a run: TensorBoard tags, the HParams tab, the end-of-fit report, and the real TensorBoard server."""

import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from cli_helpers import event_tags

ROUGE = {"rouge1", "rouge2", "rougeL", "rougeLsum"}


def test_fit_logs_every_tag_to_tensorboard(finished_run):
    tags = event_tags(finished_run["runs"] / "demo" / "version_0")
    per_step = {"train/loss_step", "train/grad_norm", "train/samples_per_sec", "train/tokens_per_sec"}
    per_epoch = {"val/loss", "val/gen_len"} | {f"val/{key}" for key in ROUGE}
    assert per_step | per_epoch <= tags["scalars"], tags
    assert any(tag.startswith("lr-") for tag in tags["scalars"])
    assert any("val/samples" in tag for tag in tags["tensors"])


def test_test_run_logs_test_metrics(finished_run):
    tags = event_tags(finished_run["runs"] / "demo" / "version_0" / "test")  # the fitted run's test logs
    assert {"test/loss", "test/gen_len"} | {f"test/{key}" for key in ROUGE} <= tags["scalars"], tags


def test_hparams_tab_holds_settings_and_best_epoch_metrics(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run = finished_run["runs"] / "demo" / "version_0"
    accumulator = EventAccumulator(str(run / "hparams"), size_guidance={"scalars": 0})  # a run of its own
    accumulator.Reload()
    content = accumulator.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    # the columns that tell runs apart, not every setting (no cache_dir=None)
    assert set(session.hparams) == {
        "model",
        "learning_rate",
        "weight_decay",
        "batch_size",
        "max_source_length",
        "max_target_length",
        "train_samples",
        "num_beams",
        "extend_vocabulary",
        "dropout_rate",
        "lora_r",
        "precision",
        "max_epochs",
        "world_size",
        "effective_batch_size",
    }
    assert session.hparams["model"].string_value == finished_run["fit"].model.hparams.model_name_or_path
    assert session.hparams["learning_rate"].number_value == pytest.approx(0.03)
    metric_tags = {info.name.tag for info in experiment.metric_infos}
    assert {"hp/val/loss", "hp/val/rougeL"} <= metric_tags
    # Each declared metric has a real value: the best epoch's, the same the checkpoint callback kept.
    best = float(finished_run["fit"].trainer.checkpoint_callback.best_model_score)
    assert [event.value for event in accumulator.Scalars("hp/val/rougeL")] == [pytest.approx(best, abs=1e-4)]
    assert all(accumulator.Scalars(tag) for tag in metric_tags)


def test_the_run_opens_on_loss_and_rouge_and_keeps_hp_metrics_out_of_its_charts(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2

    run = finished_run["runs"] / "demo" / "version_0"
    accumulator = EventAccumulator(str(run), size_guidance={"tensors": 0, "scalars": 0})
    accumulator.Reload()
    assert not [tag for tag in accumulator.Tags()["scalars"] if tag.startswith("hp/")]
    layout = layout_pb2.Layout.FromString(accumulator.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    charts = {chart.title: list(chart.multiline.tag) for category in layout.category for chart in category.chart}
    assert charts["loss per epoch (train, validation)"] == ["train/loss_epoch", "val/loss"]
    assert "val/rougeL" in charts["validation ROUGE per epoch"]


def test_each_fitted_run_has_a_learning_curve_named_in_its_report(finished_run):
    run = finished_run["runs"] / "demo" / "version_0"
    report = json.loads((run / "report.json").read_text())
    assert report["learning_curve"] == str(run / "learning_curve.png")
    png = (run / "learning_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_end_of_fit_report_names_best_metric_time_throughput_memory(finished_run):
    from resumen.lightning_modules.run_report import format_report

    run = finished_run["runs"] / "demo" / "version_0"
    report = json.loads((run / "report.json").read_text())
    checkpoint = finished_run["fit"].trainer.checkpoint_callback
    assert report["monitor"] == "val/rougeL" and report["best_checkpoint"] == checkpoint.best_model_path
    assert report["best_value"] == pytest.approx(float(checkpoint.best_model_score), abs=1e-4)
    assert report["epochs"] == 3 and report["steps"] == finished_run["fit"].trainer.global_step
    assert report["truncated"] == finished_run["fit"].datamodule.truncation and set(report["truncated"]) == {"train", "validation"}
    assert report["train_samples_per_sec"] > 0 and report["train_tokens_per_sec"] > report["train_samples_per_sec"]
    assert 0 < report["seconds_validation"] < report["seconds_total"]
    assert 0.05 < report["peak_memory"]["process_rss_gib"] < 24
    assert report["data"] == {
        "data_files": {"train": "datamodules/data/train.jsonl", "validation": "datamodules/data/validation.jsonl", "test": "datamodules/data/test.jsonl"}
    }  # where the data came from
    text = format_report(report)
    assert f"best val/rougeL = {report['best_value']:.2f} at epoch {report['best_epoch']}" in text
    assert "samples/s" in text and "peak memory" in text


def test_tensorboard_server_serves_the_run_scalars(finished_run):
    """What `tensorboard --logdir runs` shows: the real server, on 127.0.0.1 only, read over its HTTP API."""
    runs = finished_run["runs"]
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(runs), "--host", "127.0.0.1", "--port", "0", "--reload_interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 90
        while url is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                pytest.fail(f"tensorboard exited with {server.returncode}")
            match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            url = match.group(1) if match else None
        assert url, "tensorboard did not report its address"
        tags = {}
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{url}/data/plugin/scalars/tags", timeout=10) as response:
                tags = json.load(response)
            if "demo/version_0" in tags and "val/rougeL" in tags["demo/version_0"]:
                break
            time.sleep(1)
        fit_tags = set(tags.get("demo/version_0", {}))
        assert {"train/loss_step", "train/grad_norm", "train/samples_per_sec", "val/loss", "val/rougeL"} <= fit_tags, tags
        assert "hp/val/rougeL" in tags.get("demo/version_0/hparams", {}) and "hp/val/rougeL" not in fit_tags
        assert "test/rougeL" in tags.get("demo/version_0/test", {})
        with urllib.request.urlopen(f"{url}/data/plugin/scalars/scalars?run=demo/version_0&tag=val/rougeL", timeout=10) as response:
            points = json.load(response)
        assert len(points) == 3  # one value per epoch: [wall_time, step, value]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_hub_runs_report_records_the_dataset_revision_it_asked_for():
    from resumen.lightning_modules.run_report import data_source

    hub = {"dataset_name": "mteb/mlsum", "dataset_config": "es", "dataset_revision": "abc123", "data_files": None}
    assert data_source(hub) == {"name": "mteb/mlsum", "config": "es", "revision": "abc123"}


def test_every_place_a_person_reads_an_epoch_counts_from_one(finished_run):
    """The console counts epochs from 1 ("epoch 3/3"); the report, the checkpoint name, the model card, the learning
    curve's data and runs.py say the same number for the best epoch (Lightning's own counter starts at 0)."""
    from pathlib import Path

    from resumen.app import runs as listing
    from resumen.lightning_modules.run_report import format_report

    run = finished_run["runs"] / "demo" / "version_0"
    report = json.loads((run / "report.json").read_text())
    assert report["epochs_from"] == 1 and report["first_epoch"] == 1 and 1 <= report["best_epoch"] <= report["epochs"] == 3
    best = report["best_epoch"]
    assert Path(report["best_checkpoint"]).name.startswith(f"best-epoch{best:02d}-")
    assert f"Best checkpoint: epoch {best} (" in (run / "export" / "README.md").read_text()
    row = next(r for r in listing.main(["--root", str(finished_run["runs"]), "--json"]) if r["run"] == "demo/version_0")
    assert row["best_epoch"] == best
    assert f"at epoch {best} " in format_report(report) + " "
