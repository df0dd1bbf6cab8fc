"""Which run directory and which checkpoint a command uses, decided once by rank 0 and shared with every rank.

``fit`` starts a new run (a ``version_N`` claimed atomically) or, with ``--ckpt_path last|auto``, resumes the newest
run of the same configuration into its own directory; either way the run is locked while it trains.
``validate``/``test``/``predict`` of a fitted run write into that run's directory; a model that was not fitted here
(``--ckpt_path pretrained``, a checkpoint from elsewhere) gets a new directory.

Two runs are of the same configuration when their resolved configs agree on everything except the settings in
:data:`FREE_ON_RESUME` (how long to train, on what hardware, how to log), and the checkpoint's own model and data
settings agree with this command's too (a hand-edited ``config.yaml`` does not hide a change).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resumen.core.errors import ResumenError
from resumen.core.runs import RunLayout, claim_new_run, list_runs, lock_run

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
    "model.generation",  # decoding changes no weight: test and predict may decode otherwise
    "model.val_num_beams",
    "model.test_bertscore_model",
    "model.test_bertscore_layer",
    "data.num_workers",
    "data.preprocessing_num_workers",
    "data.cache_dir",
    "last_checkpoint",
    "stop",
    "export",
    "predictions",
    "report",
)


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(config, dict):
        flat: dict[str, Any] = {}
        for key, value in config.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: config}


def _free(key: str) -> bool:
    return any(key == free or key.startswith(free + ".") for free in FREE_ON_RESUME)


def differences(saved: dict[str, Any], current: dict[str, Any], defaults: dict[str, Any] | None = None) -> list[tuple[str, Any, Any]]:
    """Settings that differ (dotted name, saved value, current value), ignoring those free on resume.

    A setting the saved run does not have (an option added since) counts as its default, ``defaults``: options are
    added with the default that keeps the earlier behaviour, so an older run resumes unless you change it.
    """
    saved_flat, current_flat, default_flat = flatten(saved), flatten(current), flatten(defaults or {})
    found = []
    for key in sorted(set(saved_flat) | set(current_flat)):
        if _free(key):
            continue
        before = saved_flat[key] if key in saved_flat else default_flat.get(key)
        if before != current_flat.get(key):
            found.append((key, before, current_flat.get(key)))
    return found


def checkpoint_differences(checkpoint: dict[str, Any], current: dict[str, Any], defaults: dict[str, Any] | None) -> list[tuple[str, Any, Any]]:
    """The checkpoint's own module and data settings against this command's (``model.*`` and ``data.*`` only)."""
    saved = {
        "model": {k: v for k, v in (checkpoint.get("hyper_parameters") or {}).items() if not str(k).startswith("_")},
        "data": {k: v for k, v in (checkpoint.get("datamodule_hyper_parameters") or {}).items() if not str(k).startswith("_")},
    }
    current_flat = {k: v for k, v in flatten(current).items() if k.startswith(("model.", "data."))}
    saved_flat = flatten(saved)
    found = []
    for key in sorted(set(saved_flat) & set(current_flat)):  # link targets (data.tokenizer_name) are not in the dump
        if not _free(key) and saved_flat[key] != current_flat[key]:
            found.append((key, saved_flat[key], current_flat[key]))
    for key in sorted(set(current_flat) - set(saved_flat)):  # options added since the checkpoint: their defaults
        if not _free(key) and key in flatten(defaults or {}) and flatten(defaults or {})[key] != current_flat[key]:
            found.append((key, flatten(defaults or {})[key], current_flat[key]))
    from resumen.lightning_modules.rng import saved_seed

    seed, now = saved_seed(checkpoint), current.get("seed_everything")
    if seed is not None and isinstance(now, int) and not isinstance(now, bool) and now != seed:  # a hand-edited config.yaml
        found.append(("seed_everything", seed, now))
    return found


def _shown(changed: list[tuple[str, Any, Any]]) -> str:
    shown = "; ".join(f"{key}: {saved!r} there, {now!r} now" for key, saved, now in changed[:3])
    return shown + (f" (and {len(changed) - 3} more)" if len(changed) > 3 else "")


def runs_with_last_checkpoint(root: Path, checkpoint_dirpath: str | None, only: str | None = None) -> list[tuple[RunLayout, Path, dict]]:
    """``(run, last.ckpt, saved config)`` of the runs under ``root`` that can be resumed, newest first. A run whose
    ``config.yaml`` cannot be read is skipped with a warning (one damaged old run does not block the others)."""
    from lightning.pytorch.utilities import rank_zero_warn

    runs = [RunLayout(root / only)] if only else list(reversed(list_runs(root)))
    found = []
    for run in runs:
        last = (Path(checkpoint_dirpath) if checkpoint_dirpath else run.checkpoints) / "last.ckpt"
        if not last.is_file():
            continue
        config = run.read_config(warn=rank_zero_warn)
        if config is not None:
            found.append((run, last, config))
    return found


def _configuration_mismatch(last: Path, config: dict, current: dict, defaults: dict | None) -> tuple[list, dict | None]:
    """What differs from the saved run (its config first, then its checkpoint's own settings), and the checkpoint's
    metadata when it was read (checked and opened once here)."""
    from resumen.core.checkpoint_file import read_checkpoint_metadata
    from resumen.lightning_modules.checkpoints import check_any_checkpoint

    changed = differences(config, current, defaults)
    if changed:
        return changed, None
    check_any_checkpoint(last)
    metadata = read_checkpoint_metadata(last)
    return checkpoint_differences(metadata, current, defaults), metadata


def choose_run(candidates: list[tuple[RunLayout, Path, dict]], current: dict, mode: str, root: Path, defaults: dict | None = None):
    """``last``: the newest run, refused when its configuration differs. ``auto``: the newest run of this
    configuration, or ``None`` (start a new run). Returns ``(run, last.ckpt, checkpoint metadata)``."""
    if mode == "auto":
        for run, last, config in candidates:
            changed, metadata = _configuration_mismatch(last, config, current, defaults)
            if not changed:
                return run, last, metadata
        return None
    if not candidates:
        raise ResumenError(
            f"--ckpt_path last: no run under '{root}' has a last.ckpt to resume: start a new run without --ckpt_path "
            "(or use --ckpt_path auto, which resumes when there is something to resume)."
        )
    run, last, config = candidates[0]
    changed, metadata = _configuration_mismatch(last, config, current, defaults)
    if changed:
        matching = next((r for r, _, c in candidates[1:] if not differences(c, current, defaults)), None)
        hint = f" {matching.directory} matches this configuration: pass --ckpt_path {matching.last}." if matching else ""
        where = "has another configuration" if metadata is None else "has a checkpoint of another configuration"
        raise ResumenError(
            f"--ckpt_path last: the newest run with a checkpoint, '{run.directory}', {where} ({_shown(changed)}), so "
            f"it was not resumed. Resume it with its own settings (--config {run.config}), or start a new run "
            f"without --ckpt_path.{hint}"
        )
    return run, last, metadata


def training_finished(checkpoint: dict[str, Any], max_epochs: int | None, max_steps: int) -> str | None:
    """Why the run saved in this checkpoint (its metadata) has nothing left to train, or ``None``."""
    epochs = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {}).get("processed")
    epochs = checkpoint.get("epoch", 0) + 1 if epochs is None else epochs
    steps = int(checkpoint.get("global_step", 0))
    if max_steps is not None and max_steps >= 0 and steps >= max_steps:
        return f"it already ran {steps} of max_steps={max_steps} steps"
    if max_epochs is not None and max_epochs >= 0 and epochs >= max_epochs:
        return f"it already trained {epochs} of max_epochs={max_epochs} epochs ({steps} steps)"
    return None


def fit_decision(trainer: Any, current: dict, checkpoint_dirpath: str | None, ckpt_path: str | None, defaults: dict | None) -> dict[str, Any]:
    """Rank 0's choice for ``fit``: ``{"version", "ckpt_path", "finished", "resumed"}`` (``version`` None: no logger).

    The run trained in is locked by this process; a new run's directory is claimed first.
    """
    from lightning.pytorch.utilities import rank_zero_info

    root = run_root(trainer)
    if ckpt_path in ("last", "auto"):
        if root is None:
            raise ResumenError(f"--ckpt_path {ckpt_path} needs a logger (runs/<name>/version_N) to find the run to resume.")
        from resumen.lightning_modules.run_files import fixed_version

        explicit = fixed_version(trainer)  # a version set in the config: only that run
        only = (explicit if isinstance(explicit, str) else f"version_{explicit}") if explicit is not None else None
        chosen = choose_run(runs_with_last_checkpoint(root, checkpoint_dirpath, only), current, ckpt_path, root, defaults)
        if chosen is not None:
            run, last, metadata = chosen
            lock_run(run, "this resume")
            rank_zero_info(f"Resuming {run.directory} from {last}")
            finished = training_finished(metadata, trainer.max_epochs, trainer.max_steps)
            return {"version": run.version, "ckpt_path": str(last), "finished": finished, "resumed": True}
        rank_zero_info(f"--ckpt_path auto: no run of this configuration under {root} to resume; starting a new run.")
        ckpt_path = None
    if root is None:
        return {"version": None, "ckpt_path": ckpt_path, "finished": None, "resumed": False}
    run = claim_new_run(root)
    lock_run(run, "this fit")
    return {"version": run.version, "ckpt_path": ckpt_path, "finished": None, "resumed": False, "new": True}


def evaluation_decision(trainer: Any, ckpt_path: str | None, model_name: str) -> dict[str, Any]:
    """Rank 0's choice for ``validate``/``test``/``predict``: the checkpoint (a given path, the newest run's best by
    default and for ``best``, none for ``pretrained``) and the run directory its outputs go to."""
    from lightning.pytorch.utilities import rank_zero_info

    root = run_root(trainer)
    run: RunLayout | None = None
    if ckpt_path == "pretrained":
        ckpt_path = None
    elif ckpt_path and ckpt_path != "best":
        run = run_of_checkpoint(Path(ckpt_path))
    else:
        best, run = find_best_checkpoint(trainer)
        if best is None:
            rank_zero_info(
                f"No fine-tuned checkpoint found under the run directory: using the model as loaded from {model_name}. Pass --ckpt_path to choose one."
            )
        ckpt_path = str(best) if best is not None else None
    if root is not None and (run is None or run.directory.parent.resolve() != root.resolve()):
        run = claim_new_run(root)  # not a run fitted here: its outputs get a directory of their own
    return {"version": run.version if run is not None else None, "ckpt_path": ckpt_path, "run": str(run.directory) if run else None}


def run_root(trainer: Any) -> Path | None:
    """``runs/<name>``: where the logger keeps its ``version_N`` directories (``None`` without a logger)."""
    logger = trainer.logger
    return Path(logger.root_dir) if logger is not None and logger.root_dir is not None else None


def run_of_checkpoint(path: Path) -> RunLayout | None:
    """The run a checkpoint belongs to (``.../version_N/checkpoints/x.ckpt``), if it is in one."""
    parent = path.resolve().parent
    if parent.name == "checkpoints" and (parent.parent / "config.yaml").is_file():
        return RunLayout(parent.parent)
    return None


def find_best_checkpoint(trainer: Any) -> tuple[Path | None, RunLayout | None]:
    """The newest best checkpoint: in the checkpoint dir if one is set, else in the newest run that has one."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.dirpath:
        best = RunLayout(Path(callback.dirpath).parent).best(Path(callback.dirpath))
        return best, run_of_checkpoint(best) if best else None
    root = run_root(trainer)
    if root is None:
        return None, None
    for run in reversed(list_runs(root)):
        best = run.best()
        if best is not None:
            return best, run
    return None, None
