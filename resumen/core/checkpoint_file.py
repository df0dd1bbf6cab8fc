"""One ``.ckpt`` file, checked and read safely: an intact torch zip, unpickling tensors and plain values only.

Apart from ``lightning_modules/checkpoints.py`` (which adds Lightning's checkpoint IO and sharded checkpoints) so that
a command that only reads a checkpoint's counters, such as ``scripts/runs.py``, starts without importing Lightning.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from resumen.core.errors import ResumenError, first_line

_CHECKED: set[tuple[str, int, int]] = set()  # (path, size, mtime) of files already checked by this process


def check_checkpoint_file(path: str | Path) -> None:
    """Refuse a file that is not an intact torch checkpoint (a text file, a truncated copy, a flipped bit).

    The CRC pass reads the whole file, so a file checked once (and not changed since) is not read again.
    """
    path = Path(path)
    if path.is_file():
        stamp = (str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns)
        if stamp in _CHECKED:
            return
    if not path.exists():
        raise ResumenError(f"checkpoint '{path}' does not exist: pass a .ckpt file or a sharded checkpoint directory.")
    if not path.is_file():
        raise ResumenError(f"checkpoint '{path}' is not a regular file.")
    if not zipfile.is_zipfile(path):
        raise ResumenError(
            f"'{path}' is not a torch checkpoint (no zip archive inside: a text file, or a copy cut short?): pass a .ckpt written by scripts/train.py."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # the CRC32 of every record: torch.load itself does not check them
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ResumenError(f"checkpoint '{path}' is damaged ({error}): use another checkpoint or copy it again.") from None
    if damaged:
        raise ResumenError(
            f"checkpoint '{path}' is corrupted (checksum mismatch in '{damaged}'): use another checkpoint (the best-*.ckpt, "
            "or an earlier last.ckpt) or copy it again."
        )
    _CHECKED.add(stamp)


def load_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """A ``.ckpt`` file's contents on the CPU: checked first, and unpickling tensors and plain values only."""
    check_checkpoint_file(path)
    return _load_weights_only(path, mmap=False)


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """A checked ``.ckpt`` file's settings, counters and history, reading no weights (tensors are memory-mapped)."""
    return _load_weights_only(path, mmap=True)


def _load_weights_only(path: str | Path, mmap: bool) -> dict[str, Any]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        raise ResumenError(
            f"checkpoint '{path}' holds objects other than tensors and plain values ({first_line(error, 200)}): refusing to "
            "unpickle it, since that could run code. Only load checkpoints written by scripts/train.py."
        ) from None
    except (RuntimeError, EOFError) as error:
        raise ResumenError(f"checkpoint '{path}' cannot be read ({first_line(error, 200)}): use another checkpoint.") from None
    if not isinstance(checkpoint, dict):
        raise ResumenError(f"'{path}' holds a {type(checkpoint).__name__}, not a training checkpoint.")
    return checkpoint
