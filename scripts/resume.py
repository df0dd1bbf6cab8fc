"""Which checkpoint a command uses: the run ``fit --ckpt_path last|auto`` resumes (the newest one of the same
configuration, never another), and the best checkpoint ``validate``/``test``/``predict`` evaluate.

A run is ``runs/<name>/version_N/`` with the ``config.yaml`` LightningCLI saved and ``checkpoints/last.ckpt``.
Two runs are of the same configuration when their resolved configs agree on everything except the settings in
:data:`FREE_ON_RESUME` (how long to train, on what hardware, how to log).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import ResumenError

# Dotted prefixes that may differ between a run and its resumption.
FREE_ON_RESUME = (
    "ckpt_path",
    "config",
    "trainer.max_epochs",
    "early_stopping",
    "trainer.max_steps",
    "trainer.max_time",
    "trainer.min_epochs",
    "trainer.min_steps",
    "trainer.accelerator",
    "trainer.precision",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.plugins",
    "trainer.logger",
    "trainer.callbacks",
    "trainer.log_every_n_steps",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.profiler",
    "trainer.default_root_dir",
    "model.compile",
    "data.num_workers",
    "data.preprocessing_num_workers",
    "data.cache_dir",
    "last_checkpoint",
    "export",
    "predictions",
    "report",
)


@dataclass
class Run:
    directory: Path
    version: int | str
    last: Path
    config: dict[str, Any]


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(config, dict):
        flat: dict[str, Any] = {}
        for key, value in config.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: config}


def differences(saved: dict[str, Any], current: dict[str, Any], defaults: dict[str, Any] | None = None) -> list[tuple[str, Any, Any]]:
    """Settings that differ (dotted name, saved value, current value), ignoring those free on resume.

    A setting the saved run does not have (an option added since) counts as its default, ``defaults``: options are
    added with the default that keeps the earlier behaviour, so an older run resumes unless you change it.
    """
    saved_flat, current_flat, default_flat = flatten(saved), flatten(current), flatten(defaults or {})
    found = []
    for key in sorted(set(saved_flat) | set(current_flat)):
        if any(key == free or key.startswith(free + ".") for free in FREE_ON_RESUME):
            continue
        before = saved_flat[key] if key in saved_flat else default_flat.get(key)
        if before != current_flat.get(key):
            found.append((key, before, current_flat.get(key)))
    return found


def _version_key(directory: Path) -> tuple[int, float]:
    match = re.fullmatch(r"version_(\d+)", directory.name)
    return (int(match.group(1)) if match else -1, directory.stat().st_mtime)


def runs_with_checkpoint(root: Path, checkpoint_dirpath: str | None, only: str | None = None) -> list[Run]:
    """Runs under ``root`` that have a saved config and a ``last.ckpt``, newest first."""
    if not root.is_dir():
        return []
    directories = [root / only] if only else [d for d in root.iterdir() if d.is_dir() and d.name.startswith("version_")]
    runs = []
    for directory in sorted(directories, key=_version_key, reverse=True):
        last = (Path(checkpoint_dirpath) if checkpoint_dirpath else directory / "checkpoints") / "last.ckpt"
        config_file = directory / "config.yaml"
        if last.is_file() and config_file.is_file():
            version: int | str = int(directory.name[8:]) if re.fullmatch(r"version_\d+", directory.name) else directory.name
            config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
            runs.append(Run(directory, version, last, config))
    return runs


def choose_run(runs: list[Run], current: dict[str, Any], mode: str, root: Path, defaults: dict[str, Any] | None = None) -> Run | None:
    """``last``: the newest run, refused when its configuration differs. ``auto``: the newest run of this
    configuration, or ``None`` (start a new run). ``defaults``: the values of options a saved run predates."""
    if mode == "auto":
        return next((run for run in runs if not differences(run.config, current, defaults)), None)
    if not runs:
        raise ResumenError(
            f"--ckpt_path last: no run under '{root}' has a last.ckpt to resume: start a new run without --ckpt_path "
            "(or use --ckpt_path auto, which resumes when there is something to resume)."
        )
    newest = runs[0]
    changed = differences(newest.config, current, defaults)
    if changed:
        shown = "; ".join(f"{key}: {saved!r} there, {now!r} now" for key, saved, now in changed[:3])
        more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
        matching = next((run for run in runs if not differences(run.config, current, defaults)), None)
        hint = f" {matching.directory} matches this configuration: pass --ckpt_path {matching.last}." if matching else ""
        raise ResumenError(
            f"--ckpt_path last: the newest run with a checkpoint, '{newest.directory}', has another configuration "
            f"({shown}{more}), so it was not resumed. Resume it with its own settings (--config "
            f"{newest.directory / 'config.yaml'}), or start a new run without --ckpt_path.{hint}"
        )
    return newest


def training_finished(checkpoint_path: Path, max_epochs: int | None, max_steps: int) -> str | None:
    """Why the run saved in this checkpoint has nothing left to train, or ``None``."""
    import torch

    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True, mmap=True)
    epochs = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {}).get("processed")
    epochs = checkpoint.get("epoch", 0) + 1 if epochs is None else epochs
    steps = int(checkpoint.get("global_step", 0))
    if max_steps is not None and max_steps >= 0 and steps >= max_steps:
        return f"it already ran {steps} of max_steps={max_steps} steps"
    if max_epochs is not None and max_epochs >= 0 and epochs >= max_epochs:
        return f"it already trained {epochs} of max_epochs={max_epochs} epochs ({steps} steps)"
    return None


def resume_checkpoint(
    trainer: Any, current: dict[str, Any], checkpoint_dirpath: str | None, mode: str, defaults: dict[str, Any] | None = None,
) -> tuple[str | None, str | None]:
    """``(last.ckpt to resume or None for a new run, why the run is already finished or None)``.

    The trainer's logger is pointed at the resumed run's directory, so its logs, checkpoints and export continue there.
    """
    from lightning.pytorch.utilities import rank_zero_info

    from lightning_modules.checkpoints import check_any_checkpoint

    logger = trainer.logger
    if logger is None or logger.root_dir is None:
        raise ResumenError(f"--ckpt_path {mode} needs a logger (runs/<name>/version_N) to find the run to resume.")
    root = Path(logger.root_dir)
    explicit = getattr(logger, "_version", None)  # a version set in the config: only that run
    only = (explicit if isinstance(explicit, str) else f"version_{explicit}") if explicit is not None else None
    run = choose_run(runs_with_checkpoint(root, checkpoint_dirpath, only), current, mode, root, defaults)
    if run is None:
        rank_zero_info(f"--ckpt_path auto: no run of this configuration under {root} to resume; starting a new run.")
        return None, None
    check_any_checkpoint(run.last)
    from lightning.pytorch.loggers import CSVLogger

    from lightning_modules.run_files import keep_csv_history

    for each in trainer.loggers:  # loggers have not made their directories yet: make them the resumed run's
        if hasattr(each, "_version") and each.root_dir == logger.root_dir:
            each._version = run.version
        if isinstance(each, CSVLogger):
            keep_csv_history(each)
    for callback in trainer.callbacks:
        if hasattr(callback, "resuming"):  # the export of the run being resumed may be replaced at its end
            callback.resuming = True
    rank_zero_info(f"Resuming {run.directory} from {run.last}")
    return str(run.last), training_finished(run.last, trainer.max_epochs, trainer.max_steps)


def evaluation_checkpoint(trainer: Any, ckpt_path: str | None, model_name: str) -> str | None:
    """The checkpoint ``validate``/``test``/``predict`` load: a given path (checked when the CLI parsed it), the
    newest run's best (default and ``best``), or none for ``pretrained`` (the model as loaded)."""
    from lightning.pytorch.utilities import rank_zero_info

    if ckpt_path == "pretrained":
        rank_zero_info(f"Using the model as loaded from {model_name} (no checkpoint).")
        return None
    if ckpt_path and ckpt_path != "best":
        return ckpt_path
    best = find_run_checkpoint(trainer, "best-*.ckpt")
    if best is None:
        rank_zero_info(
            f"No fine-tuned checkpoint found under the run directory: using the model as loaded from {model_name}. "
            "Pass --ckpt_path to choose one."
        )
        return None
    rank_zero_info(f"Using the best checkpoint {best} (pass --ckpt_path to choose another).")
    return str(best)


def find_run_checkpoint(trainer: Any, pattern: str) -> Path | None:
    """The newest checkpoint matching ``pattern`` (the checkpoint dir if set, else the logger's newest run having one)."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.dirpath:
        candidates = sorted(Path(callback.dirpath).glob(pattern), key=os.path.getmtime)
        return candidates[-1] if candidates else None
    if trainer.logger is None or trainer.logger.root_dir is None:
        return None
    root = Path(trainer.logger.root_dir)

    def version(path: Path) -> int:
        match = re.search(r"version_(\d+)", str(path))
        return int(match.group(1)) if match else -1

    candidates = sorted(root.glob(f"version_*/checkpoints/{pattern}"), key=lambda p: (version(p), os.path.getmtime(p)))
    return candidates[-1] if candidates else None
