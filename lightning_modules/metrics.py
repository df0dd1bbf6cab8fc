"""The project's Spanish ROUGE as torchmetrics metrics: synced across DDP ranks, each example counted once.

The scoring itself (normalisation, Unicode words, Spanish sentence split) is ``resumen.core.rouge``'s, shared with the
``evaluate`` module and ``scripts/compare.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric

from resumen.core import summary_metrics
from resumen.core.rouge import ROUGE_KEYS, LiteratureRougeScorer, SpanishRougeScorer

__all__ = ["ROUGE_KEYS", "IndexedMean", "SpanishRouge", "SummaryScores"]


class IndexedMean(Metric):
    """Mean of per-example values that ignores repeats of the same example index.

    Under DDP the distributed sampler pads the last batch by repeating examples; giving each example its dataset
    index lets ``compute`` count every example once. Values without an index (``-1``) are all counted.
    """

    full_state_update = False

    def __init__(self, num_values: int = 1) -> None:
        super().__init__()
        self.num_values = num_values
        self.add_state("values", default=[], dist_reduce_fx="cat")
        self.add_state("indices", default=[], dist_reduce_fx="cat")

    def update(self, values: torch.Tensor, indices: torch.Tensor | None = None) -> None:
        # float64 so the mean is the one the evaluate module and compare.py print (MPS has no float64)
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        values = torch.as_tensor(values, dtype=dtype, device=self.device).reshape(-1, self.num_values)
        if indices is None:
            indices = torch.full((values.shape[0],), -1, dtype=torch.long, device=self.device)
        self.values.append(values)
        self.indices.append(torch.as_tensor(indices, dtype=torch.long, device=self.device).reshape(-1))

    def _unique(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every example once (the first of repeated indices; unindexed values all kept), in index order."""
        values = _cat(self.values).reshape(-1, self.num_values)
        indices = _cat(self.indices).reshape(-1)
        keep = indices < 0
        indexed = torch.nonzero(~keep).flatten()
        if indexed.numel():
            _, first = _first_occurrence(indices[indexed])
            keep[indexed[first]] = True
        order = torch.argsort(indices[keep], stable=True)
        return indices[keep][order], values[keep][order]

    def compute(self) -> torch.Tensor:
        _, values = self._unique()
        if values.shape[0] == 0:
            return torch.zeros(self.num_values, device=self.device).squeeze()
        return values.mean(dim=0).squeeze()

    def count(self) -> int:
        """How many distinct examples were scored."""
        return int(self._unique()[1].shape[0])

    def per_example(self) -> tuple[np.ndarray, np.ndarray]:
        """Every scored example once, gathered from all ranks and sorted by dataset index: (indices, values).

        What a bootstrap interval, or a paired comparison of two models on the same examples, needs.
        """
        with self.sync_context():
            indices, values = self._unique()
            return indices.cpu().numpy(), values.double().cpu().numpy()


class SpanishRouge(IndexedMean):
    """ROUGE-1/2/L/Lsum F-measures in 0-100, tokenised on Unicode words.

    >>> metric = SpanishRouge()
    >>> metric.update(["ñ á"], ["ñ á"])
    >>> float(metric.compute()["rouge1"])
    100.0
    """

    def __init__(self, scorer: SpanishRougeScorer | None = None) -> None:
        super().__init__(num_values=len(ROUGE_KEYS))
        self._scorer = scorer or SpanishRougeScorer()

    def update(self, preds: list[str], targets: list[str], indices: torch.Tensor | None = None) -> None:  # type: ignore[override]
        rows = self._scorer.score_rows(preds, targets)
        super().update(torch.from_numpy(rows).reshape(-1, len(ROUGE_KEYS)), indices)

    def compute(self) -> dict[str, torch.Tensor]:  # type: ignore[override]
        means = super().compute().reshape(-1)
        return {key: means[i] for i, key in enumerate(ROUGE_KEYS)}


class SummaryScores(IndexedMean):
    """Every metric of ``resumen.core.summary_metrics.METRICS`` (ROUGE, length, abstractiveness, repetition,
    faithfulness), per example, index-keyed like ROUGE; a metric whose input is missing (no article) is NaN and left
    out of ``compute``.

    >>> metric = SummaryScores()
    >>> metric.update(["Ana vino."], ["Ana vino."], articles=["Ana vino ayer."])
    >>> float(metric.compute()["rougeL"]), float(metric.compute()["coverage"])
    (100.0, 100.0)
    """

    def __init__(self) -> None:
        super().__init__(num_values=len(summary_metrics.KEYS))

    def update(self, preds: list[str], targets: list[str | None], indices: torch.Tensor | None = None, articles: list[str] | None = None) -> None:  # type: ignore[override]
        super().update(torch.from_numpy(summary_metrics.score_rows(preds, targets, articles)), indices)

    def compute(self) -> dict[str, torch.Tensor]:  # type: ignore[override]
        _, values = self._unique()
        means = values.nanmean(dim=0) if values.shape[0] else torch.full((len(summary_metrics.KEYS),), float("nan"))
        return {key: means[i] for i, key in enumerate(summary_metrics.KEYS) if not torch.isnan(means[i])}


class LiteratureRouge(SpanishRouge):
    """The same ROUGE keys computed as the published MLSUM-es figures were (resumen.core.rouge.LiteratureRougeScorer)."""

    def __init__(self) -> None:
        super().__init__(LiteratureRougeScorer())


def _cat(states) -> torch.Tensor:
    if isinstance(states, torch.Tensor):
        return states
    return torch.cat(states) if states else torch.zeros(0)


def _first_occurrence(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique values and the position of each one's first occurrence."""
    unique, inverse = torch.unique(indices, return_inverse=True)
    positions = torch.arange(indices.numel(), device=indices.device)
    first = torch.full((unique.numel(),), indices.numel(), dtype=torch.long, device=indices.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first
