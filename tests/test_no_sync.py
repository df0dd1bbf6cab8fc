"""No host read of a tensor by our code in the training step path between logged steps: on a GPU each one is a
sync that stalls the CPU until the GPU drains (NaN check, token counts, throughput and grad norm are read on logged
steps). Reads inside libraries are not ours to remove: transformers' T5 mask check (``padding_mask.all()``) and
Lightning's progress-bar conversion on the step after a logged one."""

import collections
import traceback
from pathlib import Path

import lightning as L
import torch

from cli_helpers import demo_args, in_root
from conftest import ROOT
from benchmarks.gpu_syncs import between_logged_steps

OURS = tuple(str(ROOT / package) for package in ("lightning_modules", "datamodules", "core"))
READS = ("item", "__bool__", "__float__", "__int__", "tolist")


def test_no_host_read_from_our_code_between_logged_steps(tiny_t5, tmp_path, monkeypatch):
    from resumen.app.train import cli_main

    reads: collections.Counter = collections.Counter()
    watching = {"on": False, "steps": 0}

    def counting(name):
        real = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            if watching["on"]:
                caller = traceback.extract_stack(limit=2)[0]  # who asked for the value (libraries' own reads aside)
                if caller.filename.startswith(OURS):
                    reads[(name, f"{Path(caller.filename).name}:{caller.lineno}")] += 1
            return real(self, *args, **kwargs)

        return read

    class Watch(L.Callback):
        """On for steps that are neither logged nor right after a logged one, until validation starts."""

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            watching["on"] = between_logged_steps(trainer)
            watching["steps"] += watching["on"]

        def on_validation_start(self, trainer, pl_module):
            watching["on"] = False

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    args = demo_args("fit", tiny_t5, tmp_path / "runs", "--trainer.max_epochs=2", "--trainer.log_every_n_steps=4")
    cli = in_root(cli_main, args[1:], False)  # run=False: no subcommand; fit is called below
    cli.trainer.callbacks.append(Watch())
    in_root(cli.trainer.fit, cli.model, cli.datamodule)
    assert watching["steps"] >= 4, watching  # the window covered real steps (2 epochs x 5 steps, logged every 4)
    assert not reads, dict(reads)
    assert cli.trainer.callback_metrics["train/grad_norm"] > 0  # still measured, on the logged steps
