"""Batching: dynamic padding through ``DataCollatorForSeq2Seq``, or fixed lengths for the static modes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from resumen.core.contract import Batch

# Columns that travel with a batch as Python lists (ids for ordering and dedupe, references for ROUGE, articles of the
# evaluated splits for the metrics that read them: novel n-grams, coverage, unsupported numbers and names).
META_COLUMNS = ("id", "index", "reference", "article")
# what tokenisation records about each row's lengths (for batching and the truncation report), never batched
LENGTH_COLUMNS = ("length", "target_length", "truncated", "target_truncated")
LABEL_PAD = -100


@dataclass
class Seq2SeqCollator:
    """Pad a list of tokenised examples into a batch; label padding is always -100.

    With ``source_length``/``target_length`` unset, each batch is padded to its own longest example (the library
    collator). With them set, inputs and labels are padded to those fixed lengths: ``DataCollatorForSeq2Seq``
    pads labels to the *input* ``max_length``, which is wrong when source and target lengths differ.
    """

    tokenizer: PreTrainedTokenizerBase
    source_length: int | None = None
    target_length: int | None = None
    pad_to_multiple_of: int | None = None

    def __post_init__(self) -> None:
        self._dynamic = DataCollatorForSeq2Seq(self.tokenizer, label_pad_token_id=LABEL_PAD, pad_to_multiple_of=self.pad_to_multiple_of)

    def __call__(self, features: list[dict[str, Any]]) -> Batch:
        features = [dict(feature) for feature in features]
        meta = {key: [f.pop(key) for f in features] for key in META_COLUMNS if key in features[0]}
        for feature in features:
            for column in LENGTH_COLUMNS:
                feature.pop(column, None)
        if self.source_length is None:
            batch = dict(self._dynamic(features))
        else:
            labels = [f.pop("labels") for f in features] if "labels" in features[0] else None
            batch = dict(self.tokenizer.pad(features, padding="max_length", max_length=self._round(self.source_length), return_tensors="pt"))
            if labels is not None:
                width = self._round(self.target_length or max(len(label) for label in labels))
                padded = torch.full((len(labels), width), LABEL_PAD, dtype=torch.long)
                for row, label in enumerate(labels):
                    padded[row, : len(label)] = torch.as_tensor(label[:width], dtype=torch.long)
                batch["labels"] = padded
        if "index" in meta:
            meta["index"] = torch.as_tensor(meta["index"], dtype=torch.long)
        batch.update(meta)
        return Batch(**batch)

    def _round(self, length: int) -> int:
        multiple = self.pad_to_multiple_of
        return length if not multiple else -(-length // multiple) * multiple
