"""fit -> validate -> test -> predict through the real CLI, on the shipped sample and a tiny T5."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli_helpers import run_train
from conftest import ROOT


def test_fit_keeps_best_and_last_checkpoints_and_saves_config(finished_run):
    checkpoints = finished_run["runs"] / "demo" / "version_0" / "checkpoints"
    names = sorted(p.name for p in checkpoints.iterdir())
    assert "last.ckpt" in names and any(n.startswith("best-epoch") for n in names)
    config = yaml.safe_load((finished_run["runs"] / "demo" / "version_0" / "config.yaml").read_text())
    fit = finished_run["fit"]
    assert config["model"]["model_name_or_path"] == fit.model.hparams.model_name_or_path
    assert fit.datamodule.hparams.tokenizer_name == fit.model.hparams.model_name_or_path  # linked


def test_export_loads_with_auto_classes_and_generates(finished_run):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    export = finished_run["runs"] / "demo" / "version_0" / "export"
    files = {p.name for p in export.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pt", ".ckpt")) for name in files)
    umask = os.umask(0o022)
    os.umask(umask)
    # every file as readable as any file the user creates: a server running as another user reads the weights too
    assert {p.name: p.stat().st_mode & 0o777 for p in export.iterdir() if p.is_file()} == {p.name: 0o666 & ~umask for p in export.iterdir() if p.is_file()}
    tokenizer = AutoTokenizer.from_pretrained(export)
    model = AutoModelForSeq2SeqLM.from_pretrained(export)
    ids = tokenizer("Resume el siguiente articulo:\n\nEl Betis ganó al Celta.", return_tensors="pt").input_ids
    output = model.generate(ids, max_new_tokens=5)
    assert output.shape[0] == 1 and 1 < output.shape[1] <= 6
    assert "val/rougeL" in (export / "README.md").read_text()


def test_export_holds_the_best_checkpoints_weights(finished_run):
    import torch
    from safetensors.torch import load_file

    run = finished_run["runs"] / "demo" / "version_0"
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    exported = load_file(run / "export" / "model.safetensors")
    name = "shared.weight"
    assert torch.equal(exported[name], state[f"model.{name}"])


def test_validate_and_test_use_the_best_checkpoint(finished_run):
    fit_cli, test_cli = finished_run["fit"], finished_run["test"]
    best_score = float(fit_cli.trainer.checkpoint_callback.best_model_score)
    validated = finished_run["validate"].trainer.callback_metrics
    assert float(validated["val/rougeL"]) == pytest.approx(best_score, abs=1e-3)
    tested = test_cli.trainer.callback_metrics
    assert {"test/rouge1", "test/rouge2", "test/rougeL", "test/rougeLsum", "test/gen_len", "test/loss"} <= set(tested)


def test_test_reports_each_rouge_with_a_bootstrap_interval(finished_run):
    test_cli = finished_run["test"]
    tested = test_cli.trainer.callback_metrics
    run_dir = Path(test_cli.trainer.log_dir).parent  # logs in version_0/test, results in the fitted run's version_0
    assert run_dir == finished_run["runs"] / "demo" / "version_0"
    results = json.loads((run_dir / "test_results.json").read_text())
    assert results["examples"] == 5 and results["checkpoint"] == test_cli.trainer.ckpt_path
    assert results["interval"]["confidence"] == 0.95 and results["interval"]["seed"] == 0
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        score = results["rouge"][key]
        assert score["low"] <= score["mean"] <= score["high"]
        assert score["mean"] == pytest.approx(float(tested[f"test/{key}"]), abs=0.01)  # the same number as the log
        assert float(tested[f"test/{key}_low"]) == pytest.approx(score["low"], abs=0.01)
    markdown = (run_dir / "test_results.md").read_text()
    assert "| metric | mean | 95% interval |" in markdown and "| rougeL |" in markdown
    # the literature-comparable ROUGE: under its own key, scorer named, in its own table, never in "rouge"
    literature = results["literature_rouge"]
    assert "rouge_score" in literature["scorer"] and "Porter" in literature["scorer"]
    assert literature["rougeL"]["low"] <= literature["rougeL"]["mean"] <= literature["rougeL"]["high"]
    assert float(tested["test/literature_rougeL"]) == pytest.approx(literature["rougeL"]["mean"], abs=0.01)
    assert "Literature-comparable ROUGE" in markdown and set(results["rouge"]) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}


def test_predictions_one_line_per_input_in_input_order(finished_run):
    writer = next(cb for cb in finished_run["predict"].trainer.callbacks if hasattr(cb, "written_to"))
    lines = writer.written_to.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    references = [json.loads(line)["summary"] for line in (ROOT / "datamodules/data/test.jsonl").open(encoding="utf-8")]
    assert [row["id"] for row in rows] == [str(i) for i in range(len(references))]
    assert [row["reference"] for row in rows] == references
    assert all(isinstance(row["summary"], str) for row in rows)


RECIPES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").glob("*.yaml"))
PRESETS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs" / "trainer").glob("*.yaml"))


@pytest.mark.parametrize("configs", [[r] for r in RECIPES] + [["configs/mlsum_flan_t5_small.yaml", p] for p in PRESETS])
def test_every_recipe_and_preset_parses_against_the_code(configs, capsys):
    args = ["fit"] + [arg for config in configs for arg in ("--config", str(ROOT / config))] + ["--print_config"]
    with pytest.raises(SystemExit) as exit_info:
        run_train(*args)
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["model_name_or_path"]


@pytest.mark.slow
def test_help_lists_documented_arguments():
    result = subprocess.run([sys.executable, "scripts/train.py", "fit", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "--data.text_column" in result.stdout and "column holding the article" in result.stdout
    assert "--model.generation.max_new_tokens" in result.stdout and "--export.dirpath" in result.stdout


def test_predicting_a_file_needs_no_training_data(tiny_t5, tmp_path, monkeypatch):
    """The hub recipe with --data.predict_file runs offline: MLSUM is not downloaded just to predict."""
    monkeypatch.chdir(ROOT)
    articles = tmp_path / "articles.txt"
    articles.write_text("Una noticia sobre el tiempo en Madrid.\nOtra noticia, de deportes.\nLa tercera.\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    run_train(
        "predict",
        "--config",
        str(ROOT / "configs" / "mlsum_flan_t5_small.yaml"),
        f"--model.model_name_or_path={tiny_t5}",
        "--trainer.precision=32-true",
        f"--data.predict_file={articles}",
        f"--predictions.output_path={output}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        "--ckpt_path=pretrained",
        "--model.generation.max_new_tokens=4",
    )
    assert [json.loads(line)["id"] for line in output.read_text(encoding="utf-8").splitlines()] == ["0", "1", "2"]


def test_export_script_rebuilds_the_fit_export_from_a_checkpoint(finished_run, tmp_path):
    from safetensors.torch import load_file

    from resumen.app.export import main as export_main

    run = finished_run["runs"] / "demo" / "version_0"
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    target = export_main([str(best), "--output", str(tmp_path / "model")])
    ours, fits = load_file(target / "model.safetensors"), load_file(run / "export" / "model.safetensors")
    assert ours.keys() == fits.keys() and all(ours[k].equal(fits[k]) for k in ours)
    assert (target / "tokenizer.json").is_file() and "val/rougeL" in (target / "README.md").read_text()


def test_export_script_refuses_bad_input(finished_run, tmp_path):
    from resumen.core.errors import ResumenError
    from resumen.app.export import main as export_main

    best = next((finished_run["runs"] / "demo" / "version_0" / "checkpoints").glob("best-*.ckpt"))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(ResumenError, match="holds 'keep.txt', which no export writes"):
        export_main([str(best), "--output", str(tmp_path / "taken"), "--overwrite"])
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    with pytest.raises(ResumenError, match="does not exist"):
        export_main([str(tmp_path / "missing.ckpt"), "--output", str(tmp_path / "out")])
    with pytest.raises(ResumenError, match="neither an FSDP sharded checkpoint"):
        export_main([str(tmp_path / "taken"), "--output", str(tmp_path / "out")])


def test_progress_bar_can_be_turned_off_for_log_only_runs(tiny_t5, tmp_path, monkeypatch):
    """--trainer.enable_progress_bar=false (SLURM logs) must not clash with the default rich progress bar."""
    monkeypatch.chdir(ROOT)
    cli = run_train(
        "validate",
        "--config",
        str(ROOT / "configs" / "demo.yaml"),
        f"--model.model_name_or_path={tiny_t5}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--ckpt_path=pretrained",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
    )
    assert cli.trainer.progress_bar_callback is None and "val/loss" in cli.trainer.callback_metrics


def test_the_module_owns_its_optimizer(capsys):
    from resumen.app.cli_support import main_guard
    from resumen.app.train import cli_main

    for option in ("--optimizer=SGD", "--lr_scheduler=StepLR"):
        with pytest.raises(SystemExit) as exit_info:
            main_guard(cli_main, ["fit", "--config", str(ROOT / "configs" / "demo.yaml"), option])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "the model owns its optimizer" in err and "--model.learning_rate" in err
    with pytest.raises(SystemExit):
        run_train("fit", "--help")
    assert "--optimizer" not in capsys.readouterr().out


def test_ckpt_path_help_describes_our_values(capsys):
    for subcommand, words in [("fit", ["'last'", "'auto'"]), ("test", ["'best'", "'pretrained'"])]:
        with pytest.raises(SystemExit):
            run_train(subcommand, "--help")
        help_text = " ".join(capsys.readouterr().out.split())
        assert all(word in help_text for word in words), subcommand


def test_test_with_ckpt_path_best_uses_the_newest_runs_best(finished_run, tiny_t5):
    from cli_helpers import demo_args, in_root

    tested = in_root(run_train, *demo_args("test", tiny_t5, finished_run["runs"], "--ckpt_path=best"))
    best = finished_run["fit"].trainer.checkpoint_callback.best_model_path
    assert tested.trainer.ckpt_path == best


def test_a_command_builds_only_its_own_subcommands_options(monkeypatch, capsys):
    """A full subcommand parser takes 0.4 s to build (a quarter of a fit's start-up on a slow CPU): `validate ...`
    builds validate's alone; `--help` with no subcommand, or options before it, still builds all four."""
    from lightning.pytorch.cli import LightningCLI

    from resumen.app.train import cli_main, running_subcommand

    built = []
    original = LightningCLI._prepare_subcommand_parser

    def counting(self, klass, subcommand, **kwargs):
        built.append(subcommand)
        return original(self, klass, subcommand, **kwargs)

    monkeypatch.setattr(LightningCLI, "_prepare_subcommand_parser", counting)
    with pytest.raises(SystemExit):
        cli_main(["validate", "--help"])
    assert built == ["validate"] and "--model.generation.max_new_tokens" in capsys.readouterr().out
    built.clear()
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    assert built == ["fit", "validate", "test", "predict"]
    printed = capsys.readouterr().out
    assert all(name in printed for name in ("fit", "validate", "test", "predict")), printed
    assert running_subcommand(["--config", "x.yaml", "fit"]) is None and running_subcommand(["test", "--ckpt_path=best"]) == "test"
