"""Every use of a Lightning (or torch, or LitServe) internal, in one place, each with a test (tests/test_compat.py).

Lightning has no public API for these; when an upgrade moves one, its test fails first, naming it. The version
tested is pinned in pyproject.toml (``lightning>=2.6,<2.7``). The functions below are the internals resumen reads or
sets; ``OVERRIDDEN`` lists the private methods it overrides in subclasses (the override stays in its class, the test
checks the method still exists with the arguments the override expects).
"""

from __future__ import annotations

from typing import Any

import lightning as L

VAL_PROGRESS = "epoch_loop.val_loop.batch_progress"  # where a checkpoint keeps the fit's validation position

# (class, private method, the arguments the override is called with): where resumen subclasses an internal.
OVERRIDDEN = (
    # BestCheckpoint: ties on the monitored metric go to the lower loss (lightning_modules/best_checkpoint.py)
    ("lightning.pytorch.callbacks.ModelCheckpoint", "_save_monitor_checkpoint", ("self", "trainer", "monitor_candidates")),
    ("lightning.pytorch.callbacks.ModelCheckpoint", "_update_best_and_save", ("self", "current", "trainer", "monitor_candidates")),
    # ResumenCLI: a checkpoint's hyper-parameters never choose code; our --ckpt_path help (scripts/train.py)
    ("lightning.pytorch.cli.LightningCLI", "_parse_ckpt_path", ("self",)),
    ("lightning.pytorch.cli.LightningCLI", "_prepare_subcommand_parser", ("self", "klass", "subcommand")),
    ("lightning.pytorch.cli.LightningCLI", "_parser", ("self", "subcommand")),
)
# Torch internals the safe sharded-checkpoint loader builds on (lightning_modules/checkpoints.py): it replaces the
# pickle-based parts of torch.distributed.checkpoint with weights-only ones.
TORCH_INTERNALS = (
    ("torch.distributed.checkpoint.state_dict_loader", "_load_state_dict"),
    ("torch.distributed.checkpoint.default_planner", "_EmptyStateDictLoadPlanner"),
    ("torch.distributed.checkpoint._traverse", "set_element"),
    ("torch.distributed.checkpoint.filesystem", "FileSystemReader._get_metadata_path"),
    ("lightning.pytorch.utilities.consolidate_checkpoint", "_format_checkpoint"),
)


def mark_stop_requested(trainer: L.Trainer) -> None:
    """Make Lightning's loops stop at their next safe point, as they do after SIGTERM (``trainer.received_sigterm``).

    Called on every rank at the same batch, after the ranks agreed, so that every rank stops at the same place.
    """
    trainer._signal_connector.received_sigterm = True


def stop_requested(trainer: L.Trainer) -> bool:
    return bool(trainer.received_sigterm)


def should_update_logs(trainer: L.Trainer) -> bool:
    """Whether Lightning writes the logs after this training step (every ``log_every_n_steps``)."""
    return bool(trainer._logger_connector.should_update_logs)


def fit_validation_in_progress(trainer: L.Trainer) -> bool:
    """The fit's validation loop has started and not reached its last batch (sanity checks excluded)."""
    if not trainer.validating or trainer.sanity_checking or trainer.state.fn != "fit":
        return False
    progress = trainer.fit_loop.epoch_loop.val_loop.batch_progress
    return not progress.is_last_batch


def restart_validation_from_first_batch(checkpoint: dict[str, Any]) -> None:
    """Record a checkpoint taken mid-validation as "validation started, no batch done".

    Lightning resumes a checkpoint saved after the epoch's last training batch as if its validation had run, so the
    interrupted epoch would never be validated (and the best checkpoint would be another epoch's). From this state
    Lightning goes back and runs that validation, over all its batches (the metric states of the batches done before
    the stop are not in the checkpoint, so a partial validation could not be finished anyway).
    """
    loops = checkpoint.get("loops", {}).get("fit_loop", {})
    if VAL_PROGRESS not in loops:
        return
    started = {"ready": 1, "started": 1, "processed": 0, "completed": 0}
    loops[VAL_PROGRESS] = {"total": dict(started), "current": dict(started), "is_last_batch": False}


def training_epoch_last_batch(trainer: L.Trainer) -> bool:
    """Whether the training batch that just ran is the epoch's last one."""
    return bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


def logger_version(logger: Any) -> int | str | None:
    """The version a logger was given (``None``: it would pick the next free one itself)."""
    return getattr(logger, "_version", None)


def set_logger_version(logger: Any, version: int | str) -> None:
    """Point a logger (TensorBoard, CSV) at ``version_N`` before it creates its directory."""
    logger._version = version


def put_routes_first(app: Any, routes: list[Any]) -> None:
    """Make ``routes`` answer before LitServe's own (its ``GET /`` says "litserve running"): FastAPI appends routes
    and the router matches the first, and LitServer adds its routes in its constructor, with no hook before them."""
    for index, route in enumerate(routes):
        app.router.routes.insert(index, route)
