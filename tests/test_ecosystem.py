"""Flags users expect from the ecosystem: early stopping, any Lightning logger, and a model card the Hub reads."""

import csv
import json
from pathlib import Path

import pytest

from cli_helpers import SAMPLE_PROFILE, demo_args, in_root, run_train
from conftest import ROOT

QUIET = "--trainer.enable_progress_bar=false"


def test_early_stopping_stops_a_flat_run_and_says_why(tiny_t5, tmp_path, caplog):
    runs = tmp_path / "runs"
    # a learning rate too small to move ROUGE: val/rougeL stays flat, so patience 2 stops after epoch 3 of 20 (from 1)
    cli = in_root(run_train, *demo_args("fit", tiny_t5, runs, "--model.learning_rate=1e-9", "--early_stopping.patience=2", QUIET))
    assert cli.trainer.current_epoch == 3 and cli.trainer.max_epochs == 20
    report = json.loads((runs / "demo" / "version_0" / "report.json").read_text())
    assert report["stopped_early_at_epoch"] == 3 and "did not improve in the last 2 records" in report["stopped_early_because"]
    assert "stopped early after epoch 3" in caplog.text
    assert (runs / "demo" / "version_0" / "export" / "model.safetensors").exists()  # a finished run: exported


def test_early_stopping_is_off_unless_asked(tiny_t5, tmp_path):
    cli = in_root(run_train, *demo_args("fit", tiny_t5, tmp_path / "runs", "--model.learning_rate=1e-9", "--trainer.max_epochs=4", QUIET))
    assert cli.trainer.current_epoch == 4 and not cli.trainer.early_stopping_callback.enabled


def test_csv_logger_run_writes_its_metrics_without_tensorboard(tiny_t5, tmp_path, caplog):
    runs = tmp_path / "runs"
    in_root(
        run_train,
        *[
            "fit",
            "--config",
            str(ROOT / "configs" / "demo.yaml"),
            "--config",
            str(SAMPLE_PROFILE),
            f"--model.model_name_or_path={tiny_t5}",
            "--trainer.max_epochs=2",
            "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
            f"--trainer.logger.save_dir={runs}",
            "--trainer.logger.name=demo",
            QUIET,
        ],
    )
    run = runs / "demo" / "version_0"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [row["epoch"] for row in rows if row.get("val/rougeL")] == ["0", "1"]
    assert any(row.get("train/loss_step") for row in rows) and any(row.get("lr-AdamW/pg1") for row in rows)
    assert not list(run.glob("events.out.tfevents*"))
    assert (run / "config.yaml").exists() and (run / "export" / "model.safetensors").exists()
    assert f"Logs: {run}" in caplog.text and "tensorboard --logdir" not in caplog.text


def test_two_loggers_share_one_run_directory_and_csv_history_survives_a_resume(tiny_t5, tmp_path):
    runs = tmp_path / "runs"
    loggers = tmp_path / "loggers.yaml"
    loggers.write_text(
        "trainer:\n  logger:\n"
        f"    - class_path: lightning.pytorch.loggers.TensorBoardLogger\n      init_args: {{save_dir: {runs}, name: demo}}\n"
        f"    - class_path: lightning.pytorch.loggers.CSVLogger\n      init_args: {{save_dir: {runs}, name: demo}}\n"
    )
    common = [
        "--config",
        str(ROOT / "configs" / "demo.yaml"),
        "--config",
        str(SAMPLE_PROFILE),
        "--config",
        str(loggers),
        f"--model.model_name_or_path={tiny_t5}",
        QUIET,
    ]
    in_root(run_train, "fit", *common, "--trainer.max_epochs=1")
    in_root(run_train, "fit", *common, "--trainer.max_epochs=2", "--ckpt_path=last")
    assert sorted(p.name for p in (runs / "demo").iterdir()) == ["version_0"]
    run = runs / "demo" / "version_0"
    assert list(run.glob("events.out.tfevents*"))
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [row["epoch"] for row in rows if row.get("val/rougeL")] == ["0", "1"]  # epoch 0 kept across the resume


def test_export_card_parses_with_huggingface_hub_and_holds_the_evaluation(finished_run):
    from huggingface_hub import ModelCard

    fit = finished_run["fit"]
    export = Path(fit.trainer.log_dir) / "export"
    card = ModelCard.load(export / "README.md")
    assert card.data.base_model is None  # a local base model is not Hub metadata ...
    assert str(fit.model.hparams.model_name_or_path) in card.text  # ... it is named in the text
    assert card.data.language == "es" and card.data.pipeline_tag == "summarization"
    assert card.data.library_name == "transformers" and "summarization" in card.data.tags
    results = {(r.dataset_split, r.metric_config): r.metric_value for r in card.data.eval_results}
    report = json.loads((Path(fit.trainer.log_dir) / "report.json").read_text())
    assert results[("validation", "rougeL")] == pytest.approx(report["best_metrics"]["val/rougeL"], abs=0.01)
    # `test` ran on the best checkpoint, the one exported: its scores joined the card
    tested = finished_run["test"].trainer.callback_metrics
    assert results[("test", "rougeL")] == pytest.approx(float(tested["test/rougeL"]), abs=0.01)
    # the literature-comparable ROUGE under its own name, apart from ours
    assert results[("test", "rougeL-literature")] == pytest.approx(float(tested["test/literature_rougeL"]), abs=0.01)
    assert "literature-comparable" in card.text
    assert "Resume el siguiente articulo" in card.text and "## Training settings" in card.text
    assert "## Tokenizer coverage" in card.text and "## Test results" in card.text


def test_card_names_a_hub_base_model_and_dataset():
    from huggingface_hub import ModelCard

    from resumen.lightning_modules.model_card import build_card

    card = build_card(
        "google/flan-t5-small",
        "Resume el siguiente articulo:\n\n{text}",
        3,
        "best-epoch03.ckpt",
        {"val/rougeL": 21.5},
        {"model.learning_rate": 5e-5},
        dataset="mteb/mlsum",
        dataset_config="es",
    )
    parsed = ModelCard(str(card))
    assert parsed.data.base_model == "google/flan-t5-small" and parsed.data.datasets == ["mteb/mlsum"]
    result = parsed.data.eval_results[0]
    assert (result.dataset_type, result.dataset_config, result.metric_value) == ("mteb/mlsum", "es", 21.5)
