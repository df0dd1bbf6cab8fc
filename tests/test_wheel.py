"""The wheel a user installs: one top-level name, `resumen`, and a fit that runs from it by recipe name in a folder
that holds the user's own `core/` and `scripts/` packages (which the 0.1 wheel's `from core.errors import ...` found)."""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out, clone = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("clone")
    # what a clone holds (the build writes build/ and *.egg-info beside the sources: a copy keeps the checkout clean)
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in files.stdout.splitlines():
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    # no build isolation: the build backend is the environment's setuptools (offline, and seconds instead of a download)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(clone)]
    subprocess.run(pip_wheel, check=True, capture_output=True, text=True)
    (found,) = out.glob("resumen-*.whl")
    return found


@pytest.fixture(scope="module")
def fresh_env(wheel, tmp_path_factory) -> Path:
    """A new virtualenv holding the wheel. Its dependencies (torch and the rest) come from this environment through a
    path file; this environment's editable resumen does not (an added path's own .pth files are never read)."""
    env = tmp_path_factory.mktemp("env") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    where = [env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    site = Path(subprocess.run(where, capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "--no-deps", "-q", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, text=True)
    return env


@pytest.fixture()
def users_project(tmp_path) -> Path:
    """A user's folder with packages named as resumen's used to be; importing any of them is an error."""
    for package in ("core", "scripts", "datamodules", "lightning_modules"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f"raise ImportError('the user\\'s own {package} package was imported')\n")
    (tmp_path / "core" / "errors.py").write_text("raise ImportError('the user\\'s core.errors was imported')\n")
    return tmp_path


def test_the_wheel_installs_one_top_level_name_and_carries_the_recipes_and_the_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"resumen"}, top_level
    for shipped in (
        "resumen/configs/demo.yaml",
        "resumen/configs/mlsum_flan_t5_small.yaml",
        "resumen/configs/trainer/ddp.yaml",
        "resumen/datamodules/data/demo/train.jsonl",
        "resumen/evaluation/spanish_rouge/spanish_rouge.py",
        "resumen/app/serving/page.html",
        "resumen/lightning_modules/seq2seq.py",
    ):
        assert shipped in names, shipped
    assert not any(name.startswith(("scripts/", "tests/", "resumen/scripts/")) for name in names)


def test_a_fit_runs_from_the_installed_wheel_by_recipe_name_beside_the_users_own_packages(fresh_env, users_project, tiny_t5):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    bin_dir = fresh_env / "bin"
    where = subprocess.run(
        [bin_dir / "python", "-c", "import resumen.lightning_modules.seq2seq as m, resumen.app.train; print(m.__file__)"],
        cwd=users_project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0 and where.stdout.startswith(str(fresh_env)), where.stdout + where.stderr

    help_text = subprocess.run([bin_dir / "resumen-train", "fit", "--help"], cwd=users_project, env=env, capture_output=True, text=True)
    assert help_text.returncode == 0 and "--model.model_name_or_path" in help_text.stdout, help_text.stderr[-2000:]

    listed = subprocess.run([bin_dir / "resumen-recipes", "list"], cwd=users_project, env=env, capture_output=True, text=True, check=True).stdout
    assert {"demo", "mlsum_flan_t5_small", "trainer/ddp"} <= {line.split()[0] for line in listed.splitlines()}, listed

    fit = subprocess.run(
        [
            bin_dir / "resumen-train",
            "fit",
            "--config",
            "demo",  # the shipped recipe; its data files are the shipped demo data
            f"--model.model_name_or_path={tiny_t5}",
            "--trainer.max_epochs=1",
            "--trainer.enable_progress_bar=false",
            "--data.max_train_samples=32",
            "--data.max_val_samples=8",
            "--model.val_generate_samples=4",
        ],
        cwd=users_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fit.returncode == 0, fit.stdout[-2000:] + fit.stderr[-3000:]
    assert (users_project / "runs" / "demo" / "version_0" / "export" / "config.json").is_file()
