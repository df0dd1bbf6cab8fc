"""Fine-tune, evaluate and run a Spanish news summariser with LightningCLI.

    python scripts/train.py fit --config configs/demo.yaml
    python scripts/train.py test --config configs/demo.yaml       # uses the best checkpoint of the latest run
    python scripts/train.py predict --config configs/demo.yaml --data.predict_file articles.txt
    python scripts/train.py fit --config configs/mlsum_flan_t5_small.yaml --config configs/trainer/ddp.yaml

``validate``/``test``/``predict`` default to the best checkpoint of the newest run under the logger's directory;
``--ckpt_path PATH`` picks another and ``--ckpt_path pretrained`` evaluates the model as loaded (no fine-tuning).
``fit --ckpt_path last`` resumes the newest run's ``last.ckpt`` into that run's directory (step, epoch, optimizer,
scheduler, data position and RNG), refusing a run of another configuration; ``--ckpt_path auto`` resumes the newest
run of this configuration when there is one and starts a new run otherwise (for requeued cluster jobs).
A run stopped by SIGTERM/SIGUSR1 saves ``last.ckpt`` and exits with code 143.
Set RESUMEN_DEBUG=1 (or pass --debug) to see full tracebacks.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any


import yaml
from lightning.pytorch.loggers import CSVLogger
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from resumen.core.checkpoint_file import read_checkpoint_metadata
from resumen.core.errors import StopRequested
from resumen.core.prompts import parse_template
from resumen.core.runs import RunLayout, forget_decision, received_decision, share_decision, unlock_run
from resumen.core.torch_settings import apply_torch_settings
from resumen.datamodules.summarization import SummarizationDataModule
from resumen.lightning_modules import fit_callbacks
from resumen.lightning_modules.graceful_stop import GracefulStop
from resumen.lightning_modules.callbacks import HFExport, JsonlPredictionWriter
from resumen.lightning_modules.checkpoints import AtomicCheckpointIO, check_any_checkpoint, saved_module_settings
from resumen.lightning_modules.run_files import RunConfigWriter, keep_csv_history, log_dir, use_run_version
from resumen.lightning_modules.run_report import RunReport
from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer
from resumen.lightning_modules.training_monitors import SampleSummaries
from resumen.app.cli_checks import (
    CKPT_KEYWORDS,
    CKPT_PATH_HELP,
    DEFAULT_CHECKPOINT_NAME,
    check_before_loading,
    refuse_moved_options,
    refuse_optimizer_options,
)
from resumen.app.cli_support import main_guard
from resumen.app.recipes import with_recipes
from resumen.app.resume import evaluation_decision, fit_decision, run_root

CHECKPOINT_DEFAULTS = {
    "checkpoint.monitor": "val/rougeL",
    "checkpoint.mode": "max",
    "checkpoint.save_last": False,  # LastCheckpoint keeps last.ckpt fresh every epoch
    "checkpoint.save_top_k": 1,
    "checkpoint.filename": DEFAULT_CHECKPOINT_NAME,
    "checkpoint.auto_insert_metric_name": False,
}


class ResumenCLI(LightningCLI):
    """LightningCLI where data and model meet: the hooks check, connect and choose checkpoints by delegating."""

    _finished_reason: str | None = None
    _run: RunLayout | None = None  # the run this process decided on (and, for fit, locked)
    _followed: RunLayout | None = None  # validate/test/predict: the fitted run whose settings they took
    _explicit: frozenset = frozenset()  # the options given on the command line

    # ------------------------------------------------------------------------------------------ parsing
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("model.model_name_or_path", "data.tokenizer_name")
        parser.link_arguments("model.trust_remote_code", "data.trust_remote_code")
        parser.link_arguments("model.extend_vocabulary", "data.extend_vocabulary")
        for group, callback in fit_callbacks.CONFIGURABLE.items():
            parser.add_lightning_class_args(callback, group)
        parser.set_defaults(CHECKPOINT_DEFAULTS)

    def __init__(self, *, args: list[str] | None = None, **settings: Any) -> None:
        if args is None:  # --config NAME: a shipped recipe when no such file exists (resumen.app.recipes)
            sys.argv[1:] = with_recipes(sys.argv[1:])
        else:
            args = with_recipes(list(args))
        self._building = running_subcommand(list(sys.argv[1:] if args is None else args))
        super().__init__(args=args, **settings)

    def _prepare_subcommand_parser(self, klass, subcommand, **kwargs):
        if self._building not in (None, subcommand):
            # Only the subcommand being run needs its options: each full parser takes 0.4 s to build (the signatures
            # of every class), a quarter of a fit's start-up on a slow CPU. The others only name themselves in --help.
            return self.init_parser(**kwargs)
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        for action in parser._actions:  # Lightning's help for ckpt_path describes Lightning's values, not ours
            if action.dest == "ckpt_path":
                action.help = CKPT_PATH_HELP[subcommand]
        return parser

    def parse_arguments(self, parser, args) -> None:
        argv = list(sys.argv[1:] if args is None else args)
        refuse_optimizer_options(argv)
        refuse_moved_options(argv)
        super().parse_arguments(parser, argv)
        self._explicit = explicit_options(argv)
        refuse_security_settings_from_files(self.config, self._explicit)
        followed = run_to_follow(self.config)
        if followed is not None:  # validate/test/predict of a fitted run: its settings, then this command's options
            self._followed = followed
            super().parse_arguments(parser, with_run_settings(argv, followed))

    def _parse_ckpt_path(self) -> None:
        """A --ckpt_path file's module settings become the config's (as LightningCLI does), after the file is checked,
        without the settings that choose code: its ``trust_remote_code`` and class path are never taken."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or ckpt_path in CKPT_KEYWORDS:
            return
        check_any_checkpoint(ckpt_path)  # a text file or a damaged copy is one line, not a KeyError from torch.load
        if not Path(ckpt_path).is_file():  # a sharded directory: settings come from the config
            return
        if self._followed is not None:  # the run's config already gave the settings; the command line wins over it
            return
        settings = saved_module_settings(read_checkpoint_metadata(ckpt_path))
        settings = {k: v for k, v in settings.items() if f"model.{k}" not in self._explicit}  # a flag given here wins
        if settings:
            self.config = self.parser.parse_object({subcommand: {"model": settings}}, self.config)

    # ---------------------------------------------------------------------------------- instantiation
    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.trainer.enable_progress_bar is False:
            # Lightning refuses a progress-bar callback with the bar off; a log-only run (SLURM) should not fail.
            defaults = self.trainer_defaults.get("callbacks", [])
            self.trainer_defaults["callbacks"] = [c for c in defaults if "ProgressBar" not in type(c).__name__]
        check_before_loading(config, self.subcommand)

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        # Data and model meet here: one tokenizer object, and the template an exported model was trained with.
        self.datamodule.connect(self.model.vocabulary, self.model.trained_prompt_template)
        self.trainer.callbacks.extend(fit_callbacks.fixed_callbacks(progress_bar=self.trainer.progress_bar_callback is not None))
        fit_callbacks.connect(self.trainer.callbacks)
        apply_torch_settings(self.trainer.strategy.root_device, self.model.hparams.allow_tf32)
        report = self._report()
        if report is not None:
            report.defer_printing = True
        strategy = self.trainer.strategy  # checkpoints are written next to their target and renamed into place
        if type(strategy.checkpoint_io) is TorchCheckpointIO:
            strategy.checkpoint_io = AtomicCheckpointIO()

    # ---------------------------------------------------------------------------------------- commands
    def before_fit(self) -> None:
        kwargs = self._weights_only("fit")
        decision = self._shared_decision(lambda: self._fit_decision(kwargs.get("ckpt_path")))
        kwargs["ckpt_path"] = decision["ckpt_path"]
        self._finished_reason = decision.get("finished")
        if decision.get("resumed"):
            for each in self.trainer.loggers:  # a CSV logger keeps the rows logged before the interruption
                if isinstance(each, CSVLogger):
                    keep_csv_history(each)
            fit_callbacks.mark_resuming(self.trainer.callbacks)  # the export of the run being resumed may be replaced
        self._restore_vocabulary(kwargs["ckpt_path"])

    def _fit_decision(self, ckpt_path: str | None) -> dict:
        parser = self._parser("fit")
        current = yaml.safe_load(parser.dump(self.config["fit"], skip_none=False))
        defaults = yaml.safe_load(parser.dump(parser.get_defaults(), skip_none=False, skip_validation=True))
        checkpoint_dirpath = self.config["fit"].get("checkpoint", {}).get("dirpath")
        # (a path given on the command line was already checked by _parse_ckpt_path)
        return fit_decision(self.trainer, current, checkpoint_dirpath, ckpt_path, defaults)

    def _shared_decision(self, decide, log_subdir: str | None = None) -> dict:
        """Rank 0 decides (and locks or claims the run); the other ranks receive its decision, not their own.
        ``log_subdir``: the command logs in a directory of its own inside the run (``version_N/test``)."""
        root = run_root(self.trainer)
        decision = received_decision(root) if root is not None else None
        if decision is None:
            decision = decide()
            if root is not None:
                share_decision(root, decision)
            self._run = RunLayout(root / f"version_{decision['version']}") if decision.get("version") is not None else None
        if decision.get("version") is not None:
            version = decision["version"] if log_subdir is None else f"version_{decision['version']}/{log_subdir}"
            use_run_version(self.trainer, version)
        return decision

    def fit(self, model, datamodule=None, ckpt_path=None, weights_only=None, **kwargs) -> None:
        """``Trainer.fit``, unless the run to resume is already finished; a preempted fit exits with 143."""
        if self._finished_reason:
            rank_zero_info(
                f"Nothing to resume: {Path(ckpt_path).parent.parent} is finished ({self._finished_reason}). "
                "Raise --trainer.max_epochs (or max_steps) to train it longer; its export is in that directory."
            )
            self._release_run()
            return
        self._stopping(self.trainer.fit, model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=weights_only, **kwargs)

    def validate(self, **kwargs) -> Any:
        return self._stopping(self.trainer.validate, **kwargs)

    def test(self, **kwargs) -> Any:
        kwargs["verbose"] = False  # the scores are printed once, with their intervals (after_test)
        return self._stopping(self.trainer.test, **kwargs)

    def predict(self, **kwargs) -> Any:
        return self._stopping(self.trainer.predict, **kwargs)

    def _stopping(self, command, *args, **kwargs) -> Any:
        """Run a trainer command, recording the run's status; a stop by signal ends the process with 143 (130 for
        Ctrl-C) on every rank. A new fit that fails before its first step leaves no run directory behind."""
        fitting = command == self.trainer.fit
        run = self._run if fitting else None
        if run is not None:
            run.write_status("running")
        try:
            result = command(*args, **kwargs)
        except (SIGTERMException, StopRequested) as stopped:
            stop = fit_callbacks.one(self.trainer.callbacks, GracefulStop)
            if run is not None:
                if self.trainer.global_step == 0 and not self._resumed_run():
                    shutil.rmtree(run.directory, ignore_errors=True)  # stopped before its first step: nothing to list
                else:
                    run.write_status("preempted", step=self.trainer.global_step)
            self._release_run()
            if isinstance(stopped, StopRequested):  # before any batch: main_guard says so in one line
                raise
            raise SystemExit(stop.exit_code if stop is not None else 143) from None
        except BaseException as error:
            if run is not None:
                if self.trainer.global_step == 0 and not self._resumed_run():
                    shutil.rmtree(run.directory, ignore_errors=True)  # it trained nothing: no empty run is listed
                else:
                    first_line = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
                    run.write_status("failed", step=self.trainer.global_step, error=first_line)
            self._release_run()
            raise
        if run is not None:
            run.write_status("finished", step=self.trainer.global_step)
        self._release_run()
        return result

    def _resumed_run(self) -> bool:
        return bool(self.config_init[self.subcommand].get("ckpt_path"))

    def _release_run(self) -> None:
        if self._run is not None:
            unlock_run(self._run)
        forget_decision()

    def _evaluate_with_best(self, subcommand: str) -> None:
        kwargs = self._weights_only(subcommand)
        name = self.model.hparams.model_name_or_path
        decision = self._shared_decision(lambda: evaluation_decision(self.trainer, kwargs.get("ckpt_path"), name), subcommand)
        self._run = None  # evaluation does not lock the run it writes into
        settings = "its settings (config.yaml, options given here on top)" if self._followed is not None else "this command's settings"
        checkpoint_name = Path(decision["ckpt_path"]).name if decision["ckpt_path"] else f"no checkpoint: {name} as loaded"
        rank_zero_info(f"{subcommand.capitalize()}: run {decision.get('run') or '(none)'} with {settings}; {checkpoint_name}.")
        checkpoint = self.trainer.checkpoint_callback
        if checkpoint is not None and checkpoint.dirpath is None and (decision["ckpt_path"] or decision.get("run")):
            # the checkpoint's own folder: its restored callback state then matches (no "dirpath has changed"
            # warning); evaluation saves no checkpoints
            source = Path(decision["ckpt_path"]).parent if decision["ckpt_path"] else RunLayout(Path(decision["run"])).checkpoints
            checkpoint.dirpath = str(source)
        kwargs["ckpt_path"] = decision["ckpt_path"]
        self._restore_vocabulary(kwargs["ckpt_path"])

    def before_validate(self) -> None:
        self._evaluate_with_best("validate")

    def before_test(self) -> None:
        self._evaluate_with_best("test")

    def before_predict(self) -> None:
        self._evaluate_with_best("predict")

    def _weights_only(self, subcommand: str) -> dict:
        kwargs = self.config_init[subcommand]
        if kwargs.get("weights_only") is None:  # our checkpoints hold tensors and plain values: unpickle nothing else
            kwargs["weights_only"] = True
        return kwargs

    def _restore_vocabulary(self, ckpt_path: str | None) -> None:
        """A checkpoint's added characters fix the shared tokenizer before the data is tokenised."""
        if ckpt_path and Path(ckpt_path).is_file():
            self.model.vocabulary.restore(ckpt_path)

    # ----------------------------------------------------------------------------------------- reports
    # Printed once the command returned: the progress bar is gone, so its last redraw cannot overwrite them.
    def _report(self) -> RunReport | None:
        return fit_callbacks.one(self.trainer.callbacks, RunReport)

    def after_fit(self) -> None:
        if self._finished_reason:
            return
        report = self._report()
        checkpoint = self.trainer.checkpoint_callback
        lines = [report.text] if report is not None and report.text else []
        lines.append(logs_line(self.trainer))
        if checkpoint is not None and checkpoint.best_model_path and checkpoint.best_model_score is not None:
            lines.append(f"Best checkpoint ({checkpoint.monitor}={float(checkpoint.best_model_score):.2f}): {checkpoint.best_model_path}")
        export = fit_callbacks.one(self.trainer.callbacks, HFExport)
        lines += [f"Hugging Face export: {export.exported_to}"] if export is not None and export.exported_to else []
        rank_zero_info("\n".join(lines))

    def after_test(self) -> None:
        report = self._report()
        lines = [report.test_text] if report is not None and report.test_text else []
        instruction = " ".join(parse_template(self.datamodule.prompt_template).prefix.split())
        lines += sample_lines([(article.removeprefix(instruction).strip(), summary, reference) for article, reference, summary in self._samples().test])
        lines.append(logs_line(self.trainer))
        rank_zero_info("\n".join(lines))

    def _samples(self) -> SampleSummaries:
        samples = fit_callbacks.one(self.trainer.callbacks, SampleSummaries)
        assert samples is not None  # a fixed callback
        return samples

    def after_predict(self) -> None:
        callback = fit_callbacks.one(self.trainer.callbacks, JsonlPredictionWriter)
        if callback is not None and callback.written_to and callback.written_to.is_file():
            rows = [json.loads(line) for line in callback.written_to.read_text(encoding="utf-8").splitlines()[:3]]
            articles = self.datamodule.first_articles("predict", len(rows))
            lines = sample_lines([(article, row["summary"], row.get("reference")) for article, row in zip(articles, rows)])
            rank_zero_info("\n".join(lines + [f"Predictions: {callback.written_to}"]))


def refuse_security_settings_from_files(config: Any, explicit: frozenset) -> None:
    """``trust_remote_code`` runs a model directory's Python files: only a flag on this command line turns it on,
    never a config file (``--config``, ``--model FILE``), which anyone may have handed the user."""
    from resumen.core.errors import ResumenError
    from resumen.core.loading import SECURITY_SETTINGS

    subcommand = config.get("subcommand")
    section = (config[subcommand] if subcommand else config).get("model") or {}
    for name in sorted(SECURITY_SETTINGS):
        if section.get(name) and f"model.{name}" not in explicit:
            raise ResumenError(
                f"a config file sets model.{name}: true, which lets the model's own Python files run; "
                f"a file cannot turn that on: pass --model.{name}=true on the command line if you trust "
                "the model, or remove the line."
            )


def explicit_options(argv: list[str]) -> frozenset:
    """The dotted options a command line gives (``--model.generation.num_beams=4``, ``--data.batch_size 2``): they win."""
    return frozenset(arg[2:].split("=", 1)[0] for arg in argv if arg.startswith("--") and "." in arg.split("=", 1)[0])


# Link targets are set from the model's options; the security setting is never taken from a file (the command line
# turns it on).
NOT_FOLLOWED = {"tokenizer_name", "trust_remote_code", "extend_vocabulary"}


def run_to_follow(config: Any) -> RunLayout | None:
    """The fitted run a validate/test/predict evaluates: the run of an explicit checkpoint, or the newest run with a
    best checkpoint under the logger's directory (--ckpt_path best, the default); None for a pretrained model."""
    from resumen.core.runs import list_runs
    from resumen.app.resume import run_of_checkpoint

    subcommand = config.get("subcommand")
    if subcommand not in ("validate", "test", "predict"):
        return None
    ckpt_path = config[subcommand].get("ckpt_path")
    if ckpt_path == "pretrained":
        return None
    if ckpt_path and ckpt_path != "best":
        run = run_of_checkpoint(Path(ckpt_path))
        return run if run is not None and run.read_config() else None
    root = logger_root(config[subcommand].get("trainer", {}).get("logger"))
    if root is None:
        return None
    return next((run for run in reversed(list_runs(root)) if run.best() is not None and run.read_config()), None)


def logger_root(logger: Any) -> Path | None:
    """``save_dir/name`` of a logger's config (its first, if a list), or None when it cannot be told."""
    if isinstance(logger, list):
        logger = logger[0] if logger else None
    init = logger.get("init_args") if hasattr(logger, "get") else None
    if not init or not init.get("save_dir"):
        return None
    return Path(init["save_dir"]) / (init.get("name") or "lightning_logs")


def with_run_settings(argv: list[str], run: RunLayout) -> list[str]:
    """The command line with the run's model and data settings between its config files and its other options."""
    saved = run.read_config() or {}
    settings = {section: {k: v for k, v in (saved.get(section) or {}).items() if k not in NOT_FOLLOWED} for section in ("model", "data")}
    subcommand, rest = argv[0], argv[1:]
    configs, others, i = [], [], 0
    while i < len(rest):
        arg = rest[i]
        if arg in ("--config", "-c") and i + 1 < len(rest):
            configs += rest[i : i + 2]
            i += 2
            continue
        (configs if arg.startswith("--config=") else others).append(arg)
        i += 1
    return [subcommand, *configs, "--config", yaml.safe_dump(settings, allow_unicode=True), *others]


def sample_lines(samples: list[tuple[str, str, str | None]]) -> list[str]:
    """Two or three summaries beside their article's opening and the reference: what the model writes."""
    lines = []
    for i, (article, summary, reference) in enumerate(samples[:3], start=1):
        start = " ".join(article.split())[:100]
        lines += [f"Sample {i}: {start}{'…' if len(article) > 100 else ''}", f"  summary:   {summary}"]
        if reference:
            lines.append(f"  reference: {reference}")
    return lines


def logs_line(trainer) -> str:
    """Where the logs are, with the TensorBoard command only when a TensorBoard logger wrote them."""
    from lightning.pytorch.loggers import TensorBoardLogger

    directory = log_dir(trainer)  # no collective: this line is printed by rank 0 alone
    root = Path(trainer.logger.root_dir) if trainer.logger is not None and trainer.logger.root_dir else directory.parent
    if any(isinstance(logger, TensorBoardLogger) for logger in trainer.loggers):
        return f"Logs (tensorboard --logdir {root.parent}): {directory}"
    return f"Logs: {directory}"


def trainer_defaults() -> dict:
    from jsonargparse import lazy_instance
    from lightning.pytorch.callbacks import LearningRateMonitor, RichProgressBar
    from lightning.pytorch.loggers import TensorBoardLogger

    return {
        "logger": lazy_instance(TensorBoardLogger, save_dir="runs", name="resumen", default_hp_metric=False),
        "callbacks": [lazy_instance(LearningRateMonitor, logging_interval="step"), lazy_instance(RichProgressBar)],
        # the module prints its parameter count in one line; Lightning's table adds layer rows and FLOPs columns
        "enable_model_summary": False,
    }


def running_subcommand(argv: list[str]) -> str | None:
    """The subcommand a command line runs when it comes first (``fit --config ...``, as every documented command
    does); None otherwise (``--help``, options before it), and then every subcommand's parser is built."""
    return argv[0] if argv and argv[0] in LightningCLI.subcommands() else None


def cli_main(args: list[str] | None = None, run: bool = True) -> ResumenCLI:
    """Build the CLI (``args`` instead of ``sys.argv`` when given) and run its subcommand."""
    return ResumenCLI(
        model_class=Seq2SeqSummarizer,
        datamodule_class=SummarizationDataModule,
        trainer_defaults=trainer_defaults(),
        save_config_callback=RunConfigWriter,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False},  # a config error is one line (main_guard), not 110 lines of usage
        auto_configure_optimizers=False,  # the module's configure_optimizers is the one (parameter groups, schedule)
        args=args,
        run=run,
    )


def main() -> None:
    """Console entry point: one-line errors, exit code 2; a stop signal before any batch is one line, exit 143."""
    from resumen.lightning_modules.graceful_stop import install_early, signal_after_the_work

    install_early()
    try:
        main_guard(cli_main)
    finally:
        end_distributed()
    late = signal_after_the_work()
    if late is not None:
        print(f"note: {late} arrived after the last batch: the work above is complete and written.", file=sys.stderr)


def end_distributed() -> None:
    """Shut the process group down before the interpreter exits: left to interpreter shutdown, gloo's threads were
    sometimes destroyed while joinable, and the process aborted (SIGABRT) after its work was done."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def cli() -> None:
    """Console entry point (resumen-train)."""
    main()


if __name__ == "__main__":
    cli()
