"""Run one measurement in this fresh process and print its result as JSON (the last line of stdout).

    echo '{"function": "benchmarks.loops:plain_loop", "kwargs": {...}}' | python -m benchmarks.worker

Each measured run gets its own process, so no run inherits another's allocator state, threads or warm caches.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def flush_denormals() -> None:
    """Random weights give huge logits whose softmax gradients are denormal floats, which x86 computes with
    microcode assists: the fp32 LM-head backward took 2.4 s instead of 0.08 s. Flushed on every side, fp32 figures
    measure the model, not the synthetic weights (resumen flushes them on the CPU anyway: core/torch_settings.py)."""
    import torch

    torch.set_flush_denormal(True)


def main() -> None:
    job = json.loads(sys.stdin.read())  # stdin: no argument-length limit
    module_name, function_name = job["function"].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    flush_denormals()
    result = function(**job["kwargs"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
