"""Reading raw data: a hub dataset or local json/jsonl/csv/parquet/txt files, checked before any work."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lightning_modules.errors import ResumenError

BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}
SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "validation"}


def normalise_data_files(data_files: dict[str, str | list[str]]) -> dict[str, list[str]]:
    """Map split aliases to their canonical names and make every value a list of paths."""
    normalised: dict[str, list[str]] = {}
    for split, paths in data_files.items():
        name = SPLIT_ALIASES.get(split, split)
        normalised.setdefault(name, []).extend([paths] if isinstance(paths, (str, os.PathLike)) else list(paths))
    return {split: [str(p) for p in paths] for split, paths in normalised.items()}


def check_local_files(paths: list[str], allow_txt: bool = False) -> str:
    """Check that files exist, share one supported format, are not empty and (JSONL) parse; return the builder."""
    builders = set()
    for path in paths:
        file = Path(path).expanduser()
        suffix = file.suffix.lower()
        allowed = {s: b for s, b in BUILDERS.items() if allow_txt or b != "text"}
        if suffix not in allowed:
            raise ResumenError(
                f"data file '{path}' has an unsupported extension '{suffix or '(none)'}': use one of "
                f"{', '.join(sorted(allowed))}."
            )
        if not file.is_file():
            raise ResumenError(f"data file '{path}' does not exist: check the path (relative paths start from {os.getcwd()}).")
        if file.stat().st_size == 0:
            raise ResumenError(f"data file '{path}' is empty: it needs at least one row.")
        if suffix in {".json", ".jsonl"}:
            _check_json_lines(file)
        builders.add(allowed[suffix])
    if len(builders) > 1:
        raise ResumenError(f"data files {paths} mix formats {sorted(builders)}: use one format per split.")
    return builders.pop()


def _check_json_lines(file: Path) -> None:
    """datasets reports a bad JSONL line as a pyarrow error without the line number; find it first."""
    with file.open(encoding="utf-8") as handle:
        first = handle.read(1)
        while first and first.isspace():
            first = handle.read(1)
        if first == "[":  # a JSON array, not JSON lines: datasets parses it whole
            return
        handle.seek(0)
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as error:
                    raise ResumenError(
                        f"data file '{file}' line {number} is not valid JSON ({error.msg}): fix or remove that line."
                    ) from None


def load_raw_dataset(
    dataset_name: str | None,
    dataset_config: str | None,
    dataset_revision: str | None,
    data_files: dict[str, str | list[str]] | None,
    cache_dir: str | None = None,
):
    """Load a ``DatasetDict`` from local files (when given) or the hub."""
    import datasets

    if data_files:
        files = normalise_data_files(data_files)
        builders = {split: check_local_files(paths) for split, paths in files.items()}
        parts = {}
        for split, paths in files.items():
            parts[split] = datasets.load_dataset(builders[split], data_files={split: paths}, split=split, cache_dir=cache_dir)
        return datasets.DatasetDict(parts)
    if not dataset_name:
        raise ResumenError("no data source: set data.dataset_name (e.g. mteb/mlsum) or data.data_files.")
    try:
        return datasets.load_dataset(dataset_name, dataset_config, revision=dataset_revision, cache_dir=cache_dir)
    except Exception as error:  # datasets raises a dozen types here; all mean "cannot get this dataset"
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        hint = (
            "the hub is offline (HF_HUB_OFFLINE=1): go online, or download it once and pass local files with "
            "--data.data_files"
            if offline
            else "check the name and config, or pass local files with --data.data_files"
        )
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ResumenError(f"cannot load dataset '{dataset_name}' (config {dataset_config}): {hint}. ({first_line})") from error


def load_predict_file(path: str, cache_dir: str | None = None):
    """Articles to summarise: json/jsonl/csv/parquet with a text column, or .txt with one article per line."""
    import datasets

    builder = check_local_files([path], allow_txt=True)
    return datasets.load_dataset(builder, data_files={"predict": [path]}, split="predict", cache_dir=cache_dir)
