"""A run on disk: every path inside ``runs/<name>/version_N/``, how runs are found, claimed and locked.

One fit is one run directory. A new run's directory is claimed with ``mkdir`` (atomic: two fits started together
never share one) and locked for as long as the process trains in it (``flock``: released by the kernel however
the process ends, ``kill -9`` included), so a second ``fit --ckpt_path last`` of the same run is refused instead of
mixing two runs' checkpoints. ``validate``, ``test`` and ``predict`` of a fitted run write into its directory.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resumen.core.errors import ResumenError

_VERSION = re.compile(r"version_(\d+)")
DECISION_ENV = "RESUMEN_RUN"  # the deciding process's choice, inherited by the processes Lightning starts
# validate/test/predict of a run log in a directory of their own inside it (TensorBoard shows it as its own run;
# the fit's curves and metrics.csv stay the fit's)
COMMAND_LOG_DIRS = ("validate", "test", "predict")


@dataclass(frozen=True)
class RunLayout:
    """The files of one run (``runs/<name>/version_N``)."""

    directory: Path

    @classmethod
    def of_log_dir(cls, log_dir: Path) -> RunLayout:
        """The run a logger writes in: its directory, or the one above a command's own log directory."""
        log_dir = Path(log_dir)
        if log_dir.name in COMMAND_LOG_DIRS and _VERSION.fullmatch(log_dir.parent.name):
            return cls(log_dir.parent)
        return cls(log_dir)

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def version(self) -> int | str:
        match = _VERSION.fullmatch(self.directory.name)
        return int(match.group(1)) if match else self.directory.name

    config = property(lambda self: self.directory / "config.yaml")
    checkpoints = property(lambda self: self.directory / "checkpoints")
    last = property(lambda self: self.directory / "checkpoints" / "last.ckpt")
    export = property(lambda self: self.directory / "export")
    predictions = property(lambda self: self.directory / "predictions.jsonl")
    report = property(lambda self: self.directory / "report.json")
    test_results = property(lambda self: self.directory / "test_results.json")
    test_results_markdown = property(lambda self: self.directory / "test_results.md")
    learning_curve = property(lambda self: self.directory / "learning_curve.png")
    status_file = property(lambda self: self.directory / "status.json")
    lock_file = property(lambda self: self.directory / ".lock")

    def command_config(self, subcommand: Any) -> Path:
        """Where a command's resolved config goes: ``config.yaml`` for the fit, ``config.test.yaml`` and so on."""
        name = str(getattr(subcommand, "value", subcommand))  # Lightning hands over its TrainerFn enum
        return self.config if name == "fit" else self.directory / f"config.{name}.yaml"

    def best(self, checkpoint_dir: Path | None = None) -> Path | None:
        """The newest ``best-*.ckpt`` (file or sharded directory)."""
        candidates = sorted((checkpoint_dir or self.checkpoints).glob("best-*.ckpt"), key=os.path.getmtime)
        return candidates[-1] if candidates else None

    def read_config(self, warn: Callable[[str], Any] | None = None) -> dict[str, Any] | None:
        """The fit's saved config, or ``None`` (with a warning) when it is missing, empty or unreadable."""
        import yaml

        if not self.config.is_file():
            return None
        try:
            config = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            if warn:
                warn(f"skipping {self.directory}: its config.yaml cannot be read ({str(error).splitlines()[0]}).")
            return None
        if not isinstance(config, dict) or not config:
            if warn:
                warn(f"skipping {self.directory}: its config.yaml is empty or not a mapping.")
            return None
        return config

    def status(self) -> dict[str, Any]:
        """``running`` while a process holds the lock; else what the run last recorded (finished, preempted,
        failed), or ``killed`` when it recorded ``running`` and no process holds it any more."""
        from resumen.core.files import read_small_json

        recorded: dict[str, Any] = {}
        if self.status_file.exists() or self.status_file.is_symlink():
            try:
                recorded = read_small_json(self.status_file)
            except ResumenError as error:
                recorded = {"status": "unknown", "error": f"{error}: status unknown"}
            if not isinstance(recorded, dict) or not isinstance(recorded.get("status", ""), str):
                recorded = {"status": "unknown", "error": f"'{self.status_file}' is not a status record"}
        if is_locked(self):
            return {**recorded, "status": "running"}
        if recorded.get("status") == "running":
            return {**recorded, "status": "killed"}
        return recorded or {"status": "unknown"}

    def write_status(self, status: str, **details: Any) -> None:
        from resumen.core.files import atomic_file

        record = {"status": status, "pid": os.getpid(), "host": socket.gethostname(), "time": time.time(), **details}
        with atomic_file(self.status_file) as handle:
            json.dump(record, handle)


def version_of(directory: Path) -> int | None:
    match = _VERSION.fullmatch(directory.name)
    return int(match.group(1)) if match else None


def list_runs(root: Path) -> list[RunLayout]:
    """The ``version_N`` directories under ``root``, by version number (``version_10`` after ``version_9``)."""
    if not root.is_dir():
        return []
    numbered = sorted((version, d) for d in root.iterdir() if d.is_dir() and (version := version_of(d)) is not None)
    return [RunLayout(d) for _, d in numbered]


def claim_new_run(root: Path) -> RunLayout:
    """Create the next free ``version_N`` under ``root`` atomically (``mkdir`` fails if another process won)."""
    root.mkdir(parents=True, exist_ok=True)
    version = max((v for d in root.iterdir() if d.is_dir() and (v := version_of(d)) is not None), default=-1) + 1
    while True:
        directory = root / f"version_{version}"
        try:
            directory.mkdir()
        except FileExistsError:
            version += 1
            continue
        return RunLayout(directory)


# ---------------------------------------------------------------------------------------------------- locks
_HELD: dict[Path, int] = {}  # run directory -> the open descriptor holding its lock (for this process's life)


def lock_run(run: RunLayout, purpose: str) -> None:
    """Lock ``run`` for this process, or refuse in one line naming the process that holds it."""
    import fcntl

    directory = run.directory.resolve()
    if directory in _HELD:
        return
    descriptor = os.open(run.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(descriptor)
        raise ResumenError(
            f"{run.directory} is in use by {holder}: one process trains in a run at a time. Wait for it to finish "
            f"(or stop it), or start a new run without --ckpt_path; {purpose} was not started."
        ) from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    _HELD[directory] = descriptor


def unlock_run(run: RunLayout) -> None:
    descriptor = _HELD.pop(run.directory.resolve(), None)
    if descriptor is not None:
        os.close(descriptor)  # closing the descriptor releases the lock


def is_locked(run: RunLayout) -> bool:
    """Whether some process (this one included) holds ``run``'s lock."""
    import fcntl

    if run.directory.resolve() in _HELD:
        return True
    if not run.lock_file.is_file():
        return False
    descriptor = os.open(run.lock_file, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


# -------------------------------------------------------------------------------- one decision for all ranks
def deciding_process() -> bool:
    """Whether this process decides which run to use (rank 0), judged before the ranks can talk to each other."""
    for key in ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "LOCAL_RANK"):
        if os.environ.get(key, "0") not in ("", "0"):
            return False
    return os.environ.get("NODE_RANK", "0") in ("", "0")


def _job_key() -> str | None:
    """An id every rank of one job shares (torchrun, SLURM), to meet at a file when no environment is inherited."""
    if os.environ.get("TORCHELASTIC_RUN_ID"):
        return f"torchrun-{os.environ['TORCHELASTIC_RUN_ID']}"
    if os.environ.get("SLURM_JOB_ID"):
        return f"slurm-{os.environ['SLURM_JOB_ID']}-{os.environ.get('SLURM_STEP_ID', '0')}-{os.environ.get('SLURM_RESTART_COUNT', '0')}"
    return None


def share_decision(root: Path, decision: dict[str, Any]) -> None:
    """Rank 0: hand the decision to the ranks it starts (environment) and to those started beside it (a file)."""
    from resumen.core.files import atomic_file

    os.environ[DECISION_ENV] = json.dumps(decision)
    key = _job_key()
    if key:
        with atomic_file(root / ".rendezvous" / f"{key}.json") as handle:
            json.dump(decision, handle)


def received_decision(root: Path, timeout: float = 600.0) -> dict[str, Any] | None:
    """Another rank: rank 0's decision (``None`` when this process decides, or no way to receive it exists)."""
    if deciding_process():
        return None
    if os.environ.get(DECISION_ENV):
        return json.loads(os.environ[DECISION_ENV])
    key = _job_key()
    if key is None:
        return None
    path = root / ".rendezvous" / f"{key}.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        time.sleep(0.2)
    raise ResumenError(f"rank 0 did not say which run to use within {timeout:.0f} s (waited for {path}).")


def forget_decision() -> None:
    os.environ.pop(DECISION_ENV, None)


def epoch_number(index: int) -> int:
    """An epoch as people read it. Lightning counts epochs from 0; the console's "epoch 3/12", the run report, the
    checkpoint names, the learning curve, the model card and ``runs.py`` all count from 1: the first epoch is 1."""
    return index + 1
