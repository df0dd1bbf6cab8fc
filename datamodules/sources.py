"""Reading raw data: a hub dataset or local json/jsonl/csv/parquet/txt files, checked before any work."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from resumen.core.encoding import lone_surrogate
from resumen.core.errors import ResumenError, error_chain, first_line
from resumen.core.shipped import local_or_shipped

BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}
SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "validation"}


def normalise_data_files(data_files: dict[str, str | list[str]]) -> dict[str, list[str]]:
    """Map split aliases to their canonical names and make every value a list of paths; a path that does not exist
    from here but names a shipped file (the demo recipe's ``datamodules/data/demo/*.jsonl``) becomes that file."""
    normalised: dict[str, list[str]] = {}
    for split, paths in data_files.items():
        name = SPLIT_ALIASES.get(split, split)
        normalised.setdefault(name, []).extend([paths] if isinstance(paths, (str, os.PathLike)) else list(paths))
    return {split: [local_or_shipped(str(p)) for p in paths] for split, paths in normalised.items()}


def check_local_files(paths: list[str], allow_txt: bool = False) -> str:
    """Check that files exist, are regular files of one supported format with rows, and decode; return the builder.

    In constant memory and about disk speed (a 1 GB JSON-lines file: docs/performance.md): UTF-8 is decoded in
    blocks, JSON lines are parsed by pyarrow's streaming reader, and only a file that fails there is scanned line by
    line in Python, to name the line. Each file is read once per process (``_CHECKED``), and under DDP only on rank
    0: the other ranks start after it (Lightning's launcher) or fail with it (torchrun)."""
    builders = set()
    allowed = {s: b for s, b in BUILDERS.items() if allow_txt or b != "text"}
    for path in paths:
        file = Path(path).expanduser()
        suffix = file.suffix.lower()
        if file.is_dir():
            raise ResumenError(f"data file '{path}' is a directory: pass the files inside it (json, jsonl, csv or parquet).")
        if suffix not in allowed:
            raise ResumenError(f"data file '{path}' has an unsupported extension '{suffix or '(none)'}': use one of {', '.join(sorted(allowed))}.")
        if not file.exists():
            raise ResumenError(f"data file '{path}' does not exist: check the path (relative paths start from {os.getcwd()}).")
        if not file.is_file():
            kind = "a FIFO (named pipe)" if stat.S_ISFIFO(file.stat().st_mode) else "not a regular file"
            raise ResumenError(f"data file '{path}' is {kind}: write the data to a regular file first.")
        if file.stat().st_size == 0:
            raise ResumenError(f"data file '{path}' is empty: it needs at least one row.")
        identity = (str(file.resolve()), file.stat().st_size, file.stat().st_mtime_ns)
        if identity not in _CHECKED and _reads_files():
            _check_content(file, suffix)
            _CHECKED.add(identity)
        builders.add(allowed[suffix])
    if len(builders) > 1:
        raise ResumenError(f"data files {paths} mix formats {sorted(builders)}: use one format per split.")
    return builders.pop()


_CHECKED: set[tuple[str, int, int]] = set()  # (path, size, mtime) of the files this process has checked
BLOCK = 1 << 22  # 4 MB: how much of a file is decoded at once while checking it
ARROW_BLOCK = 1 << 20  # pyarrow's JSON block: 1 MB kept its memory near 90 MB and read 1 GB in 1.2 s (16 MB: 450 MB)
IN_ONE_PIECE = 1 << 26  # a JSON array up to 64 MB is parsed whole (its error names the line); larger, its frame only


# a high surrogate escape not followed by a low one, or a low one not after a high one (a pair is one character:
# emoji in files written with ASCII escapes, as json.dumps and pandas write by default)
LONE_SURROGATE_ESCAPE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def _reads_files() -> bool:
    """Rank 0 (or a single process) checks the files' content; under DDP the other ranks trust its check."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _check_content(file: Path, suffix: str) -> None:
    if suffix == ".parquet":
        _check_parquet(file)
        return
    lines, escapes = _check_utf8(file)
    if suffix in {".json", ".jsonl"}:
        _check_json(file, escapes)
    elif suffix == ".csv" and lines < 2:
        raise ResumenError(f"data file '{file}' is empty: it has a header but no rows." if lines else f"data file '{file}' is empty.")
    elif suffix == ".txt" and lines == 0:
        raise ResumenError(f"data file '{file}' is empty: it holds only blank lines.")


def _blocks(file: Path):
    with open(file, "rb") as handle:
        while block := handle.read(BLOCK):
            yield block


def _check_utf8(file: Path) -> tuple[int, bool]:
    """Decode the file in blocks; bytes that are not UTF-8 are named with their line (a UTF-8 BOM is accepted).
    Returns how many non-blank lines it has, counting up to 2 (what the CSV and text checks need), and whether a
    lone surrogate escape may appear (``\\ud800``: JSON readers accept it, the tokenizer would not)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    lines_before, non_blank, escapes, previous_tail = 0, 0, False, b""
    for block in _blocks(file):
        window = previous_tail + block
        escapes = escapes or (b"\\ud" in window.lower() and LONE_SURROGATE_ESCAPE.search(window) is not None)
        previous_tail = block[-12:]
        try:
            text = decoder.decode(block)
        except UnicodeDecodeError as error:
            start = max(min(error.start, len(block)), 0)
            line = lines_before + block[:start].count(b"\n") + 1
            raise ResumenError(
                f"data file '{file}' line {line} is not UTF-8 (byte 0x{error.object[error.start]:02x}): re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)."
            ) from None
        if non_blank < 2:
            non_blank += sum(1 for line in text.split("\n") if line.strip())
        lines_before += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ResumenError(f"data file '{file}' line {lines_before + 1} is not UTF-8 (it ends inside a character): re-save it as UTF-8.") from None
    return min(non_blank, 2), escapes


def _check_json(file: Path, escapes: bool) -> None:
    """Find a bad line or a cut-off array here: datasets reports them as pyarrow errors without a position."""
    with open(file, "rb") as handle:
        head = handle.read(1 << 16).removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head and file.stat().st_size <= 1 << 16:
        raise ResumenError(f"data file '{file}' is empty: it holds only blank lines.")
    if head[:1] == b"[":
        _check_json_array(file)
    elif escapes or not _json_lines_parse(file):
        _scan_json_lines(file)  # slow, but only for a file pyarrow refused (or with escapes to look at): it names the line


def _check_json_array(file: Path) -> None:
    if file.stat().st_size <= IN_ONE_PIECE:
        try:
            rows = json.loads(file.read_bytes().decode("utf-8-sig"))
        except json.JSONDecodeError as error:
            raise ResumenError(f"data file '{file}' is not valid JSON ({error.msg} at line {error.lineno}): is the array cut short?") from None
        if not rows:
            raise ResumenError(f"data file '{file}' is empty: its JSON array has no rows.")
        return
    with open(file, "rb") as handle:  # larger: its frame here; a fault inside is named by the reader (_load_files)
        handle.seek(max(file.stat().st_size - 4096, 0))
        tail = handle.read().rstrip()
    if not tail.endswith(b"]"):
        raise ResumenError(f"data file '{file}' is not valid JSON (it does not end with ']'): is the array cut short?")


def _json_lines_parse(file: Path) -> bool:
    """Whether pyarrow's streaming JSON reader (C++, in blocks) reads rows with fields from the whole file; False
    sends the file to the line-by-line scan, which says what is wrong (or passes a file only pyarrow refuses, such
    as one with a row longer than its block)."""
    import pyarrow.json as pj

    try:
        reader = pj.open_json(file, read_options=pj.ReadOptions(block_size=ARROW_BLOCK))
        rows = sum(batch.num_rows for batch in reader if batch.num_columns)
    except Exception:  # pyarrow's ArrowInvalid and friends: the scan below finds what it is
        return False
    return rows > 0


def _scan_json_lines(file: Path) -> None:
    """Every line parsed in Python, one at a time: the line that does not parse, holds a lone surrogate, or the
    absence of any row with fields. A file whose lines all parse passes (pyarrow is stricter than the JSON lines
    ``datasets`` accepts, e.g. a column whose type changes)."""
    rows, blank = 0, True
    with open(file, "rb") as handle:
        for number, raw in enumerate(handle, start=1):  # binary lines end at \n only (U+2028 may sit in a string)
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            if not line.strip():
                continue
            blank = False
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise ResumenError(f"data file '{file}' line {number} is not valid JSON ({error.msg}): fix or remove that line.") from None
            if "\\ud" in line.lower() and _has_lone_surrogate(value):
                raise ResumenError(
                    f"data file '{file}' line {number} holds a lone surrogate escape (such as \\ud800), which is no character: fix or remove that line."
                )
            if value != {}:
                rows += 1
    if blank:
        raise ResumenError(f"data file '{file}' is empty: it holds only blank lines.")
    if rows == 0:
        raise ResumenError(f"data file '{file}' is empty: it holds no rows with fields.")


def check_data_source(data: Any, predicting: bool) -> None:
    """The files a command will read, checked before any model loads (``data`` is the data module's config)."""
    if predicting:
        check_local_files([data.predict_file], allow_txt=True)
    elif data.data_files:
        for paths in normalise_data_files(dict(data.data_files)).values():
            check_local_files(paths)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return lone_surrogate(value) is not None
    if isinstance(value, dict):
        return any(_has_lone_surrogate(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _load_files(builder: str, split: str, paths: list[str], cache_dir: str | None):
    """``datasets.load_dataset`` on local files; what its readers find (a CSV quote never closed, text pyarrow cannot
    take) is one line naming the files and the reader's own reason, not a DatasetGenerationError without one."""
    import datasets

    try:
        return datasets.load_dataset(builder, data_files={split: paths}, split=split, cache_dir=cache_dir)
    except datasets.exceptions.DatasetGenerationError as error:
        cause = next((e for e in error_chain(error) if not isinstance(e, datasets.exceptions.DatasetGenerationError)), error)
        detail = first_line(cause)
        hint = (
            'a quote (") opened and never closed'
            if "EOF inside string" in detail
            else "a lone surrogate escape such as \\ud800, which is no character"
            if "surrogate" in detail
            else "a row the reader cannot parse"
        )
        raise ResumenError(f"data file(s) {', '.join(paths)} cannot be read ({type(cause).__name__}: {detail}); likely {hint}: fix the file.") from None


def _check_parquet(file: Path) -> None:
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(file).metadata.num_rows
    except Exception as error:  # pyarrow raises ArrowInvalid / OSError for anything that is not parquet
        raise ResumenError(f"data file '{file}' is not a readable parquet file ({str(error).splitlines()[0]}).") from None
    if rows == 0:
        raise ResumenError(f"data file '{file}' is empty: its parquet table has no rows.")


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
        from resumen.datamodules.progress import progress_bars_for

        files = normalise_data_files(data_files)
        builders = {split: check_local_files(paths) for split, paths in files.items()}
        parts = {}
        for split, paths in files.items():
            with progress_bars_for(size_bytes=sum(Path(p).expanduser().stat().st_size for p in paths)):
                parts[split] = _load_files(builders[split], split, paths, cache_dir)
        return datasets.DatasetDict(parts)
    if not dataset_name:
        raise ResumenError("no data source: set data.dataset_name (e.g. mteb/mlsum) or data.data_files.")
    try:
        return datasets.load_dataset(dataset_name, dataset_config, revision=dataset_revision, cache_dir=cache_dir)
    except Exception as error:  # datasets raises a dozen types here; all mean "cannot get this dataset"
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        files = "local files (train.py: --data.data_files.test=PATH, and so for each split; compare.py: --data-file PATH)"
        hint = (
            f"the hub is offline (HF_HUB_OFFLINE=1): go online, or download it once and pass {files}"
            if offline
            else f"check the name and config, or pass {files}"
        )
        raise ResumenError(f"cannot load dataset '{dataset_name}' (config {dataset_config}): {hint}. ({first_line(error)})") from error


def load_predict_file(path: str, cache_dir: str | None = None):
    """Articles to summarise: json/jsonl/csv/parquet with a text column, or .txt with one article per line."""

    from resumen.datamodules.progress import progress_bars_for

    builder = check_local_files([path], allow_txt=True)
    with progress_bars_for(size_bytes=Path(path).expanduser().stat().st_size):
        return _load_files(builder, "predict", [path], cache_dir)
