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
from typing import Any

from resumen.core.errors import ResumenError, error_chain

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
    full = any(getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(e) for e in error_chain(error))
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


def atomic_files(contents: dict[Path, str]) -> None:
    """Write several text files as one change: every new file is written and synced beside its target first, then
    each is renamed into place; if a rename fails, those already renamed get their previous content back. So the
    files change together or not at all (a model's generation settings and the card that describes them)."""
    previous = {path: path.read_bytes() if path.is_file() else None for path in contents}
    written: dict[Path, Path] = {}
    replaced: list[Path] = []
    try:
        for path, text in contents.items():
            tmp = temporary_sibling(path)
            written[path] = tmp
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        for path, tmp in written.items():
            os.replace(tmp, path)
            replaced.append(path)
    except Exception as error:
        for path in replaced:  # put back what was there
            if previous[path] is None:
                path.unlink(missing_ok=True)
            else:
                with atomic_file(path, "wb") as handle:
                    handle.write(previous[path])
        if is_write_failure(error):
            raise write_failure(next(p for p in contents if p not in replaced), error) from error
        raise
    finally:
        for tmp in written.values():
            tmp.unlink(missing_ok=True)
    for folder in {path.parent for path in contents}:
        fsync_directory(folder)


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
        mode = 0o666 & ~_umask()
        for file in tmp.rglob("*"):
            if file.is_file() and not file.is_symlink():
                # the mode of any file this user creates: libraries that write through a private temporary file
                # (transformers' model.safetensors) leave 0600, which a server running as another user cannot read
                os.chmod(file, mode)
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


def _umask() -> int:
    current = os.umask(0o022)  # the only portable way to read it is to set it
    os.umask(current)
    return current


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


def check_output_file(path: str | Path, option: str) -> None:
    """An output file the command will write, checked before any work: not a directory, and in a folder that can be
    written (the nearest existing one, since missing folders are created)."""
    path = Path(path)
    if path.is_dir():
        raise ResumenError(f"{option} '{path}' is a directory: pass a file path (e.g. {path / 'results.jsonl'}).")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ResumenError(f"{option} '{path}': '{folder}' cannot be written (read-only or not yours): write elsewhere.")


SMALL_FILE_LIMIT = 64 << 20  # a run's JSON records are kilobytes; anything past this is not one of them


def read_small_json(path: str | Path, limit: int = SMALL_FILE_LIMIT) -> Any:
    """A small JSON record (``status.json``, ``report.json``, ...), or a ResumenError naming the file: only a regular
    file is opened (a FIFO would block for ever, a link to /dev/zero grow without bound), at most ``limit`` bytes."""
    import json
    import stat

    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ResumenError(f"'{path}' is not a regular file")
        if info.st_size > limit:
            raise ResumenError(f"'{path}' is {info.st_size:,} bytes, more than a record of this kind holds")
        with open(path, "rb") as handle:
            return json.loads(handle.read(limit + 1).decode("utf-8"))
    except ResumenError:
        raise
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ResumenError(f"'{path}' cannot be read as JSON ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None


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
