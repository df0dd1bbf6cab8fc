"""What a model was trained with, in one record: written once into checkpoints and exports, read by every door.

The prompt template, the lengths, the characters added to the vocabulary, the LoRA settings and the base model
travel with the weights, so ``predict``, ``summarize.py``, the server and ``compare.py`` encode articles exactly as
training did (the same template, cut to the same ``max_source_length``). In an export the record is ``config.json``'s
``resumen`` entry (``prompt_template`` stays beside it for other tools); in a LoRA adapter directory, the file
``trained_with.json``; in a checkpoint, its ``trained_with`` entry. The record carries its ``format``
(``FORMAT``): a record from a newer resumen is refused with one line rather than misread. Files from before the
record (never released) are not read: a model without a record is a plain model, with resumen's defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from resumen.core.errors import ResumenError
from resumen.core.prompts import SUMMARY_TEMPLATE, validate_template

CONFIG_KEY = "resumen"  # config.json entry of an export
ADAPTER_FILE = "trained_with.json"  # beside a LoRA adapter (its config.json is PEFT's)
# The record's format: bumped when a field changes meaning; 0.1.0 wrote format 1 without saying so.
FORMAT = 1


@dataclass(frozen=True)
class TrainedWith:
    """The settings a summariser's weights expect at inference (all plain values)."""

    prompt_template: str = SUMMARY_TEMPLATE
    max_source_length: int | None = None
    max_target_length: int | None = None
    added_characters: list[str] = field(default_factory=list)
    base_model: str | None = None
    lora: dict[str, Any] | None = None
    dataset: dict[str, Any] | None = None  # name, config, revision (or local files), for cards and reports
    format: int = FORMAT

    def __post_init__(self) -> None:
        validate_template(self.prompt_template, "the trained-with prompt_template")
        for name in ("max_source_length", "max_target_length"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ResumenError(f"the trained-with {name} must be a positive integer (got {value!r}).")
        if not isinstance(self.added_characters, list) or not all(isinstance(c, str) for c in self.added_characters):
            raise ResumenError("the trained-with added_characters must be a list of characters.")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Any, source: str) -> TrainedWith:
        """Read a saved record; unknown keys (written by a newer resumen) are ignored, bad values refused."""
        if not isinstance(values, dict):
            raise ResumenError(f"{source} holds a trained-with record that is not a mapping.")
        written = values.get("format", 1)
        if not isinstance(written, int) or written > FORMAT:
            raise ResumenError(
                f"{source} holds a trained-with record of format {written!r}, written by a newer resumen (this one reads format {FORMAT}): upgrade resumen."
            )
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except ResumenError as error:
            raise ResumenError(f"{source}: {error}") from None
        except TypeError as error:
            raise ResumenError(f"{source} holds an unreadable trained-with record ({error}).") from None


def from_model_config(config: Any, source: str) -> TrainedWith | None:
    """The record in a model's ``config.json`` (an export of resumen), or ``None`` for any other model."""
    saved = getattr(config, CONFIG_KEY, None)
    return TrainedWith.from_dict(saved, f"{source}'s config.json") if saved is not None else None


def write_to_model_config(config: Any, record: TrainedWith) -> None:
    """Put the record into a model's config (``save_pretrained`` writes it into ``config.json``)."""
    setattr(config, CONFIG_KEY, record.as_dict())
    config.prompt_template = record.prompt_template  # for tools that read only the template (and older resumen)


def from_adapter_dir(directory: Path) -> TrainedWith | None:
    path = directory / ADAPTER_FILE
    if path.is_file():
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ResumenError(f"{path} is not valid JSON ({error}).") from None
        return TrainedWith.from_dict(values, str(path))
    return None


def write_to_adapter_dir(directory: Path, record: TrainedWith) -> None:
    (directory / ADAPTER_FILE).write_text(json.dumps(record.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")


def from_checkpoint(checkpoint: dict[str, Any], source: str) -> TrainedWith | None:
    """The record in a training checkpoint (its ``trained_with`` entry), or None."""
    return TrainedWith.from_dict(checkpoint["trained_with"], source) if "trained_with" in checkpoint else None
