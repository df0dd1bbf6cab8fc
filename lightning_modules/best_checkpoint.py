"""The best checkpoint, with ties broken honestly.

Lightning's ``ModelCheckpoint`` keeps the first of equal scores. ROUGE ties often: at 0 while a model is still
learning to write, and on small validation sets where several epochs generate the same summaries. The first epoch
then wins although its loss is the worst. ``BestCheckpoint`` gives a tie to the better ``tie_breaker`` (by default
the lower ``val/loss``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from resumen.core.runs import epoch_number


def checkpoint_rank(value: float, mode: str, tie: float | None, tie_mode: str) -> tuple[float, float]:
    """How good a checkpoint is, higher is better: its monitored value, then its tie-breaker (missing or NaN
    loses every tie). ``BestCheckpoint`` and the run report rank with this one rule."""
    main = float(value) if mode == "max" else -float(value)
    if tie is None or tie != tie:
        return main, float("-inf")
    return main, -tie if tie_mode == "min" else tie


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ties on ``monitor`` go to the better ``tie_breaker`` metric."""

    def __init__(
        self,
        dirpath: str | None = None,
        filename: str | None = None,
        monitor: str | None = "val/rougeL",
        verbose: bool = False,
        save_last: bool | Literal["link"] | None = None,
        save_top_k: int = 1,
        save_on_exception: bool = False,
        save_weights_only: bool = False,
        mode: Literal["min", "max"] = "max",
        auto_insert_metric_name: bool = True,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        enable_version_counter: bool = True,
        tie_breaker: str | None = "val/loss",
        tie_breaker_mode: Literal["min", "max"] = "min",
    ) -> None:
        """Best-checkpoint settings (all but the last two are ``ModelCheckpoint``'s own).

        Args:
            dirpath: directory for the checkpoints (default: ``<run dir>/checkpoints``).
            filename: checkpoint file name pattern, e.g. ``best-epoch{epoch:02d}-rougeL{val/rougeL:.2f}``.
            monitor: the metric that picks the best checkpoint. Select by loss, as the course's
                ``load_best_model_at_end`` does, with ``monitor=val/loss`` and ``mode=min``.
            verbose: print each save decision.
            save_last: also keep ``last.ckpt`` (resumen's ``last_checkpoint`` callback does it every epoch).
            save_top_k: how many best checkpoints to keep (-1 all, 0 none).
            save_on_exception: also save when training raises.
            save_weights_only: save the model weights only (no optimizer state: such a checkpoint cannot resume).
            mode: ``max`` when a higher ``monitor`` is better (ROUGE), ``min`` when lower is (loss).
            auto_insert_metric_name: let Lightning put ``name=`` before each metric in ``filename``.
            every_n_train_steps: check every N training steps instead of at validation.
            train_time_interval: check at this interval of training time.
            every_n_epochs: check every N epochs.
            save_on_train_epoch_end: check at the end of the training epoch instead of after validation.
            enable_version_counter: add ``-v1``, ``-v2`` ... to a name that already exists.
            tie_breaker: the metric that decides between checkpoints with equal ``monitor`` (null: the first wins).
            tie_breaker_mode: ``min`` when a lower ``tie_breaker`` is better (loss), ``max`` when higher is.
        """
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor=monitor,
            verbose=verbose,
            save_last=save_last,
            save_top_k=save_top_k,
            save_on_exception=save_on_exception,
            save_weights_only=save_weights_only,
            mode=mode,
            auto_insert_metric_name=auto_insert_metric_name,
            every_n_train_steps=every_n_train_steps,
            train_time_interval=train_time_interval,
            every_n_epochs=every_n_epochs,
            save_on_train_epoch_end=save_on_train_epoch_end,
            enable_version_counter=enable_version_counter,
        )
        self.tie_breaker = tie_breaker
        self.tie_breaker_mode = tie_breaker_mode
        self.tie_values: dict[str, float] = {}  # checkpoint path -> its tie_breaker value
        self._candidates: dict[str, Any] = {}

    # ---------------------------------------------------------------------------------------- decisions
    def format_checkpoint_name(self, metrics: dict[str, torch.Tensor], filename: str | None = None, ver: int | None = None, prefix: str | None = None) -> str:
        """``{epoch}`` in a name counts from 1, as the console and the run report do (``best-epoch01-...`` is the
        first epoch; Lightning's own counter starts at 0)."""
        if "epoch" in metrics:
            metrics = {**metrics, "epoch": epoch_number(int(metrics["epoch"]))}
        return super().format_checkpoint_name(metrics, filename, ver, prefix)

    def _save_monitor_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        self._candidates = monitor_candidates  # check_monitor_top_k is not given them
        super()._save_monitor_checkpoint(trainer, monitor_candidates)

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        if super().check_monitor_top_k(trainer, current):
            return True
        if current is None or self.save_top_k < 1 or len(self.best_k_models) < self.save_top_k:
            return False
        # not strictly better on the monitor: it wins only an exact tie with the better tie-breaker
        wins_tie = self._rank(current, self._tie_value()) > self._rank_path(self.kth_best_model_path)
        return trainer.strategy.reduce_boolean_decision(wins_tie)  # every rank must agree, as in Lightning's own

    def _update_best_and_save(self, current: torch.Tensor, trainer: L.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        super()._update_best_and_save(current, trainer, monitor_candidates)
        saved = list(self.best_k_models)[-1]  # the entry just inserted
        value = self._tie_value()
        if value is not None:
            self.tie_values[saved] = value
        self.tie_values = {path: v for path, v in self.tie_values.items() if path in self.best_k_models}
        self._rerank()

    def _rerank(self) -> None:
        """Best and k-th by (monitor, tie_breaker): Lightning's own pick keeps the first of equal scores.

        The checkpoint file just written holds Lightning's pick; the ``last.ckpt`` written after it holds this one.
        """
        if not self.best_k_models:
            return
        self.best_model_path = max(self.best_k_models, key=self._rank_path)
        self.best_model_score = self.best_k_models[self.best_model_path]
        if len(self.best_k_models) == self.save_top_k:
            self.kth_best_model_path = min(self.best_k_models, key=self._rank_path)
            self.kth_value = self.best_k_models[self.kth_best_model_path]

    def _tie_value(self) -> float | None:
        value = self._candidates.get(self.tie_breaker) if self.tie_breaker else None
        return None if value is None else float(value)

    def _rank(self, value: Any, tie: float | None) -> tuple[float, float]:
        return checkpoint_rank(value, self.mode, tie, self.tie_breaker_mode)

    def _rank_path(self, path: str) -> tuple[float, float]:
        return self._rank(self.best_k_models[path], self.tie_values.get(path))

    # ------------------------------------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "tie_breaker": self.tie_breaker, "tie_values": dict(self.tie_values)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if state_dict.get("dirpath", self.dirpath) == self.dirpath and state_dict.get("tie_breaker") == self.tie_breaker:
            self.tie_values = dict(state_dict.get("tie_values", {}))
