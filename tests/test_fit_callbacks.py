"""The callbacks a command runs come from one list, and each gets its partners from one place
(lightning_modules/fit_callbacks.py): the run report reads the throughput monitor it reports on."""

from types import SimpleNamespace

import pytest
import torch

from cli_helpers import demo_args, in_root
from resumen.core.errors import ResumenError
from resumen.lightning_modules import fit_callbacks, training_monitors
from resumen.lightning_modules.graceful_stop import GracefulStop
from resumen.lightning_modules.last_checkpoint import LastCheckpoint
from resumen.lightning_modules.rng import RandomState
from resumen.lightning_modules.run_report import RunReport
from resumen.lightning_modules.training_monitors import LossHealth, SampleSummaries, Throughput


def test_a_fit_runs_every_listed_callback_once_with_its_partners_connected(tiny_t5, tmp_path):
    from resumen.app.train import cli_main

    cli = in_root(cli_main, demo_args("fit", tiny_t5, tmp_path / "runs")[1:], False)
    callbacks = cli.trainer.callbacks
    for group, kind in fit_callbacks.CONFIGURABLE.items():
        assert sum(isinstance(c, kind) for c in callbacks) == 1, group
        assert cli.config[group] is not None  # its options are a CLI group
    for kind in (RandomState, LossHealth, Throughput, SampleSummaries):
        assert sum(isinstance(c, kind) for c in callbacks) == 1, kind
    report, last = fit_callbacks.one(callbacks, RunReport), fit_callbacks.one(callbacks, LastCheckpoint)
    assert report.throughput is fit_callbacks.one(callbacks, Throughput)
    assert last.stopper is fit_callbacks.one(callbacks, GracefulStop)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def batch(samples: int, tokens: int) -> dict:
    mask = torch.zeros(samples, 8, dtype=torch.long)
    mask.view(-1)[:tokens] = 1
    return {"input_ids": torch.zeros(samples, 8, dtype=torch.long), "attention_mask": mask}


def test_the_report_rates_are_the_throughput_monitors_fit_totals_without_validation_time(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(training_monitors, "time", clock)
    trainer = SimpleNamespace(_logger_connector=SimpleNamespace(should_update_logs=False))
    monitor = Throughput()
    monitor.on_fit_start(trainer, None)
    monitor.on_train_epoch_start(trainer, None)
    monitor.on_train_batch_start(trainer, None, None, 0)
    clock.now = 1.0
    monitor.on_train_batch_end(trainer, None, None, batch(2, 10), 0)
    monitor.on_validation_start(trainer, None)
    clock.now = 4.0  # three seconds of validation
    monitor.on_validation_end(trainer, None)
    monitor.on_train_batch_start(trainer, None, None, 1)
    clock.now = 5.0
    monitor.on_train_batch_end(trainer, None, None, batch(2, 6), 1)
    rates = monitor.fit_rates(world_size=2)  # each of 2 ranks saw its own 4 samples
    assert rates == {"seconds_total": 5.0, "seconds_validation": 3.0, "train_samples_per_sec": 4.0, "train_tokens_per_sec": 16.0}


def test_a_run_report_without_its_throughput_partner_is_one_line_before_the_fit():
    with pytest.raises(ResumenError, match="Throughput"):
        RunReport().setup(SimpleNamespace(), None, "fit")
    RunReport().setup(SimpleNamespace(), None, "test")  # test reports no training rates
