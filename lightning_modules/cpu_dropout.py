"""Dropout whose masks are cheap to draw on a CPU, for training on a CPU.

torch draws a CPU dropout mask one element at a time from its Mersenne Twister (about 12 ns an element here); for
Flan-T5 that is about 160 million draws a step, dominated by the encoder's attention weights, and the top self-time
op of a bf16 CPU step (docs/performance.md). This module draws 16 random bits per element from NumPy's SFC64 in bulk
(about 0.5 ns an element), seeded from torch's default generator, so ``seed_everything``, the checkpoint's saved RNG
state and exact resume keep deciding every mask. An element is dropped with probability round(p * 65536) / 65536
(0.100006 for 0.1) and the kept ones are scaled by the inverse of that, so the expectation is exact.

On other devices, in eval mode and at p = 0 everything is torch's own dropout; GPUs draw masks in a fused kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from resumen.lightning_modules.model_changes import attention_dropouts

LEVELS = 65536  # 16 bits per element
ATTENTION = "resumen_cpu_dropout"
# Model families whose eager attention is exactly the function below (score, bias, mask, softmax, dropout, @ value);
# other models get the fast dropout layers only.
ATTENTION_MODEL_TYPES = ("t5", "mt5")


def random_int16(count: int) -> torch.Tensor:
    """``count`` uniform int16 values from one SFC64 stream seeded by torch's default CPU generator."""
    # 126 bits of seed from torch's CPU generator, handed over as an array (a CPU tensor: no device is involved)
    seed = torch.randint(0, 2**63 - 1, (2,), dtype=torch.int64).numpy()
    words = np.random.SFC64(seed).random_raw((count + 3) // 4)  # 64 bits = 4 elements
    return torch.from_numpy(words.view(np.int16)[:count])


def cpu_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of a CPU tensor (autograd-aware: the gradient passes through the same mask)."""
    dropped = round(p * LEVELS)
    if x.device.type != "cpu" or not 0 < dropped < LEVELS:
        return torch.nn.functional.dropout(x, p, training=True)
    bits = random_int16(x.numel()).view(x.shape)
    scale = torch.tensor(LEVELS / (LEVELS - dropped), dtype=x.dtype)
    mask = torch.where(bits >= dropped - LEVELS // 2, scale, torch.zeros((), dtype=x.dtype))
    return x * mask


class CpuDropout(torch.nn.Dropout):
    """``torch.nn.Dropout`` that draws its masks with :func:`cpu_dropout` on a CPU; the same module elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.p > 0 and x.device.type == "cpu" and not self.inplace:
            return cpu_dropout(x, self.p)
        return super().forward(x)


def cpu_dropout_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    position_bias: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """T5's eager attention with :func:`cpu_dropout` on the weights while training on a CPU; SDPA otherwise.

    The mask is always the eager (additive, causal included) one, which SDPA accepts as well."""
    if not (module.training and dropout > 0 and query.device.type == "cpu"):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, position_bias=position_bias, **kwargs)
    weights = torch.matmul(query, key.transpose(2, 3))
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    if scaling != 1.0:
        weights = weights * scaling
    if position_bias is not None:
        weights = weights + position_bias
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = cpu_dropout(torch.nn.functional.softmax(weights, dim=-1), dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(ATTENTION, cpu_dropout_attention)
AttentionMaskInterface.register(ATTENTION, eager_mask)


def use_cpu_dropout(model: torch.nn.Module) -> int:
    """Give a model about to train on a CPU the fast masks: every ``nn.Dropout`` layer (LoRA's too) becomes a
    :class:`CpuDropout`, and a T5-family model on SDPA attention gets :func:`cpu_dropout_attention`. Returns how many
    layers were replaced. Weights, parameter names and exports do not change (a dropout layer has no state, and the
    attention choice is not written to ``config.json``)."""
    replaced = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is torch.nn.Dropout and child.p > 0:  # at 0 nothing is drawn: left as it is
                setattr(parent, name, CpuDropout(child.p, inplace=child.inplace))
                replaced += 1
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # under a LoRA wrapper
    config = getattr(base, "config", None)
    attention_dropout = any(m.dropout > 0 for m in attention_dropouts(base))
    if getattr(config, "model_type", None) in ATTENTION_MODEL_TYPES and config._attn_implementation == "sdpa" and attention_dropout:
        base.set_attn_implementation(ATTENTION)
    return replaced
