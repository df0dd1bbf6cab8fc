"""Batches of free-text prompts for the companion scripts (next-token, generation, translation, comparison)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch.utils.data import DataLoader

from resumen.core.encoding import tokenize


def prompt_loader(
    prompts: list[str],
    tokenizer: Any,
    batch_size: int = 8,
    padding_side: Literal["left", "right"] = "left",
    max_length: int | None = None,
) -> DataLoader:
    """A DataLoader of tokenised prompts with ``id``/``index``/``prompt`` kept for ordering the outputs.

    Generation needs left padding (new tokens follow the last real token of every row); per-position analysis
    uses right padding so positions match an unpadded forward pass.
    """
    if tokenizer.pad_token is None:  # GPT-2 has none: padding is masked out, any id will do
        tokenizer.pad_token = tokenizer.eos_token

    def collate(rows: list[tuple[int, str]]) -> dict[str, Any]:
        indices, texts = zip(*rows)
        side = tokenizer.padding_side
        tokenizer.padding_side = padding_side
        try:
            batch = dict(
                tokenize(
                    tokenizer,
                    list(texts),
                    return_tensors="pt",
                    padding=True,
                    truncation=max_length is not None,
                    max_length=max_length,
                )
            )
        finally:
            tokenizer.padding_side = side
        batch.pop("token_type_ids", None)
        batch["index"] = torch.tensor(indices, dtype=torch.long)
        batch["id"] = [str(i) for i in indices]
        batch["prompt"] = list(texts)
        return batch

    return DataLoader(list(enumerate(prompts)), batch_size=batch_size, collate_fn=collate)
