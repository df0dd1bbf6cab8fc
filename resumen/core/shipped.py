"""Files that ship inside the package: the recipes (``configs/``), the demo data (``datamodules/data/``) and the
Spanish ROUGE ``evaluate`` module. Found the same way from a checkout (an editable install) and from a wheel."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# a repository folder -> the package that carries it (pyproject.toml's package-dir says the same)
SHIPPED_FOLDERS = {"configs": "resumen.configs", "datamodules": "resumen.datamodules"}


def shipped_path(relative: str | Path) -> Path | None:
    """Where a repository-relative path, as the recipes write it (``datamodules/data/demo/train.jsonl``), lies in
    the installed package; None when it names no shipped file."""
    path = Path(relative)
    if path.is_absolute() or len(path.parts) < 2 or path.parts[0] not in SHIPPED_FOLDERS:
        return None
    found = Path(str(files(SHIPPED_FOLDERS[path.parts[0]]).joinpath(*path.parts[1:])))
    return found if found.is_file() else None


def local_or_shipped(path: str) -> str:
    """``path`` itself when it exists from here (a file path always wins), else the shipped file it names, if any."""
    if Path(path).expanduser().exists():
        return path
    shipped = shipped_path(path)
    return str(shipped) if shipped is not None else path


def spanish_rouge_path() -> str:
    """The Spanish ROUGE ``evaluate`` module's directory: ``evaluate.load(spanish_rouge_path())`` works offline."""
    return str(files("resumen") / "evaluation" / "spanish_rouge")
