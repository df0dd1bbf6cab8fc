"""The house: data and model stand side by side on ``resumen/core/`` and meet only in ``scripts/``."""

import ast
import re
from pathlib import Path

import pytest

from conftest import ROOT

# package -> the folder that holds it (pyproject.toml's package-dir maps the design card's folders into resumen)
FOLDERS = {
    "resumen.core": "resumen/core",
    "resumen.datamodules": "datamodules",
    "resumen.lightning_modules": "lightning_modules",
    "resumen.app": "resumen/app",
    "resumen.evaluation": "resumen/evaluation",
    "scripts": "scripts",
    "benchmarks": "benchmarks",
}
# package -> packages it may import (besides itself, the bare ``resumen`` and third-party libraries)
ALLOWED = {
    "resumen.core": set(),
    "resumen.datamodules": {"resumen.core"},
    "resumen.lightning_modules": {"resumen.core"},
    "resumen.app": {"resumen.core", "resumen.datamodules", "resumen.lightning_modules"},
    "resumen.evaluation": {"resumen.core"},  # the evaluate module: the shared scorer only
    "scripts": {"resumen.app"},  # doors, nothing else
    "benchmarks": {"resumen.core", "resumen.datamodules", "resumen.lightning_modules", "resumen.app"},  # measures the product
}
OLD_NAMES = {"core", "datamodules", "lightning_modules", "evaluation"}  # before 0.2.0: top-level packages of their own


def package_of(name):
    """The package in ALLOWED that module ``name`` belongs to; None for a third-party one."""
    return next((package for package in sorted(ALLOWED, key=len, reverse=True) if name == package or name.startswith(package + ".")), None)


def module_file(name):
    """The file of project module ``name``, or None."""
    package = package_of(name)
    if package is None:
        return None
    base = ROOT / FOLDERS[package] / Path(*name[len(package) + 1 :].split(".")) if name != package else ROOT / FOLDERS[package]
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def imported_modules(path):
    """Every absolute module name ``path`` imports, function-level imports included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_the_floor_below_it(package):
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / FOLDERS[package]).rglob("*.py")
        for name in imported_modules(path)
        if package_of(name) not in (None, package, *ALLOWED[package])
    }
    assert not wrong, sorted(wrong)


def test_every_module_is_imported_under_its_resumen_name_only():
    """No ``import core...``/``lightning_modules...``: installed next to a user's own ``core`` package, such an
    import would find the user's. Tests included: pytest imports each module under one name."""
    python_files = [
        p for folder in ("resumen", "lightning_modules", "datamodules", "scripts", "benchmarks", "tests", "configs") for p in (ROOT / folder).rglob("*.py")
    ]
    wrong = sorted(
        {f"{p.relative_to(ROOT)} imports {name}" for p in python_files for name in imported_modules(p) if name.split(".")[0] in OLD_NAMES | {"scripts"}}
    )
    assert python_files and not wrong, wrong


def test_scripts_are_doors_and_nothing_edits_sys_path():
    doors = sorted((ROOT / "scripts").glob("*.py"))
    for door in doors:
        code = [line for line in door.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith('"""')]
        assert code == [f"from resumen.app.{door.stem} import cli", 'if __name__ == "__main__":', "    cli()"], door.name
    editors = [
        str(p.relative_to(ROOT))
        for folder in set(FOLDERS.values())
        for p in (ROOT / folder).rglob("*.py")
        if "sys.path.insert" in p.read_text(encoding="utf-8")
    ]
    # the benchmarks are run as files from a checkout and import their own package, not the product
    assert doors and all(e.startswith("benchmarks/") for e in editors), editors


def test_the_module_and_its_callbacks_reach_the_data_module_and_the_scores_only_through_the_contract():
    """resumen/core/contract.py declares what they read from the data module and what callbacks read from the module; no
    trainer.datamodule digging, no getattr/hasattr probing of either."""
    digging = re.compile(r"\.datamodule\b|getattr\([^)]*[\"']datamodule[\"']|hasattr\(datamodule|(get|has)attr\(pl_module\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "lightning_modules").glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if digging.search(line)
    ]
    assert not offenders, offenders


def test_the_data_module_and_the_module_keep_the_contract(tiny_t5):
    from resumen.core.contract import SummarizationData, SummarizerResults, summarizer_results
    from resumen.datamodules.summarization import SummarizationDataModule
    from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer

    assert isinstance(SummarizationDataModule(), SummarizationData)
    assert not isinstance(object(), SummarizationData)  # the check has teeth
    module = Seq2SeqSummarizer(tiny_t5)
    assert isinstance(module, SummarizerResults) and summarizer_results(module) is module
    assert summarizer_results(object()) is None  # another module: callbacks skip what it cannot give


LISTED_FOLDERS = [
    "resumen",
    "resumen/core",
    "resumen/app",
    "resumen/app/serving",
    "datamodules",
    "lightning_modules",
    "benchmarks",
    "resumen/evaluation/spanish_rouge",
]


def _layout_page():
    """docs/layout.md as {folder: set of file names listed under its heading}."""
    listed, folder = {}, None
    for line in (ROOT / "docs" / "layout.md").read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## `([\w/]+)/`", line)
        if heading:
            folder = heading.group(1)
            listed[folder] = set()
        elif folder and line.startswith("| `"):
            listed[folder].update(re.findall(r"`([\w/.]+\.(?:py|yaml|html))`", line.split("|")[1]))
    return listed


def test_layout_page_lists_every_module_and_only_modules_that_exist():
    listed = _layout_page()
    missing = [f"{folder}/{name}" for folder, names in listed.items() for name in names if not (ROOT / folder / name).exists()]
    unlisted = [
        str(path.relative_to(ROOT))
        for folder in LISTED_FOLDERS
        for path in sorted((ROOT / folder).glob("*.py"))
        if path.name != "__init__.py" and path.name not in listed.get(folder, set())
    ]
    assert listed and not missing and not unlisted, {"named but gone": missing, "not on docs/layout.md": unlisted}


def test_readme_layout_names_only_files_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    missing = []
    for line in layout.splitlines():
        folder = re.match(r"^([\w]+)/", line)
        if not folder:
            continue
        if not (ROOT / folder.group(1)).is_dir():
            missing.append(folder.group(1))
        for name in re.findall(r"([\w/{},]+\.(?:py|yaml))", line):
            for expanded in _expand(name):
                if not any(c.exists() for c in (ROOT / folder.group(1) / expanded, ROOT / expanded)):
                    missing.append(f"{folder.group(1)}/{expanded}")
    assert not missing, missing


def _expand(name):
    braces = re.search(r"\{([^}]*)\}", name)
    if not braces:
        return [name]
    return [name[: braces.start()] + option + name[braces.end() :] for option in braces.group(1).split(",")]


def libraries_reached(entry):
    """Third-party top-level packages that ``entry`` imports, directly or through the project modules it imports
    (every import statement, function-level ones too: what the command can reach, not only what it starts with)."""
    seen, libraries, queue = set(), set(), [entry]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            if package_of(name) is None:
                if name.split(".")[0] != "resumen":
                    libraries.add(name.split(".")[0])
                continue
            file = module_file(name)
            queue += [file] if file is not None else []
    return libraries


def test_the_runs_listing_never_imports_lightning():
    """scripts/runs.py reads a checkpoint's counters through resumen/core/checkpoint_file.py: Lightning's import was 4 of the
    listing's 6.9 s (2.9 s without it)."""
    reached = libraries_reached(ROOT / "resumen" / "app" / "runs.py")
    assert "torch" in reached and not {"lightning", "lightning_fabric", "pytorch_lightning"} & reached, sorted(reached)
