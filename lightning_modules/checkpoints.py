"""Read a training checkpoint whatever strategy wrote it: one ``.ckpt`` file, or an FSDP/DeepSpeed sharded directory."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from lightning_modules.errors import ResumenError


def is_sharded(path: str | Path) -> bool:
    """FSDP (``state_dict_type: sharded``) and DeepSpeed save a checkpoint as a directory of shards."""
    return Path(path).is_dir()


def load_full_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint as one dict with a full (unsharded) ``state_dict`` on the CPU.

    Sharded directories are consolidated with Lightning's own tools (the same as
    ``python -m lightning.pytorch.utilities.consolidate_checkpoint`` and DeepSpeed's ``zero_to_fp32``).
    """
    path = Path(path)
    if not path.exists():
        raise ResumenError(f"checkpoint '{path}' does not exist: pass a .ckpt file or a sharded checkpoint directory.")
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    if (path / "checkpoint").is_dir() or any(path.glob("*/mp_rank_*_model_states.pt")):
        from lightning.pytorch.utilities.deepspeed import convert_zero_checkpoint_to_fp32_state_dict

        with tempfile.TemporaryDirectory() as tmp:
            merged = Path(tmp) / "merged.ckpt"
            convert_zero_checkpoint_to_fp32_state_dict(str(path), str(merged))
            return torch.load(merged, map_location="cpu", weights_only=False)  # DeepSpeed's own client state
    if (path / ".metadata").is_file():
        from lightning.fabric.utilities.load import _load_distributed_checkpoint
        from lightning.pytorch.utilities.consolidate_checkpoint import _format_checkpoint

        return _format_checkpoint(_load_distributed_checkpoint(path))
    raise ResumenError(
        f"'{path}' is a directory but neither an FSDP sharded checkpoint (no .metadata) nor a DeepSpeed one: "
        "pass the .ckpt file or the checkpoint directory itself."
    )


def model_state_dict(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The Hugging Face model's weights from a Lightning checkpoint of :class:`Seq2SeqSummarizer`."""
    state = checkpoint.get("state_dict") or checkpoint.get("module") or {}
    weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    if not weights:
        raise ResumenError("the checkpoint holds no 'model.*' weights: is it a checkpoint of scripts/train.py?")
    return weights
