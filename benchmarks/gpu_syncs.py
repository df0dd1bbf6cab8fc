"""Count the CUDA synchronisations in a real ``fit`` between logged steps, under torch's sync debug mode.

    python -m benchmarks.gpu_syncs --model .cache/tiny-t5 --output syncs.json

Runs ``scripts/train.py fit --config configs/demo.yaml`` on the GPU (bf16-mixed, logging every 10 steps) with
``torch.cuda.set_sync_debug_mode("warn")`` switched on for the steps that are neither logged nor right after a
logged one (the epoch-end checkpoint writes excluded), and records where each synchronising call came from: the
innermost frame outside torch, and the resumen frame that led there. The CPU test (tests/test_no_sync.py) patches tensor reads instead; this is its GPU twin.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = tuple(str(ROOT / package) for package in ("lightning_modules", "datamodules", "core", "scripts"))


def between_logged_steps(trainer) -> bool:
    """Whether this step is neither logged nor right after a logged one (Lightning's progress bar reads the logged
    values then): the steps in which no synchronisation should happen. tests/test_no_sync.py watches the same."""
    step, every = trainer.global_step, trainer.log_every_n_steps
    return step % every not in (0, every - 1)


def _where(frame: traceback.FrameSummary) -> str:
    return f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno} {frame.line}"


def origin(stack: list[traceback.FrameSummary]) -> str:
    """Where a synchronising call came from: the innermost frame outside torch, and whether that is resumen's code
    (else the resumen frame that called into the library, if any)."""
    frames = [f for f in stack if "warnings.py" not in f.filename and "gpu_syncs.py" not in f.filename]
    outside_torch = [f for f in frames if "/torch/" not in f.filename] or frames
    frame = outside_torch[-1]
    if frame.filename.startswith(OURS):
        return f"resumen: {_where(frame)}"
    ours = [f for f in frames if f.filename.startswith(OURS)]
    return f"library: {_where(frame)}" + (f" (called from {_where(ours[-1])})" if ours else "")


def main(argv: list[str] | None = None) -> dict:
    import lightning as L
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a local seq2seq model directory")
    parser.add_argument("--output", required=True, help="write the counts here as JSON")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--dry-run-on-cpu", action="store_true", help="run the same fit on the CPU, counting nothing")
    args = parser.parse_args(argv)
    cuda = not args.dry_run_on_cpu
    if cuda and not torch.cuda.is_available():
        raise SystemExit("gpu_syncs needs a CUDA GPU (on a CPU, tests/test_no_sync.py checks the same path).")
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    from resumen.app.train import cli_main

    syncs: collections.Counter = collections.Counter()
    state = {"watching": False, "steps": 0}

    def record(message, category, filename, lineno, file=None, line=None):
        if state["watching"] and "synchronizing" in str(message):
            syncs[origin(traceback.extract_stack())] += 1

    class Watch(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            state["watching"] = between_logged_steps(trainer)
            state["steps"] += state["watching"]
            if cuda:
                torch.cuda.set_sync_debug_mode("warn" if state["watching"] else "default")

        def on_train_epoch_end(self, trainer, pl_module):  # epoch-end work (checkpoint writes) is not the step
            state["watching"] = False
            if cuda:
                torch.cuda.set_sync_debug_mode("default")

        def on_validation_start(self, trainer, pl_module):
            state["watching"] = False
            if cuda:
                torch.cuda.set_sync_debug_mode("default")

    warnings.showwarning = record
    warnings.simplefilter("always")
    runs = Path(args.output).resolve().parent / "gpu-sync-runs"
    cli = cli_main(
        [
            "--config",
            "configs/demo.yaml",
            f"--model.model_name_or_path={args.model}",
            f"--trainer.accelerator={'gpu' if cuda else 'cpu'}",
            "--trainer.devices=1",
            f"--trainer.max_steps={args.steps}",
            "--trainer.log_every_n_steps=10",
            "--trainer.limit_val_batches=0",
            "--trainer.precision=bf16-mixed",
            f"--trainer.logger.init_args.save_dir={runs}",
        ],
        False,
    )
    cli.trainer.callbacks.append(Watch())
    cli.trainer.fit(cli.model, cli.datamodule)
    if cuda:
        torch.cuda.set_sync_debug_mode("default")
    result = {
        "gpu": torch.cuda.get_device_name(0) if cuda else "none (dry run on the CPU)",
        "torch": torch.__version__,
        "steps_watched": state["steps"],
        "syncs_per_watched_step": sum(syncs.values()) / max(state["steps"], 1),
        "syncs": dict(syncs.most_common()),
        "syncs_in_resumen": sum(n for where, n in syncs.items() if where.startswith("resumen")),
    }
    Path(args.output).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
