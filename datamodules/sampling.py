"""A training order that a resumed run can pick up exactly where a killed one stopped, mid-epoch included.

The order of epoch ``e`` depends only on ``(seed, e)`` (never on the global RNG). When an epoch's iteration starts,
the sampler asks the trainer how many of its batches are already trained (0, except in the epoch a run resumes
in) and skips them, so the rest of the run sees the same batches in the same order as an uninterrupted one.

Why not only Lightning's stateful-loader restore: Lightning hands a loader its saved state only if it builds the
loader after restoring the checkpoint, and ``trainer.estimated_stepping_batches`` (the learning-rate schedule)
builds it before. The trainer's restored progress is right whenever the sampler is iterated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler


class ResumableSampler(DistributedSampler):
    """Shuffled (or length-grouped) order seeded per epoch, split across ranks, able to start mid-epoch.

    It is a ``DistributedSampler``, so Lightning uses it as is under DDP instead of wrapping it (the wrapper would
    re-shuffle and lose the position).
    """

    def __init__(
        self,
        dataset: Sequence[Any],
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        lengths: list[int] | None = None,
        batches_done: Callable[[], int] = lambda: 0,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.batch_size = batch_size
        self.lengths = lengths
        self.batches_done = batches_done

    def epoch_order(self) -> list[int]:
        """This rank's indices for the current epoch, from its first batch."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.lengths is None:
            order = torch.randperm(len(self.dataset), generator=generator).tolist()
        else:
            from transformers.trainer_pt_utils import get_length_grouped_indices

            # Groups sized for every rank's batch at once, then dealt out: each rank's batches stay length-grouped.
            order = get_length_grouped_indices(self.lengths, self.batch_size * self.num_replicas, generator=generator)
        padding = self.total_size - len(order)  # as DistributedSampler: every rank gets the same number of batches
        if padding > 0:
            order += (order * (padding // len(order) + 1))[:padding]
        return order[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_order()[self.batches_done() * self.batch_size :])


class ResumableDataLoader(DataLoader):
    """The training DataLoader, stateful in Lightning's sense: its position is saved in checkpoints (and Lightning
    does not warn that a mid-epoch resume is unreliable); the sampler does the resuming."""

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.sampler.epoch), "batches_done": int(self.sampler.batches_done())}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Nothing to restore here: the sampler reads the restored progress when the epoch's iteration starts."""
