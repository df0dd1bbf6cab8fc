"""How text is decoded, defined once: both modules, the export's ``generation_config``, the inference core, the
scripts' flags and the server's per-request fields and bounds all come from ``GenerationSettings`` and its fields'
metadata (help and bounds). A new decoding option is one field here."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from resumen.core.errors import ResumenError

SAMPLING_ONLY = ("temperature", "top_k", "top_p")  # generate() warns when they are set without sampling


def option(default: Any, help: str, low: float | None = None, high: float | None = None, summary: bool = False) -> Any:
    """A decoding field with its help and bounds; ``summary``: it decides a summariser's output, so the summarising
    commands take it as a flag, the server as a per-request field, the module as ``--model.generation.<name>``."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "summary": summary})


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings, checked when built (``generate()`` would reject them late or silently misuse them).

    ``max_new_tokens`` is always passed: without it ``generate()`` stops near 20 tokens.
    """

    max_new_tokens: int = option(128, "longest summary in tokens (always passed: generate() stops near 20 without it)", 1, None, summary=True)
    num_beams: int = option(1, "beam search width (1 = greedy decoding)", 1, None, summary=True)
    length_penalty: float = option(1.0, "beam length penalty (>1 favours longer summaries)", -5.0, 5.0, summary=True)
    no_repeat_ngram_size: int = option(0, "forbid repeating n-grams of this size (0 = off)", 0, 10, summary=True)
    repetition_penalty: float = option(1.0, "penalise tokens already written (1.0 = off)", 0.1, 10.0)
    do_sample: bool = option(False, "sample instead of searching")
    temperature: float = option(1.0, "sampling temperature (> 0)")
    top_k: int = option(50, "sample among the k most likely tokens", 0, None)
    top_p: float = option(1.0, "sample within this probability mass, in (0, 1]")
    num_return_sequences: int = option(1, "sequences returned per input", 1, None)

    def __post_init__(self) -> None:
        for spec in fields(self):  # the bounds in the metadata (the messages below say more where it helps)
            value, low, high = getattr(self, spec.name), spec.metadata.get("low"), spec.metadata.get("high")
            if isinstance(value, float) and not math.isfinite(value):
                raise ResumenError(f"{spec.name} must be a finite number (got {value}).")
            if low is not None and value < low and spec.name not in ("max_new_tokens", "num_beams", "num_return_sequences"):
                raise ResumenError(f"{spec.name} must be at least {low} (got {value}).")
            if high is not None and value > high:
                raise ResumenError(f"{spec.name} must be at most {high} (got {value}).")
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
        for name in (*SUMMARY_OPTIONS, "repetition_penalty"):
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


# The options that decide a summariser's output: flags of summarize.py, fields of a server request, and
# --model.generation.<name> of the fine-tuning module, all from the metadata above.
SUMMARY_FIELDS = {spec.name: spec for spec in fields(GenerationSettings) if spec.metadata["summary"]}
SUMMARY_OPTIONS = tuple(SUMMARY_FIELDS)


def value_type(spec: Any) -> type:
    """A summary option's value type (``int`` or ``float``; annotations are strings under postponed evaluation)."""
    return int if spec.type in ("int", int) else float


def add_summary_flags(parser: argparse.ArgumentParser) -> None:
    """``--max-new-tokens``, ``--num-beams``, ... with their help from the metadata (default: the model's own)."""
    for name, spec in SUMMARY_FIELDS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=value_type(spec), default=None, help=f"{spec.metadata['help']} (default: the model's own)")


def summary_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The summary options given on a command line (``None``: not given), checked by building the settings."""
    given = {name: getattr(args, name) for name in SUMMARY_OPTIONS if getattr(args, name, None) is not None}
    GenerationSettings().with_overrides(**given)  # a bad value is one line before any model loads
    return given


def request_bounds(caps: dict[str, int]) -> dict[str, tuple[float | None, float | None]]:
    """Each summary option's bounds for a server request: the metadata's, with the server's own caps
    (``--max-new-tokens-limit``, ``--max-beams``) where the metadata has no upper bound."""
    bounds = {}
    for name, spec in SUMMARY_FIELDS.items():
        low, high = spec.metadata["low"], spec.metadata["high"]
        bounds[name] = (low, caps.get(name) if high is None else high)  # None: no upper bound of its own
    return bounds
