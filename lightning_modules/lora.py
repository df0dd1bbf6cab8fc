"""LoRA through PEFT: the option group, wrapping the model, and the two exports (merged model, adapter alone).

Full fine-tuning keeps two AdamW states for every weight; LoRA trains small low-rank matrices beside frozen
weights, so a 3B model's optimizer state shrinks to a few MB. Characters added with ``extend_vocabulary`` get
trainable embedding rows (PEFT's trainable tokens): only those rows train, the rest of the embedding stays frozen.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from resumen.core.errors import ResumenError

ADAPTER_DIR = "adapter"  # inside an export: the adapter on its own, for PeftModel users


@dataclass(frozen=True)
class LoraSettings:
    """LoRA fine-tuning (off while ``r`` is 0).

    Attributes:
        r: rank of the low-rank update; 0 turns LoRA off (full fine-tuning). 8-64 is usual.
        alpha: scaling numerator (the update is scaled by alpha / r); often 2 x r.
        dropout: dropout on the LoRA path's input.
        target_modules: which linear layers get adapters: ``all-linear`` (every linear layer but the LM head) or
            a list of module names such as ``[q, v]`` (T5's attention query and value).
    """

    r: int = 0
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = field(default="all-linear")

    @property
    def enabled(self) -> bool:
        return self.r > 0

    def check(self) -> None:
        if self.r < 0 or (self.enabled and self.alpha <= 0) or not 0 <= self.dropout < 1:
            raise ResumenError(
                f"model.lora needs r >= 0 (0 = off), alpha > 0 and 0 <= dropout < 1 (got r={self.r}, alpha={self.alpha}, dropout={self.dropout})."
            )
        if self.enabled:
            try:
                import peft  # noqa: F401
            except ImportError as error:
                raise ResumenError("model.lora.r > 0 needs the peft package: pip install 'peft>=0.21'.") from error

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def apply_lora(model: Any, settings: LoraSettings, new_token_ids: list[int]) -> Any:
    """Wrap ``model`` in a PEFT LoRA model; ``new_token_ids`` (added characters) get trainable embedding rows."""
    from peft import LoraConfig, TaskType, get_peft_model

    token_indices = None
    if new_token_ids:
        token_indices = {"shared": list(new_token_ids)}
        output = model.get_output_embeddings()
        if output is not None and output.weight is not model.get_input_embeddings().weight:
            token_indices["lm_head"] = list(new_token_ids)  # untied head (T5 v1.1, Flan-T5): its rows must learn too
    target = settings.target_modules
    config = LoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=target if isinstance(target, str) else list(target),
        trainable_token_indices=token_indices,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as error:  # e.g. a target module name the model does not have
        raise ResumenError(f"model.lora could not be applied: {str(error).splitlines()[0]}") from error


def lora_targets(model: Any) -> list[str]:
    """The kinds of layer LoRA adapted (the last part of each adapted module's name, e.g. ``q``, ``wo`` for T5,
    ``q_proj``, ``fc1`` for BART), in the model's order: what ``all-linear`` chose for this architecture."""
    names = getattr(getattr(model, "base_model", None), "targeted_module_names", None) or []
    return list(dict.fromkeys(name.rsplit(".", 1)[-1] for name in names))


def parameter_counts(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters, each shared tensor counted once."""
    seen, trainable, total = set(), 0, 0
    for parameter in model.parameters():
        if id(parameter) in seen:
            continue
        seen.add(id(parameter))
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    return trainable, total


def export_copy(peft_model: Any, state_dict: dict[str, Any] | None, base_name: str) -> Any:
    """One copy of the LoRA model with ``state_dict`` loaded, to save as the adapter and then merge in place.

    A copy, so the module in memory keeps training or generating unchanged; ``base_name`` is recorded in the
    adapter's config so ``PeftModel.from_pretrained`` finds the base from anywhere.
    """
    adapter = copy.deepcopy(peft_model)
    if state_dict is not None:
        adapter.load_state_dict(state_dict)
    adapter.peft_config["default"].base_model_name_or_path = base_name
    return adapter


def base_reference(name: str) -> str:
    """The base model as an adapter should name it: a hub id as is, a local directory as an absolute path."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name
