"""The data <-> model contract, declared: what a batch holds, what the module, its callbacks and the run report
read from the summarisation data module, and what the callbacks read from the module's results. The CLI connects
data and model (``SummarizationData.connect``); callbacks reach the data module through ``summarization_data(trainer)``,
which is ``None`` for a plain DataLoader (the benchmark's pre-built batches), and the module's scores through
``summarizer_results(pl_module)``, ``None`` for another module, so nothing digs for attributes that may not be there.
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict, runtime_checkable

import torch


class Batch(TypedDict, total=False):
    """One collated batch (datamodules/collate.py makes it). Tensors are padded; the rest travel as lists."""

    input_ids: torch.Tensor  # (batch, source length)
    attention_mask: torch.Tensor
    labels: torch.Tensor  # (batch, target length), padding -100; absent in predict without summaries
    index: torch.Tensor  # each example's row in its split: ROUGE counts every example once under DDP
    id: list[str]  # the dataset's id (or the row number): predictions are written in input order
    reference: list[str | None]  # the reference summary, when the split has one
    article: list[str]  # validation and test: the article as written (the metrics that read it), not its token cut


@runtime_checkable
class SummarizationData(Protocol):
    """What resumen's callbacks and report need from the data module (``SummarizationDataModule`` is the one)."""

    hparams: Any  # its settings, for the model card, the report and a predict job's fingerprint
    coverage: Any  # the tokenizer coverage report of the training data, or None (CoverageReport)
    truncation: dict[str, dict[str, float]]  # split -> the share of its articles / summaries cut at the lengths

    def connect(self, vocabulary: Any, trained_template: str | None = None) -> None:
        """Share the model's tokenizer and, for an exported model, the template it was trained with."""

    def record_fields(self) -> dict[str, Any]:
        """The data's part of the trained-with record: template and lengths."""

    def predict_rows(self) -> int:
        """How many inputs predict will summarise."""

    def skip_predict_rows(self, done: set[int]) -> None:
        """Leave out the inputs an interrupted predict already wrote."""


@runtime_checkable
class SummarizerResults(Protocol):
    """What the export, the run report and a tuning trial read from the module (``Seq2SeqSummarizer`` keeps it)."""

    val_history: dict[int, dict[str, float]]  # epoch -> its validation metrics (kept in checkpoints)
    test_intervals: dict[str, Any]  # after test: metric key (resumen/core/summary_metrics.py) -> its bootstrap Interval
    test_reference_intervals: dict[str, Any]  # the model-free metrics of the reference summaries, the same way
    test_versus_baselines: dict[str, dict[str, Any]]  # lead-1, lead-3 -> ROUGE key -> the model's paired difference
    test_literature_intervals: dict[str, Any]  # ROUGE by the literature-comparable scorer
    test_scores: tuple[Any, Any] | None  # after test: (dataset indices, examples x summary_metrics.KEYS)


def summarizer_results(pl_module: Any) -> SummarizerResults | None:
    """The module when it keeps the results contract, else ``None``."""
    return pl_module if isinstance(pl_module, SummarizerResults) else None


def summarization_data(trainer: Any) -> SummarizationData | None:
    """The trainer's data module when it keeps the contract, else ``None``."""
    data = getattr(trainer, "datamodule", None) if trainer is not None else None
    return data if isinstance(data, SummarizationData) else None


def data_settings(trainer: Any) -> dict[str, Any]:
    """The data module's settings as a plain dict (empty without one)."""
    data = summarization_data(trainer)
    return dict(data.hparams or {}) if data is not None else {}
