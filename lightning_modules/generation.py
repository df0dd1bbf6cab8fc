"""How text is decoded, defined once: both modules, the export's ``generation_config`` and the scripts use it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from core.errors import ResumenError

SAMPLING_ONLY = ("temperature", "top_k", "top_p")  # generate() warns when they are set without sampling


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings, checked when built (``generate()`` would reject them late or silently misuse them).

    ``max_new_tokens`` is always passed: without it ``generate()`` stops near 20 tokens.
    """

    max_new_tokens: int = 128
    num_beams: int = 1
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    num_return_sequences: int = 1

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ResumenError(f"max_new_tokens must be at least 1 (got {self.max_new_tokens}).")
        if self.num_beams < 1:
            raise ResumenError(f"num_beams must be at least 1 (got {self.num_beams}); 1 means greedy decoding.")
        if not 0 < self.top_p <= 1:
            raise ResumenError(f"top_p must be in (0, 1] (got {self.top_p}).")
        if self.temperature <= 0:
            raise ResumenError(f"temperature must be greater than 0 (got {self.temperature}); use greedy decoding for 0.")
        if self.num_return_sequences < 1:
            raise ResumenError(f"num_return_sequences must be at least 1 (got {self.num_return_sequences}).")

    def with_beams(self, num_beams: int) -> GenerationSettings:
        return replace(self, num_beams=num_beams)

    def generate_kwargs(self) -> dict[str, Any]:
        """Arguments for ``generate()`` (and the ``text-generation`` pipeline)."""
        kwargs = asdict(self)
        if not self.do_sample:
            for name in SAMPLING_ONLY:
                kwargs.pop(name)
        return kwargs

    def apply_to(self, generation_config: Any) -> None:
        """Write these settings into a model's ``generation_config`` (what an export's users get by default)."""
        for name, value in self.generate_kwargs().items():
            if name != "num_return_sequences":
                setattr(generation_config, name, value)


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
