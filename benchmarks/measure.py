"""Timing statistics, the machine's matrix-multiply peak, and analytic T5 training FLOPs."""

from __future__ import annotations

import platform
import statistics
import time
from typing import Any


def summarise(values: list[float]) -> dict[str, Any]:
    """Median, min and max of repeated runs (the figures every table row reports)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def ratio(ours: dict[str, Any], baseline: dict[str, Any]) -> float:
    return ours["median"] / baseline["median"]


def peak_rss_gib() -> float:
    """This process's peak resident memory (see :func:`resumen.lightning_modules.run_report.peak_rss_bytes`)."""
    from resumen.lightning_modules.run_report import peak_rss_bytes

    return peak_rss_bytes() / 2**30


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def matmul_peak_flops(dtype_name: str, device: str, size: int, repeats: int = 10) -> float:
    """FLOP/s of a large square matrix multiply: the practical peak the MFU is measured against."""
    import torch

    dtype = getattr(torch, dtype_name)
    torch.set_float32_matmul_precision("highest")  # true fp32, not TF32 (which an earlier run may have enabled)
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    for _ in range(2):
        a @ b
    synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def t5_training_flops(config: Any, source_tokens: int, target_tokens: int, source_len: int, target_len: int) -> float:
    """Training FLOPs (forward + backward = 3 x forward) of one T5 example, counting matmuls and attention.

    ``*_tokens`` are the non-padding tokens (model FLOPs, as in MFU); ``*_len`` the sequence lengths attended over.
    """
    d, f, inner = config.d_model, config.d_ff, config.num_heads * config.d_kv
    ff_mats = 3 if "gated" in config.feed_forward_proj else 2
    encoder_per_token = config.num_layers * (2 * (4 * d * inner + ff_mats * d * f) + 4 * source_len * inner)
    decoder_per_token = (
        config.num_decoder_layers
        * (
            2 * (2 * d * inner)
            + 4 * target_len * inner  # self-attention
            + 2 * (2 * d * inner)
            + 4 * source_len * inner  # cross-attention: queries and output projection
            + 2 * ff_mats * d * f
        )
        + 2 * d * config.vocab_size
    )  # output head
    cross_keys_values = config.num_decoder_layers * 2 * (2 * d * inner) * source_tokens
    forward = encoder_per_token * source_tokens + decoder_per_token * target_tokens + cross_keys_values
    return 3.0 * forward


NOTABLE_CPU_FLAGS = frozenset({"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"})


def machine() -> dict[str, Any]:
    import os

    import datasets
    import lightning
    import torch
    import transformers

    from resumen.core.precision import cpu_flags

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": _cpu_name(),
        # what decides CPU speed here: AVX-512 and native bf16 (AMX, avx512_bf16) change the figures several-fold
        "cpu_flags": sorted(cpu_flags() & NOTABLE_CPU_FLAGS),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_in_fresh_process(function: str, **kwargs: Any) -> dict[str, Any]:
    """``function`` ("module:name") called with ``kwargs`` (JSON values) in a new process; its result. Without CUDA
    the process is forked from one that has already imported the libraries (benchmarks/worker.py says why)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import torch

    from benchmarks.worker import run_forked

    if not torch.cuda.is_available():
        return run_forked(function, kwargs)
    job = json.dumps({"function": function, "kwargs": kwargs})
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker"],
        input=job,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{function} failed in its process (exit {done.returncode}): {last}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def interleaved(jobs: dict[str, tuple[str, dict[str, Any]]], repeats: int, progress: Any = print) -> dict[str, list[dict[str, Any]]]:
    """Each job ``repeats`` times, each run in a fresh process, interleaved and rotated: repeat r starts with job r
    (A B C, B C A, C A B, ...), so a slow spell of the machine falls on every job alike instead of on one block."""
    names = list(jobs)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            progress(f"{name} (run {r + 1} of {repeats})")
            function, kwargs = jobs[name]
            runs[name].append(run_in_fresh_process(function, **kwargs))
    return runs


def paired_ratios(numerator: list[dict[str, Any]], denominator: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The per-repeat ratio of ``key`` (runs of the same repeat were neighbours in time), summarised."""
    return summarise([a[key] / b[key] for a, b in zip(numerator, denominator)])
