"""Run scripts/train.py in-process on the demo config, with a tiny model and outputs under a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import ROOT


SAMPLE_PROFILE = ROOT / "tests" / "fixtures" / "sample.yaml"  # the 20/5/5 sample, batch 4, on top of the demo config


def demo_args(subcommand: str, model: str, runs: Path, *extra: str) -> list[str]:
    return [
        subcommand,
        "--config",
        str(ROOT / "configs" / "demo.yaml"),
        "--config",
        str(SAMPLE_PROFILE),
        f"--model.model_name_or_path={model}",
        f"--trainer.logger.init_args.save_dir={runs}",
        *extra,
    ]


def run_train(*args: str):
    from resumen.app.train import cli_main

    return cli_main(list(args))


def in_root(function, *args):
    """Call ``function(*args)`` from the repository root (the demo config's data paths are relative to it)."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return function(*args)
    finally:
        os.chdir(cwd)


def event_tags(log_dir: Path) -> dict[str, set[str]]:
    """Scalar and text tags in a TensorBoard run directory."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0, "scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    return {"scalars": set(tags.get("scalars", [])), "tensors": set(tags.get("tensors", []))}
