"""The best checkpoint: ties on ROUGE-L go to the lower val/loss, and the run report says which epoch and why."""

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from resumen.lightning_modules.best_checkpoint import BestCheckpoint
from resumen.lightning_modules.run_report import best_epoch, format_report


class ScriptedScores(BoringModel):
    """Logs a scripted val/rougeL and val/loss per epoch, and keeps the history the run report reads."""

    def __init__(self, rouge: list[float], loss: list[float]) -> None:
        super().__init__()
        self.scripted_rouge, self.scripted_loss, self.val_history = rouge, loss, {}

    def validation_step(self, batch, batch_idx):
        return None

    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            return
        epoch = self.current_epoch
        metrics = {"val/rougeL": self.scripted_rouge[epoch], "val/loss": self.scripted_loss[epoch]}
        self.log_dict({k: torch.tensor(v) for k, v in metrics.items()})
        self.val_history[epoch] = metrics


def fit(tmp_path, rouge, loss, **checkpoint_args):
    callback = BestCheckpoint(dirpath=tmp_path, filename="best-{epoch}", **checkpoint_args)
    module = ScriptedScores(rouge, loss)
    trainer = L.Trainer(
        max_epochs=len(rouge),
        limit_train_batches=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    trainer.fit(module)
    return trainer, callback, module


def test_a_tie_on_rouge_goes_to_the_lower_loss(tmp_path):
    trainer, callback, module = fit(tmp_path, rouge=[0, 0, 0, 0], loss=[28.3, 20.0, 12.4, 13.0])
    assert callback.best_model_path.endswith("best-epoch=3.ckpt")  # names count epochs from 1: the third, not the untrained first
    assert sorted(p.name for p in tmp_path.glob("best-*.ckpt")) == ["best-epoch=3.ckpt"]
    report = best_epoch(trainer, module.val_history)
    assert report["best_epoch"] == 3 and "lowest val/loss" in report["best_reason"]  # epochs counted from 1
    assert report["first_epoch"] == 1 and report["first_metrics"]["val/loss"] == pytest.approx(28.3)


def test_a_higher_rouge_still_wins_over_a_lower_loss(tmp_path):
    _, callback, _ = fit(tmp_path, rouge=[0, 5, 5, 3], loss=[28.3, 20.0, 15.0, 9.0])
    assert callback.best_model_path.endswith("best-epoch=3.ckpt")  # 5 ties with epoch 2 (from 1): lower loss; 3 < 5 loses


def test_without_a_tie_breaker_the_first_of_equal_scores_wins(tmp_path):
    trainer, callback, module = fit(tmp_path, rouge=[0, 0, 0], loss=[3.0, 2.0, 1.0], tie_breaker=None)
    assert callback.best_model_path.endswith("best-epoch=1.ckpt")


def test_top_k_keeps_the_lower_losses_among_ties(tmp_path):
    _, callback, _ = fit(tmp_path, rouge=[0, 0, 0, 0], loss=[4.0, 2.0, 3.0, 1.0], save_top_k=2)
    assert sorted(p.name for p in tmp_path.glob("best-*.ckpt")) == ["best-epoch=2.ckpt", "best-epoch=4.ckpt"]
    assert callback.best_model_path.endswith("best-epoch=4.ckpt")


def test_selecting_by_loss_as_the_course_does(tmp_path):
    _, callback, _ = fit(tmp_path, rouge=[9, 1, 5], loss=[3.0, 1.0, 2.0], monitor="val/loss", mode="min", tie_breaker=None)
    assert callback.best_model_path.endswith("best-epoch=2.ckpt")


def test_tie_values_survive_a_resume(tmp_path):
    _, callback, _ = fit(tmp_path, rouge=[0, 0], loss=[5.0, 4.0])
    restored = BestCheckpoint(dirpath=tmp_path, filename="best-{epoch}")
    restored.load_state_dict(callback.state_dict())
    assert restored.tie_values == callback.tie_values and restored.best_model_path == callback.best_model_path


def test_run_report_prints_first_and_best_side_by_side(tmp_path):
    trainer, _, module = fit(tmp_path, rouge=[0, 7.5, 7.5], loss=[28.3, 14.0, 12.45])
    report = {
        "interrupted": False,
        "epochs": 3,
        "steps": 3,
        "seconds_total": 1.0,
        "seconds_validation": 0.1,
        "train_samples_per_sec": 1.0,
        "train_tokens_per_sec": 1.0,
        "peak_memory": {"process_rss_gib": 0.5},
        **best_epoch(trainer, module.val_history),
    }
    text = format_report(report)
    assert "at epoch 3" in text and "tied on val/rougeL with epoch(s) 2; lowest val/loss of them" in text  # from 1
    first = next(line for line in text.splitlines() if line.strip().startswith("first (1)"))
    best = next(line for line in text.splitlines() if line.strip().startswith("best (3)"))
    assert first.split()[2:] == ["28.30", "0.00"] and best.split()[2:] == ["12.45", "7.50"]
