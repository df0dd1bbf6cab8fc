"""The precision a run uses when none is given: bf16 where the hardware computes it natively, fp32 elsewhere.

bf16 matmuls run on CUDA GPUs from Ampere on and on CPUs with AMX or AVX-512 BF16 (Intel Xeon from Cooper Lake /
Sapphire Rapids, AMD Zen 4): our flan-t5-small-shaped training was 1.15x faster under bf16 autocast on such a
Xeon (docs/performance.md). Without native bf16, bf16 is emulated and slower, so fp32 stays. ``16-mixed`` is never
chosen (T5 overflows).
"""

from __future__ import annotations

from pathlib import Path

NATIVE_BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def choose_precision(accelerator: str | None) -> tuple[str, str]:
    """``(precision, why)`` for a run on ``accelerator`` (Lightning's value: auto, cpu, gpu, cuda, ...)."""
    import torch

    accelerator = (accelerator or "auto").lower()
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", f"{torch.cuda.get_device_name(0)} computes bf16 natively"
        return "32-true", f"{torch.cuda.get_device_name(0)} has no native bf16 (and fp16 overflows T5)"
    if accelerator in ("auto", "cpu"):
        native = sorted(NATIVE_BF16_CPU_FLAGS & cpu_flags())
        if native:
            return "bf16-mixed", f"the CPU computes bf16 natively ({', '.join(native)})"
        return "32-true", "the CPU has no native bf16 (no amx_bf16 / avx512_bf16): emulated bf16 is slower"
    return "32-true", f"no automatic choice for accelerator '{accelerator}'"
