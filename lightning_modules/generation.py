"""Generation settings shared by the seq2seq and causal-LM modules, checked once."""

from __future__ import annotations

from typing import Any

from core.errors import ResumenError


def check_generation_settings(
    max_new_tokens: int,
    num_beams: int = 1,
    top_p: float | None = None,
    temperature: float | None = None,
    num_return_sequences: int = 1,
) -> None:
    """Refuse settings that ``generate()`` would reject late or silently misuse."""
    if max_new_tokens < 1:
        raise ResumenError(f"max_new_tokens must be at least 1 (got {max_new_tokens}).")
    if num_beams < 1:
        raise ResumenError(f"num_beams must be at least 1 (got {num_beams}); 1 means greedy decoding.")
    if top_p is not None and not 0 < top_p <= 1:
        raise ResumenError(f"top_p must be in (0, 1] (got {top_p}).")
    if temperature is not None and temperature <= 0:
        raise ResumenError(f"temperature must be greater than 0 (got {temperature}); use greedy decoding for 0.")
    if num_return_sequences < 1:
        raise ResumenError(f"num_return_sequences must be at least 1 (got {num_return_sequences}).")


def needs_synced_gpus(trainer: Any) -> bool:
    """Under FSDP or ZeRO-3 every rank must keep stepping until all ranks finish generating, or they hang."""
    if trainer is None or trainer.world_size < 2:
        return False
    strategy = trainer.strategy
    name = type(strategy).__name__
    if name == "FSDPStrategy":
        return True
    if name == "DeepSpeedStrategy":
        return int(strategy.config.get("zero_optimization", {}).get("stage", 0)) == 3
    return False
