"""The process-wide torch settings resumen runs with, in one place: the CLI applies them once per command, the
inference core when it loads a model, and the benchmark on every side it measures (so no side is measured with
settings an earlier run left behind)."""

from __future__ import annotations

import torch


def apply_torch_settings(device: torch.device | str, allow_tf32: bool = True) -> dict[str, bool]:
    """Set what the device computes fastest without changing results that matter; returns what was set.

    - CPU: flush denormal floats to zero. Denormals (below 1.2e-38, e.g. softmax gradients of tokens far from the
      prediction) cost x86 microcode assists: flushed, the fp32 LM-head backward of a flan-t5-small-shaped step went
      from 2.4 s to 0.08 s. GPUs and bf16 kernels flush them already.
    - CUDA, Ampere and newer, with ``allow_tf32``: float32 matrix multiplies as TF32 (much faster under ``32-true``;
      bf16-mixed matmuls are bf16 already). Without it, true float32.
    """
    device = torch.device(device)
    flush = device.type == "cpu"
    if flush:
        torch.set_flush_denormal(True)
    tf32 = bool(allow_tf32 and device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8)
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    return {"flush_denormal": flush, "tf32": tf32}
