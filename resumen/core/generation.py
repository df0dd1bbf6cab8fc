"""How text is decoded, defined once: both modules, the export's ``generation_config``, the inference core and the
scripts use it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from resumen.core.errors import ResumenError

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

    def with_overrides(self, **overrides: Any) -> GenerationSettings:
        """These settings with some replaced (``None`` values are ignored), checked again."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_generation_config(cls, generation_config: Any, fallback: GenerationSettings | None = None) -> GenerationSettings:
        """A model's ``generation_config`` (an export writes its test/predict settings there) as settings; what it
        leaves unset comes from ``fallback``. ``max_new_tokens`` is always set (``generate()`` stops near 20
        tokens without it)."""
        fallback = fallback or cls(num_beams=4)
        values = {}
        for name in ("max_new_tokens", "num_beams", "length_penalty", "no_repeat_ngram_size", "repetition_penalty"):
            value = getattr(generation_config, name, None) if generation_config is not None else None
            values[name] = value if value is not None else getattr(fallback, name)
        return cls(**values)

    def describe(self) -> dict[str, Any]:
        """The settings that decide a summary (for /models, model cards and reports)."""
        return {k: v for k, v in self.generate_kwargs().items() if k != "num_return_sequences"}

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
