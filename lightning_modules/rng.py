"""The global random states (torch, CUDA, Python, NumPy): every rank's, saved in checkpoints as plain values a
``weights_only`` load accepts, and this rank's restored right before the first training step after a resume, so
dropout draws what the uninterrupted run drew (on every rank: each has its own stream)."""

from __future__ import annotations

import os
import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn


def rng_states() -> dict[str, Any]:
    """Every global RNG's state; NumPy's as a list (an ndarray would need unpickling beyond tensors)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(cached)],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))


def global_seed() -> int | None:
    """The seed ``seed_everything`` set in this process (Lightning keeps it in ``PL_GLOBAL_SEED``), or None."""
    value = os.environ.get("PL_GLOBAL_SEED")
    return int(value) if value and value.lstrip("-").isdigit() else None


def saved_seed(checkpoint: dict[str, Any]) -> int | None:
    """The ``seed_everything`` a checkpoint's run was started with (None in checkpoints that do not record it)."""
    for key, state in (checkpoint.get("callbacks") or {}).items():
        if str(key).startswith("RandomState") and isinstance(state, dict) and isinstance(state.get("seed_everything"), int):
            return state["seed_everything"]
    return None


class RandomState(Callback):
    """Save every rank's random generators in each checkpoint; restore this rank's before the next training step."""

    def __init__(self) -> None:
        super().__init__()
        self._saved: list[dict[str, Any]] | None = None

    def state_dict(self) -> dict[str, Any]:
        # Called on every rank while a checkpoint is built, so the gather is a collective all ranks take part in.
        states = rng_states()
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, states)
            return {"per_rank": gathered, "seed_everything": global_seed()}
        return {"per_rank": [states], "seed_everything": global_seed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._saved = list(state_dict.get("per_rank") or []) or None

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self._saved is None and checkpoint.get("rng_states"):  # written before per-rank states existed
            self._saved = [checkpoint["rng_states"]]

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self._saved is None:
            return
        saved, self._saved = self._saved, None
        rank = trainer.global_rank
        if len(saved) != trainer.world_size:
            rank_zero_warn(
                f"the checkpoint holds the random states of {len(saved)} rank(s) and this run has {trainer.world_size}: "
                "each rank continues from the first rank's, so dropout will differ from the interrupted run's."
            )
        set_rng_states(saved[rank] if len(saved) == trainer.world_size else saved[0])
