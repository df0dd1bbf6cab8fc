"""Writing outputs so that a crash, a kill or a full disk leaves the previous complete file or none, never half of one.

Temporary files live next to their target (same directory, so same filesystem): the final ``os.replace`` is then
an atomic rename, never a cross-device copy. Their names carry the host and process id, so the next run can
remove what a killed writer left behind (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

from core.errors import ResumenError, error_chain

_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)$")


def temporary_sibling(path: Path, kind: str = "tmp") -> Path:
    return path.with_name(f".{path.name}.{kind}-{_HOST}-{os.getpid()}")


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a power loss after ``os.replace`` could otherwise undo it)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms and filesystems cannot open directories
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# How libraries report a write the OS refused without raising an OSError: torch's zip writer wraps it in a
# RuntimeError (or only says where it stopped); safetensors raises SafetensorError ("I/O error: No space left ...").
_WRITE_FAILURE_TEXTS = ("PytorchStreamWriter", "file write failed", "unexpected pos", "I/O error")


def is_write_failure(error: BaseException) -> bool:
    return any(isinstance(e, OSError) or any(text in str(e) for text in _WRITE_FAILURE_TEXTS) for e in error_chain(error))


def write_failure(path: Path, error: BaseException) -> ResumenError:
    """One sentence for a failed write; a full disk is named as such."""
    full = any(
        getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(e)
        for e in error_chain(error)
    )
    reason = "the disk is full" if full else f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    return ResumenError(
        f"could not write '{path}' ({reason}); the previous file, if any, is intact and no partial file was left: "
        "free space or write elsewhere, then run again (fit: --ckpt_path last resumes)."
    )


@contextmanager
def atomic_file(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Write to a hidden sibling, flush and fsync it, then rename it over ``path`` (and fsync the directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        with open(tmp, mode, encoding=encoding if "b" not in mode else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except Exception as error:  # a refused write arrives as OSError, or wrapped by torch or safetensors
        if is_write_failure(error):
            raise write_failure(path, error) from error
        raise
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_directory(path: str | Path):
    """Yield a temporary sibling directory; on success it replaces ``path`` (the old one removed only then)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
        old = temporary_sibling(path, "old")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        fsync_directory(path.parent)
        shutil.rmtree(old, ignore_errors=True)
    except Exception as error:  # the same failures as atomic_file (save_pretrained writes through safetensors)
        if is_write_failure(error):
            raise write_failure(path, error) from error
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporaries that a killed writer on this host left in ``directory``; return what was removed.

    A temporary belongs to a dead writer when its host is this one and no process with its pid is running. A
    killed ``atomic_directory`` swap can leave only the ``.old`` copy: it is put back when the target is missing.
    """
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        match = _TEMPORARY.match(entry.name)
        if not match or match["host"] != _HOST or _is_running(int(match["pid"])):
            continue
        target = entry.with_name(match["name"])
        if match["kind"] == "old" and not target.exists():
            os.replace(entry, target)  # killed between the two renames: the previous output is still whole
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True
