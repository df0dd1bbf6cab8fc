"""What a user needs to judge a finished run: hparams with final metrics in TensorBoard, and an end-of-fit report."""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from resumen.core.contract import data_settings, summarization_data, summarizer_results
from resumen.core.files import atomic_file
from resumen.core.rouge import CONFIDENCE, LITERATURE_SCORER, RESAMPLES, SEED
from resumen.core import summary_metrics
from resumen.core.runs import RunLayout, epoch_number
from resumen.lightning_modules.best_checkpoint import checkpoint_rank
from resumen.lightning_modules.early_stopping import OptionalEarlyStopping
from resumen.lightning_modules.run_files import run_dir
from resumen.lightning_modules.training_monitors import Throughput

# Validation metrics shown in TensorBoard's HParams tab, taken from the best epoch (the checkpoint monitor's): the
# loss, the headline metrics of resumen.core.summary_metrics, and the generated length in tokens.
HPARAM_METRICS = ("val/loss", *(f"val/{key}" for key in summary_metrics.HEADLINE), "val/gen_len")
# the console's first-vs-best table: the loss and ROUGE
FIRST_AND_BEST = ("val/loss", *(f"val/{m.key}" for m in summary_metrics.METRICS if m.group == "rouge"))


class RunReport(Callback):
    """Hparams + best-epoch metrics for TensorBoard's HParams tab, a short report at the end of ``fit``, and the test
    scores with their confidence intervals at the end of ``test``."""

    def __init__(self, write_json: bool = True) -> None:
        """Report settings.

        Args:
            write_json: also write the report to ``<run dir>/report.json`` (best metric, times, throughput, memory),
                and after ``test`` the scores with their 95% intervals to ``test_results.json`` and ``test_results.md``.
        """
        super().__init__()
        self.write_json = write_json
        self.throughput: Throughput | None = None  # its partner (lightning_modules/fit_callbacks.py): the times and rates it reports
        self.report: dict[str, Any] = {}
        self.text = ""  # the report as printed; the CLI prints it once the progress bar is gone (defer_printing)
        self.test_text = ""
        self.defer_printing = False
        self.train_losses: dict[int, float] = {}  # mean training loss per epoch (kept in checkpoints: resumable)
        self._loss_sum: Any = None
        self._losses = 0
        self._hparams_writer: Any = None  # the HParams sub-run's writer, open for the length of a fit

    # ------------------------------------------------------------------------------------------- counting
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and self.throughput is None:
            from resumen.core.errors import ResumenError

            raise ResumenError(
                "RunReport reports the Throughput monitor's times and rates: add Throughput() to the trainer's callbacks "
                "and call resumen.lightning_modules.fit_callbacks.connect(callbacks) (resumen-train does both)."
            )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        device = trainer.strategy.root_device  # the module's own device may already be back on the CPU at the end
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        if trainer.is_global_zero:
            self._log_hparams(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:  # summed on the device, read once per epoch
            self._loss_sum = loss.detach() if self._loss_sum is None else self._loss_sum + loss.detach()
            self._losses += 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._losses:
            self.train_losses[trainer.current_epoch] = float(self._loss_sum) / self._losses
        self._loss_sum, self._losses = None, 0

    def state_dict(self) -> dict[str, Any]:
        return {"train_losses": {int(k): float(v) for k, v in self.train_losses.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train_losses = {int(k): float(v) for k, v in (state_dict.get("train_losses") or {}).items()}

    # --------------------------------------------------------------------------------------------- report
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        directory = run_dir(trainer)
        if not trainer.is_global_zero:
            return
        assert self.throughput is not None  # setup refused a fit without it
        scored = summarizer_results(pl_module)
        history = scored.val_history if scored is not None else {}
        self.report = {
            "interrupted": bool(trainer.interrupted),
            "epochs": trainer.fit_loop.epoch_progress.current.completed,
            "steps": trainer.global_step,
            **self.throughput.fit_rates(max(trainer.world_size, 1)),
            "peak_memory": peak_memory(trainer.strategy.root_device),
            **best_epoch(trainer, history),
            **early_stop(trainer),
            "data": data_source(data_settings(trainer)),
            "truncated": truncation(trainer),
        }
        self._log_final_metrics(trainer)
        if history:
            from resumen.lightning_modules.learning_curve import plot_learning_curve

            curve = RunLayout(directory).learning_curve
            if plot_learning_curve(history, self.train_losses, self.report.get("best_epoch"), self.report.get("monitor"), curve):
                self.report["learning_curve"] = str(curve)
        if self.write_json:
            with atomic_file(directory / "report.json") as handle:
                json.dump(self.report, handle, indent=2)
        self.text = format_report(self.report)
        if not self.defer_printing:
            rank_zero_info(self.text)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        directory = run_dir(trainer)
        scored = summarizer_results(pl_module)
        if not trainer.is_global_zero or scored is None or not scored.test_intervals:
            return
        loss = trainer.callback_metrics.get("test/loss")
        results = {
            "checkpoint": trainer.ckpt_path,
            "examples": len(scored.test_scores[0]),
            "loss": round(float(loss), 4) if loss is not None else None,
            "interval": {"confidence": CONFIDENCE, "method": "percentile bootstrap over examples", "resamples": RESAMPLES, "seed": SEED},
            # {group: {metric: interval}}: "rouge" first, then length, abstractiveness, repetition, faithfulness
            **summary_metrics.grouped({key: interval.as_dict() for key, interval in scored.test_intervals.items()}),
        }
        if scored.test_versus_baselines:  # the model minus lead-1 / lead-3 on the same articles (paired bootstrap)
            results["versus_baselines"] = {
                name: {key: {**d.as_dict(), "significant": d.excludes_zero()} for key, d in differences.items()}
                for name, differences in scored.test_versus_baselines.items()
            }
        if scored.test_reference_intervals:  # the same model-free metrics for the reference summaries
            results["references"] = {key: interval.as_dict() for key, interval in scored.test_reference_intervals.items()}
        literature = scored.test_literature_intervals
        if literature:  # under its own name: never mixed with the Spanish scores
            results["literature_rouge"] = {"scorer": LITERATURE_SCORER, **{key: interval.as_dict() for key, interval in literature.items()}}
        if self.write_json:
            with atomic_file(directory / "test_results.json") as handle:
                json.dump(results, handle, indent=2)
            with atomic_file(directory / "test_results.md") as handle:
                handle.write(markdown_test_results(results))
        self.test_text = format_test_results(results)
        if not self.defer_printing:
            rank_zero_info(self.test_text)

    def _log_hparams(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """TensorBoard: the layout its Custom Scalars tab opens on (loss and ROUGE per epoch), and the HParams-tab
        summary in a run of its own (``version_N/hparams``), so its single-value ``hp/`` metrics stay out of the
        run's own scalar charts.

        Lightning's ``log_hyperparams`` would log a placeholder value for each metric at step 0 (a fake point on every
        chart), so the summary is written directly and the real values follow in ``on_fit_end``.
        """
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        params = flat_hparams(trainer, pl_module)
        metrics = {f"hp/{name}": 0.0 for name in HPARAM_METRICS}
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_custom_scalars(CUSTOM_SCALARS)
                # One writer, hence one event file, for the summary and the final values: TensorBoard reads a
                # folder's files in name order, and a second file of this process could sort before the first.
                self._hparams_writer = SummaryWriter(log_dir=str(run_dir(trainer) / "hparams"))
                for summary in hparams(params, metrics):
                    self._hparams_writer.file_writer.add_summary(summary)
                self._hparams_writer.flush()
                break

    def _log_final_metrics(self, trainer: L.Trainer) -> None:
        metrics = {f"hp/{name}": value for name, value in self.report.get("best_metrics", {}).items()}
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                continue  # beside the HParams summary, not in the run's charts: below
            if metrics:
                logger.log_metrics(metrics, step=trainer.global_step)
                logger.save()
        if self._hparams_writer is not None:
            for name, value in metrics.items():
                self._hparams_writer.add_scalar(name, value, global_step=trainer.global_step)
            self._close_hparams_writer()

    def _close_hparams_writer(self) -> None:
        if self._hparams_writer is not None:
            self._hparams_writer.close()
            self._hparams_writer = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._close_hparams_writer()


# TensorBoard's Custom Scalars tab: what a user looks at first, one chart each, per epoch.
CUSTOM_SCALARS = {
    "resumen": {
        "loss per epoch (train, validation)": ["Multiline", ["train/loss_epoch", "val/loss"]],
        "validation ROUGE per epoch": ["Multiline", [f"val/{m.key}" for m in summary_metrics.METRICS if m.group == "rouge"]],
        # the percentages beyond ROUGE: abstractiveness, repetition and faithfulness per epoch
        "validation abstractiveness and faithfulness (%)": [
            "Multiline",
            [f"val/{m.key}" for m in summary_metrics.METRICS if m.group in ("abstractiveness", "repetition", "faithfulness") and m.key != "density"],
        ],
        "learning rate": ["Multiline", ["lr-AdamW.*"]],
    }
}
# The HParams tab's columns: the settings that tell runs apart (all of them are in the run's config.yaml).
HPARAM_COLUMNS = {
    "model": ("model", "model_name_or_path"),
    "learning_rate": ("model", "learning_rate"),
    "weight_decay": ("model", "weight_decay"),
    "batch_size": ("data", "batch_size"),
    "max_source_length": ("data", "max_source_length"),
    "max_target_length": ("data", "max_target_length"),
    "train_samples": ("data", "max_train_samples"),
    "num_beams": ("model", "num_beams"),
    "extend_vocabulary": ("model", "extend_vocabulary"),
    "dropout_rate": ("model", "dropout_rate"),
}


def data_source(data: dict[str, Any]) -> dict[str, Any]:
    """Where the run's data came from: local files, or a hub dataset with the revision asked for (``null``: the
    newest, which moves; pin ``--data.dataset_revision`` to a commit for a reproducible run)."""
    if data.get("data_files"):
        return {"data_files": data["data_files"]}
    return {key: data.get(f"dataset_{key}") for key in ("name", "config", "revision")} if data else {}


def flat_hparams(trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
    """The settings that tell runs apart, as the flat scalars TensorBoard's HParams tab accepts (None as "none")."""
    sources = {"model": dict(pl_module.hparams), "data": data_settings(trainer)}
    params: dict[str, Any] = {}
    for column, (source, key) in HPARAM_COLUMNS.items():
        value = sources[source].get(key)
        params[column] = value if isinstance(value, (bool, int, float, str)) else ("all" if key == "max_train_samples" and value is None else str(value))
    lora = sources["model"].get("lora") or {}
    batch = sources["data"].get("batch_size") or 0
    params.update(
        {
            "lora_r": int(lora.get("r", 0)),
            "precision": str(trainer.precision),
            "max_epochs": trainer.max_epochs if trainer.max_epochs is not None else -1,
            "world_size": trainer.world_size,
            "effective_batch_size": batch * trainer.world_size * trainer.accumulate_grad_batches,
        }
    )
    return params


def best_epoch(trainer: L.Trainer, history: dict[int, dict[str, float]]) -> dict[str, Any]:
    """The epoch the checkpoint callback chose as best, why, and the first and best epochs' validation metrics.

    The same rule as ``BestCheckpoint``: the best ``monitor``; among equal values, the better tie-breaker.
    """
    if not history:
        return {}
    callback = trainer.checkpoint_callback
    monitor = getattr(callback, "monitor", None) or "val/rougeL"
    mode = getattr(callback, "mode", "max")
    tie_breaker = getattr(callback, "tie_breaker", None)
    tie_mode = getattr(callback, "tie_breaker_mode", "min")
    values = {epoch: metrics[monitor] for epoch, metrics in history.items() if monitor in metrics}
    if not values:
        return {}

    def rank(epoch: int) -> tuple[float, float]:
        return checkpoint_rank(values[epoch], mode, history[epoch].get(tie_breaker) if tie_breaker else None, tie_mode)

    epoch = max(sorted(values), key=rank)  # sorted: with no tie-breaker the first of equal values wins
    tied = [epoch_number(e) for e in sorted(values) if values[e] == values[epoch] and e != epoch]
    if tied and tie_breaker:
        reason = f"tied on {monitor} with epoch(s) {', '.join(map(str, tied))}; {'lowest' if tie_mode == 'min' else 'highest'} {tie_breaker} of them"
    elif tied:
        reason = f"tied on {monitor} with epoch(s) {', '.join(map(str, tied))}; the first of them"
    else:
        reason = f"{'highest' if mode == 'max' else 'lowest'} {monitor}"
    first = min(history)
    # epochs as people read them (resumen.core.runs.epoch_number: the first is 1); "epochs_from" says so to readers
    result: dict[str, Any] = {"monitor": monitor, "best_epoch": epoch_number(epoch), "best_value": history[epoch].get(monitor), "best_reason": reason}
    result["best_metrics"] = {name: history[epoch][name] for name in HPARAM_METRICS if name in history[epoch]}
    result["first_epoch"] = epoch_number(first)
    result["epochs_from"] = 1
    result["first_metrics"] = {name: history[first][name] for name in HPARAM_METRICS if name in history[first]}
    if callback is not None and getattr(callback, "best_model_path", ""):
        result["best_checkpoint"] = callback.best_model_path
    return result


def early_stop(trainer: L.Trainer) -> dict[str, Any]:
    """Whether early stopping ended the run, at which epoch and why (its own words)."""
    callback = trainer.early_stopping_callback
    return callback.stop_summary() if isinstance(callback, OptionalEarlyStopping) else {}


def peak_rss_bytes() -> int:
    """Peak resident memory of this process.

    Linux's VmHWM first: ``ru_maxrss`` survives ``exec``, so a process started from a big parent (a benchmark, a
    notebook) would report the parent's peak instead of its own.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB, macOS bytes


def peak_memory(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process (GiB) and, on CUDA, the peak allocated by torch."""
    memory = {"process_rss_gib": round(peak_rss_bytes() / 2**30, 3)}
    if device.type == "cuda":
        memory["cuda_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
    return memory


def first_and_best(report: dict[str, Any]) -> list[str]:
    """The first and the best epoch's validation metrics side by side: did the run learn?"""
    names = [name for name in FIRST_AND_BEST if name in report.get("best_metrics", {})]
    if not names or "first_metrics" not in report:
        return []
    header = "  " + f"{'epoch':<12}" + "".join(f"{name:>15}" for name in names)
    rows = [header]
    for label, epoch, metrics in (("first", report["first_epoch"], report["first_metrics"]), ("best", report["best_epoch"], report["best_metrics"])):
        rows.append("  " + f"{f'{label} ({epoch})':<12}" + "".join(f"{metrics.get(name, float('nan')):>15.2f}" for name in names))
    return rows


def format_report(report: dict[str, Any]) -> str:
    minutes, seconds = divmod(report["seconds_total"], 60)
    lines = ["Run report" + (" (interrupted)" if report["interrupted"] else "")]
    if "best_epoch" in report:
        where = f" -> {report['best_checkpoint']}" if report.get("best_checkpoint") else ""
        lines.append(f"  best {report['monitor']} = {report['best_value']:.2f} at epoch {report['best_epoch']}{where}")
        lines.append(f"  chosen because: {report['best_reason']}")
        lines += first_and_best(report)
    if "stopped_early_at_epoch" in report:
        lines.append(f"  stopped early after epoch {report['stopped_early_at_epoch']}: {report['stopped_early_because']}")
    lines.append(
        f"  time {int(minutes)}m{seconds:04.1f}s for {report['epochs']} epoch(s), {report['steps']} steps (validation {report['seconds_validation']:.1f}s)"
    )
    lines.append(f"  training {report['train_samples_per_sec']:.1f} samples/s, {report['train_tokens_per_sec']:.0f} source tokens/s (all ranks)")
    memory = report["peak_memory"]
    gpu = f", CUDA allocated {memory['cuda_allocated_gib']:.2f} GiB" if "cuda_allocated_gib" in memory else ""
    lines.append(f"  peak memory: process RSS {memory['process_rss_gib']:.2f} GiB{gpu}")
    if report.get("learning_curve"):
        lines.append(f"  learning curve: {report['learning_curve']}")
    return "\n".join(lines)


def format_test_results(results: dict[str, Any]) -> str:
    """The test scores for the console: each ROUGE with its interval, so a point of difference is not read as real."""
    lines = [f"Test ROUGE on {results['examples']} examples, mean [95% bootstrap interval]:"]
    lines += [f"  {key:<10} {v['mean']:6.2f} [{v['low']:.2f}, {v['high']:.2f}]" for key, v in results["rouge"].items()]
    versus = baselines_line(results)
    if versus:
        lines.append(versus)
    beyond = beyond_rouge_line(results)
    if beyond:
        lines.append(beyond)
    literature = results.get("literature_rouge")
    if literature:
        rouge_l = literature["rougeL"]
        lines.append(
            f"Literature-comparable ROUGE-L (not Spanish-aware; how published MLSUM-es figures were scored): "
            f"{rouge_l['mean']:.2f} [{rouge_l['low']:.2f}, {rouge_l['high']:.2f}]"
        )
    return "\n".join(lines)


def baselines_line(results: dict[str, Any]) -> str:
    """``Against the lead baselines (ROUGE-L, paired): beats lead-1 by +24.63 [+21.94, +27.43]; ...``."""
    cells = []
    for name, differences in results.get("versus_baselines", {}).items():
        d = differences["rougeL"]
        verdict = ("beats" if d["mean"] > 0 else "trails") if d["significant"] else "ties (not significant)"
        cells.append(f"{verdict} {name} by {d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]")
    return ("Against the lead baselines (ROUGE-L, paired): " + "; ".join(cells)) if cells else ""


def beyond_rouge_line(results: dict[str, Any]) -> str:
    """The headline metrics other than ROUGE in one line, the references' value beside each."""
    references = results.get("references", {})
    cells = []
    for metric in summary_metrics.ALL_METRICS:
        value = (
            results.get(metric.group, {}).get(metric.key) if metric.group != "rouge" and (metric.headline or metric in summary_metrics.MODEL_METRICS) else None
        )
        if value is not None:
            beside = f" (references {references[metric.key]['mean']:.1f})" if metric.key in references else ""
            cells.append(f"{metric.label} {value['mean']:.1f}{beside}")
    return ("Beyond ROUGE: " + ", ".join(cells) + " (docs/evaluation.md)") if cells else ""


def markdown_test_results(results: dict[str, Any]) -> str:
    references = results.get("references", {})
    rows = ""
    for metric in summary_metrics.ALL_METRICS:
        v = results.get(metric.group, {}).get(metric.key)
        if v is not None:
            beside = f"{references[metric.key]['mean']:.2f}" if metric.key in references else ""
            rows += f"| {metric.key} | {v['mean']:.2f} | {v['low']:.2f} – {v['high']:.2f} | {beside} | {metric.definition} |\n"
    return (
        f"Test set: {results['examples']} examples, checkpoint `{results['checkpoint']}`, loss {results['loss']}.\n\n"
        "| metric | mean | 95% interval | references | what it is |\n|---|---|---|---|---|\n"
        + rows
        + f"\nIntervals: percentile bootstrap over examples, {RESAMPLES} resamples, seed {SEED}.\n"
        + literature_table(results.get("literature_rouge"))
    )


def literature_table(literature: dict[str, Any] | None) -> str:
    """The literature-comparable scores, in a table of their own."""
    if not literature:
        return ""
    rows = "".join(f"| {key} | {v['mean']:.2f} | {v['low']:.2f} – {v['high']:.2f} |\n" for key, v in literature.items() if key != "scorer")
    return (
        "\nLiterature-comparable ROUGE (to place the model among published MLSUM-es figures; not Spanish-aware: "
        f"{literature['scorer']}):\n\n| metric | mean | 95% interval |\n|---|---|---|\n" + rows
    )


def truncation(trainer: L.Trainer) -> dict[str, dict[str, float]]:
    """The share of each split's articles and summaries cut at max_source_length / max_target_length."""
    data = summarization_data(trainer)
    return dict(data.truncation) if data is not None else {}
