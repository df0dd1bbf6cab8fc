"""Changes to a loaded model that are not training: its dropout rate, and the check that a checkpoint's weights fit
it before Lightning loads them."""

from __future__ import annotations

from typing import Any

import torch

from resumen.core.errors import ResumenError


def attention_dropouts(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The attention modules that keep their dropout probability as a float (T5's attention weights)."""
    return [m for m in model.modules() if not isinstance(m, torch.nn.Dropout) and isinstance(getattr(m, "dropout", None), float)]


def set_dropout(model: torch.nn.Module, rate: float) -> None:
    """Every dropout's probability: the layers, and the attention modules that keep theirs as a float (T5's attention
    weights); the model's config keeps its own value, so exports stay as they were."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = rate
    for module in attention_dropouts(model):
        module.dropout = rate


def check_same_shapes(saved: dict[str, Any], current: dict[str, Any], model_name: str) -> None:
    """A checkpoint of another model size fails deep in ``load_state_dict``; name the first differing weight."""
    for name, tensor in saved.items():
        if name in current and tuple(tensor.shape) != tuple(current[name].shape):
            raise ResumenError(
                f"the checkpoint was trained from a model of another size: '{name}' is {list(tensor.shape)} there and "
                f"{list(current[name].shape)} in '{model_name}': pass the --model.model_name_or_path it was trained from."
            )
