"""Per-step forward / backward / optimizer / everything-else seconds of any training loop.

The same hooks time every loop, so no loop is instrumented differently: a forward pre-hook and hook on the Hugging
Face model, a wrapper around ``Tensor.backward`` (Lightning, ``Seq2SeqTrainer`` and a plain loop all call it), and
the optimizer's step pre- and post-hooks. A step runs from one optimizer step's end to the next, so "other" is all
the rest: fetching the batch, moving it, zeroing gradients, the scheduler, logging and the loop's own hooks.

On a GPU the phases are CUDA events (no waiting inside the timed steps); the host waits for the GPU only at the
start and the end of the timed window.
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import time
from typing import Any
from collections.abc import Iterator

import torch

PHASES = ("forward", "backward", "optimizer")


class PhaseClock:
    """Marks each phase's start and end on every training step; ``result()`` summarises the timed steps."""

    def __init__(self, warmup: int, steps: int) -> None:
        if warmup < 1 or steps < 1:
            raise ValueError("the phase clock needs at least one warm-up step and one timed step")
        self.warmup, self.steps = warmup, steps
        self.cuda = torch.cuda.is_available()
        self.step = 0  # optimizer steps finished
        self.marks: list[dict[str, Any]] = [{}]
        self.window: list[float] = []  # host time at the end of the last warm-up step and of the last timed step
        self.faults: list[int] = []  # minor page faults at the window's ends: fresh memory the kernel had to map
        self.started: float | None = None  # host time of the first forward: warm-up seconds (compiling, say) from it

    def _now(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def mark(self, name: str) -> None:
        if self.started is None:
            self.started = time.perf_counter()
        if self.step < self.warmup + self.steps:
            self.marks[self.step][name] = self._now()

    @contextlib.contextmanager
    def attached(self, model: torch.nn.Module) -> Iterator[PhaseClock]:
        """Time ``model``'s forward and every ``Tensor.backward`` while inside; call :meth:`watch` on the optimizer."""
        handles = [
            model.register_forward_pre_hook(lambda *_: self.mark("forward_start")),
            model.register_forward_hook(lambda *_: self.mark("forward_end")),
        ]
        original = torch.Tensor.backward

        def timed_backward(tensor, *args, **kwargs):
            self.mark("backward_start")
            original(tensor, *args, **kwargs)
            self.mark("backward_end")

        torch.Tensor.backward = timed_backward
        try:
            yield self
        finally:
            torch.Tensor.backward = original
            for handle in handles:
                handle.remove()

    def watch(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.register_step_pre_hook(lambda *_: self.mark("optimizer_start"))
        optimizer.register_step_post_hook(lambda *_: self._step_done())

    def _step_done(self) -> None:
        self.mark("optimizer_end")
        self.step += 1
        self.marks.append({})
        if self.step in (self.warmup, self.warmup + self.steps):
            if self.cuda:
                torch.cuda.synchronize()
            self.window.append(time.perf_counter())
            self.faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    @staticmethod
    def _start(marks: dict[str, Any], phase: str) -> str:
        # Lightning calls optimizer.step(closure) and the closure runs forward and backward inside the step: its
        # update starts when the backward ends (marks keep insertion order, which is the order they happened in).
        if phase == "optimizer" and list(marks).index("optimizer_start") < list(marks).index("backward_end"):
            return "backward_end"
        return f"{phase}_start"

    def _seconds(self, start: Any, end: Any) -> float:
        return start.elapsed_time(end) / 1000 if self.cuda else end - start

    def result(self) -> dict[str, Any]:
        """Seconds per timed step (host wall time of the window / steps), each phase's mean seconds per step, and the
        warm-up steps' seconds (from the first forward)."""
        if len(self.window) < 2:
            raise RuntimeError(f"only {self.step} optimizer steps ran; the clock needs {self.warmup + self.steps}")
        if self.cuda:
            torch.cuda.synchronize()
        timed = self.marks[self.warmup : self.warmup + self.steps]
        per_step = (self.window[1] - self.window[0]) / self.steps
        phases = {phase: statistics.fmean(self._seconds(m[self._start(m, phase)], m[f"{phase}_end"]) for m in timed) for phase in PHASES}
        phases["other"] = per_step - sum(phases.values())
        return {
            "seconds_per_step": per_step,
            "phases": phases,
            "warmup_seconds": self.window[0] - self.started,
            "page_faults_per_step": (self.faults[1] - self.faults[0]) / self.steps,
        }
