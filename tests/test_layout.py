"""The house: data and model stand side by side on ``core/`` and meet only in ``scripts/``."""

import ast
import re

import pytest

from conftest import ROOT

# package -> packages it may import (besides itself and third-party libraries)
ALLOWED = {
    "core": set(),
    "datamodules": {"core"},
    "lightning_modules": {"core"},
    "scripts": {"core", "datamodules", "lightning_modules"},
    "evaluation": {"core"},  # the evaluate module: the shared scorer only
    "benchmarks": {"core", "datamodules", "lightning_modules", "scripts"},  # measures the product, is not part of it
}


def imported_modules(path):
    """Every absolute module name ``path`` imports, function-level imports included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def imported_packages(path):
    return (name.split(".")[0] for name in imported_modules(path))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_the_floor_below_it(package):
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in imported_packages(path)
        if name in ALLOWED and name != package and name not in ALLOWED[package]
    }
    assert not wrong, sorted(wrong)


def test_sys_path_is_edited_only_by_entry_points():
    editors = sorted(
        str(path.relative_to(ROOT)) for package in ALLOWED for path in (ROOT / package).rglob("*.py") if "sys.path.insert" in path.read_text(encoding="utf-8")
    )
    entry_points = [e for e in editors if 'if __name__ == "__main__"' in (ROOT / e).read_text(encoding="utf-8")]
    assert editors == entry_points and all(e.startswith(("scripts/", "benchmarks/")) for e in editors), editors


def test_the_module_and_its_callbacks_reach_the_data_module_and_the_scores_only_through_the_contract():
    """core/contract.py declares what they read from the data module and what callbacks read from the module; no
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
    from core.contract import SummarizationData, SummarizerResults, summarizer_results
    from datamodules.summarization import SummarizationDataModule
    from lightning_modules.seq2seq import Seq2SeqSummarizer

    assert isinstance(SummarizationDataModule(), SummarizationData)
    assert not isinstance(object(), SummarizationData)  # the check has teeth
    module = Seq2SeqSummarizer(tiny_t5)
    assert isinstance(module, SummarizerResults) and summarizer_results(module) is module
    assert summarizer_results(object()) is None  # another module: callbacks skip what it cannot give


LISTED_FOLDERS = ["core", "datamodules", "lightning_modules", "scripts", "scripts/serving", "benchmarks", "evaluation/spanish_rouge"]


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
            if name.split(".")[0] not in ALLOWED:
                libraries.add(name.split(".")[0])
                continue
            module = ROOT.joinpath(*name.split("."))
            queue += [p for p in (module.with_suffix(".py"), module / "__init__.py") if p.is_file()]
    return libraries


def test_the_runs_listing_never_imports_lightning():
    """scripts/runs.py reads a checkpoint's counters through core/checkpoint_file.py: Lightning's import was 4 of the
    listing's 6.9 s (2.9 s without it)."""
    reached = libraries_reached(ROOT / "scripts" / "runs.py")
    assert "torch" in reached and not {"lightning", "lightning_fabric", "pytorch_lightning"} & reached, sorted(reached)
