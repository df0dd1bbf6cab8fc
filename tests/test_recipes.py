"""Recipes by name (`--config demo`), listed and copied out, and shipped files found from any folder."""

from pathlib import Path

import pytest

from conftest import ROOT
from resumen.app import recipes
from resumen.core.errors import ResumenError
from resumen.core.shipped import local_or_shipped, shipped_path


def test_every_shipped_recipe_is_listed_by_name_with_its_purpose():
    listed = recipes.recipes()
    assert sorted(listed) == ["demo", "mlsum_flan_t5_small", "mlsum_t5gemma_s", "trainer/ddp", "trainer/deepspeed", "trainer/fsdp"]
    assert all(path.read_text() == (ROOT / "configs" / f"{name}.yaml").read_text() for name, path in listed.items())
    assert recipes.describe(listed["demo"]).startswith("The embedded default")


def test_a_file_wins_over_a_recipe_of_the_same_name_and_a_name_resolves_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = str(recipes.recipes()["demo"])
    assert recipes.with_recipes(["fit", "--config", "demo", "-c", "trainer/ddp", "--config=configs/demo.yaml", "--trainer.max_epochs=1"]) == [
        "fit",
        "--config",
        shipped,
        "-c",
        str(recipes.recipes()["trainer/ddp"]),
        f"--config={shipped}",  # the repository path of a recipe, typed in another folder
        "--trainer.max_epochs=1",
    ]
    (tmp_path / "demo").write_text("trainer: {max_epochs: 1}\n")
    assert recipes.resolve("demo") == "demo"  # the user's file
    inline = "model: {learning_rate: 0.1}"
    assert recipes.resolve(inline) == inline  # an inline YAML string (what a followed run's settings are)


def test_an_unknown_config_is_one_line_naming_the_recipes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ResumenError, match=r"--config dem: no such file, and no shipped recipe .*demo, mlsum_flan_t5_small.*resumen-recipes list"):
        recipes.with_recipes(["fit", "--config", "dem"])


def test_copy_writes_an_editable_copy_and_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipes.main(["copy", "demo"])
    assert (tmp_path / "demo.yaml").read_text() == (ROOT / "configs" / "demo.yaml").read_text()
    assert "resumen-train fit --config demo.yaml" in capsys.readouterr().out
    (tmp_path / "demo.yaml").write_text("# mine\n")
    with pytest.raises(ResumenError, match="already exists.*--force"):
        recipes.main(["copy", "demo"])
    assert (tmp_path / "demo.yaml").read_text() == "# mine\n"
    recipes.main(["copy", "trainer/ddp", str(tmp_path / "mine")])  # into a new folder, named after the recipe
    assert (tmp_path / "mine").read_text().startswith("# Data-parallel")
    with pytest.raises(ResumenError, match="no shipped recipe named 'nope'"):
        recipes.main(["copy", "nope"])


def test_shipped_data_is_found_from_another_folder_and_a_local_path_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = "datamodules/data/demo/train.jsonl"
    assert Path(local_or_shipped(relative)).read_bytes() == (ROOT / relative).read_bytes()
    assert shipped_path("datamodules/data/demo/missing.jsonl") is None and shipped_path("/etc/passwd") is None
    assert local_or_shipped("elsewhere/train.jsonl") == "elsewhere/train.jsonl"  # the data check names it as typed
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_text('{"text": "a", "summary": "b"}\n')
    assert local_or_shipped(relative) == relative


def test_a_config_with_a_class_path_from_before_the_resumen_name_is_one_line_naming_the_new_one(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("trainer:\n  callbacks:\n    - class_path: lightning_modules.optuna_trial.OptunaTrial\n")
    new = "resumen.lightning_modules.optuna_trial.OptunaTrial"
    with pytest.raises(ResumenError, match=rf"names class_path lightning_modules.optuna_trial.OptunaTrial: since resumen 0.2.0 it is {new}"):
        recipes.with_recipes(["fit", "--config", str(old)])
    old.write_text("trainer:\n  callbacks:\n    - class_path: resumen.lightning_modules.optuna_trial.OptunaTrial\n")
    assert recipes.with_recipes(["fit", "--config", str(old)]) == ["fit", "--config", str(old)]
