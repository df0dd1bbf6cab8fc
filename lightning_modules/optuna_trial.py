"""One Optuna trial inside a normal fit (scripts/tune.py adds this callback to each trial's command line): the
validation score of every epoch is reported to the study, a trial the pruner gives up on stops like a run that is
done (its best checkpoint is exported), and the outcome is stored with the trial (its ``outcome`` user attribute),
where the search reads it: in the study itself, wherever the study lives, never in a shared temporary folder.

Our own rather than optuna-integration's PyTorchLightningPruningCallback: that one needs the Trial object (a
config file cannot give one) and raises TrialPruned inside fit, which the CLI would report as a failed run.
"""

from __future__ import annotations

import math

import lightning as L

from resumen.core.contract import summarizer_results

OUTCOME = "outcome"  # the trial's user attribute the search reads


class OptunaTrial(L.Callback):
    def __init__(
        self,
        storage: str,
        study_name: str,
        trial_number: int,
        monitor: str = "val/rougeL",
        mode: str = "max",
        prune: bool = True,
        startup_trials: int = 2,
        warmup_epochs: int = 1,
    ) -> None:
        """Report to trial ``trial_number`` of the study ``study_name`` in ``storage`` (any Optuna storage URL).

        Args:
            storage: the study's storage, e.g. ``sqlite:///study.db``.
            study_name: the study's name in that storage.
            trial_number: the trial this run is (its ``number``); its outcome (best score, epochs, pruned, run
                directory) is stored with it.
            monitor: the validation metric reported each epoch.
            mode: ``max`` when higher is better (ROUGE), ``min`` when lower is (loss).
            prune: stop the trial when Optuna's median pruner says so (it compares each epoch with the median of
                the earlier trials at that epoch).
            startup_trials: trials that always run to the end before any is pruned.
            warmup_epochs: epochs of each trial that are never pruned.
        """
        self.storage, self.study_name, self.trial_number = storage, study_name, trial_number
        self.monitor = monitor
        self.sign = 1.0 if mode == "max" else -1.0
        self.prune, self.startup_trials, self.warmup_epochs = prune, startup_trials, warmup_epochs
        self.best = -math.inf  # in the sign's direction: larger is better
        self.pruned_at: int | None = None
        self._trial = None

    def _optuna_trial(self):
        if self._trial is None:
            import optuna

            # the pruner is not stored with a study: the search's own settings come here as arguments
            pruner = (
                optuna.pruners.MedianPruner(n_startup_trials=self.startup_trials, n_warmup_steps=self.warmup_epochs)
                if self.prune
                else optuna.pruners.NopPruner()
            )
            study = optuna.load_study(study_name=self.study_name, storage=self.storage, pruner=pruner)
            trial_id = next(t._trial_id for t in study.get_trials(deepcopy=False) if t.number == self.trial_number)
            self._trial = optuna.trial.Trial(study, trial_id)
        return self._trial

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        self.best = max(self.best, self.sign * value)
        prune = False
        if trainer.is_global_zero:  # one rank talks to the study; every rank follows its decision
            trial = self._optuna_trial()
            epoch = trainer.current_epoch
            if epoch not in trial.storage.get_trial(trial._trial_id).intermediate_values:  # a resumed epoch: once
                trial.report(value, epoch)
            prune = trial.should_prune()
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned_at = trainer.current_epoch
            trainer.should_stop = True  # ends like a finished run: the best epoch so far is exported

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        from resumen.lightning_modules.run_files import log_dir

        # the run's own history (it travels in checkpoints): a resumed trial's best counts the epochs before the stop
        scored = summarizer_results(pl_module)
        epochs = scored.val_history.values() if scored is not None else []
        history = [self.sign * m[self.monitor] for m in epochs if self.monitor in m]
        best = max([*history, self.best])
        result = {
            "trial": self.trial_number,
            "best": self.sign * best if best > -math.inf else None,
            "pruned_at_epoch": self.pruned_at,
            "epochs": trainer.current_epoch,
            "run": str(log_dir(trainer)),
        }
        self._optuna_trial().set_user_attr(OUTCOME, result)
