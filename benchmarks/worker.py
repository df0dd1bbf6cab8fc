"""Run one measurement in a new process and hand back its result.

    echo '{"function": "benchmarks.loops:plain_loop", "kwargs": {...}}' | python -m benchmarks.worker

Each measured run gets its own process, so no run inherits another's allocator state, threads or warm caches. A new
interpreter spends about 8 s importing torch, Lightning and transformers on a slow 2-core CPU, so where there is no
CUDA, :func:`run_forked` forks each run from a server process that has only imported them (``PRELOAD``): a fresh
process all the same, none of it shared with another run. With CUDA every run is a new interpreter (``main`` here):
a process forked after the CUDA driver was touched cannot use it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
# imported once by the fork server; nothing here runs a tensor operation (no thread pool is started before a fork)
PRELOAD = ["torch", "transformers", "datasets", "lightning.pytorch", "benchmarks.runners", "benchmarks.loops", "benchmarks.inference", "resumen.app.train"]
_fork_context: Any = None


def flush_denormals() -> None:
    """Random weights give huge logits whose softmax gradients are denormal floats, which x86 computes with
    microcode assists: the fp32 LM-head backward took 2.4 s instead of 0.08 s. Flushed on every side, fp32 figures
    measure the model, not the synthetic weights (resumen flushes them on the CPU anyway: resumen/core/torch_settings.py)."""
    import torch

    torch.set_flush_denormal(True)


def call(function: str, kwargs: dict[str, Any]) -> Any:
    """``function`` ("module:name") called with ``kwargs``, denormals flushed first."""
    module_name, function_name = function.split(":")
    target = getattr(importlib.import_module(module_name), function_name)
    flush_denormals()
    return target(**kwargs)


def run_forked(function: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``call(function, kwargs)`` in a process forked from the preloaded server; its output is kept for an error."""
    global _fork_context
    import multiprocessing

    if _fork_context is None:
        _fork_context = multiprocessing.get_context("forkserver")
        _fork_context.set_forkserver_preload(PRELOAD)
    with tempfile.NamedTemporaryFile(prefix="resumen-bench-job-", suffix=".log") as log:
        receiver, sender = _fork_context.Pipe(duplex=False)
        process = _fork_context.Process(target=_forked_job, args=(function, kwargs, sender, log.name))
        process.start()
        sender.close()
        try:
            outcome = receiver.recv()
        except EOFError:  # killed (out of memory, a signal) before it could answer
            outcome = ("crashed", None)
        process.join()
        if outcome[0] == "result" and process.exitcode == 0:
            return json.loads(outcome[1])
        output = Path(log.name).read_text(encoding="utf-8", errors="replace")
    reason = outcome[1].strip().splitlines()[-1] if outcome[0] == "error" else "no result"
    raise RuntimeError(
        f"{function} failed in its process (exit {process.exitcode}): {reason}\n{(outcome[1] or '') if outcome[0] == 'error' else ''}{output[-3000:]}"
    )


def _forked_job(function: str, kwargs: dict[str, Any], sender: Any, log_path: str) -> None:
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1), os.dup2(log, 2)  # as a new interpreter's captured output: not mixed into the benchmark's tables
    os.chdir(ROOT)
    try:
        result = call(function, kwargs)
    except BaseException:
        sender.send(("error", traceback.format_exc()))
        raise SystemExit(1) from None
    sender.send(("result", json.dumps(result)))  # the same types as a new interpreter hands back


def main() -> None:
    job = json.loads(sys.stdin.read())  # stdin: no argument-length limit
    print(json.dumps(call(job["function"], job["kwargs"])))


if __name__ == "__main__":
    main()
