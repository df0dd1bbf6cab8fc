"""BERTScore (Zhang et al. 2020), the model-based metric users expect beside ROUGE: optional, on request
(``compare.py --metrics bertscore``), computed by torchmetrics' implementation, batched, on the run's device.

Each summary's F1 against its reference, in 0-100, from the contextual embeddings of one layer of an encoder. The
default is the one its authors recommend for languages other than English, ``bert-base-multilingual-cased`` at layer
9; any encoder on the hub or in a local directory can stand in (``--bertscore-model``, ``--bertscore-layer``). No
idf weighting and no baseline rescaling: values are comparable between models scored with the same encoder and
layer only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from resumen.core.errors import ResumenError

DEFAULT_ENCODER = "bert-base-multilingual-cased"
DEFAULT_LAYER = 9


def check_encoder(encoder: str, layer: int) -> None:
    """The encoder's config loads and has ``layer``: one line before any summary is generated."""
    from resumen.core.loading import load_config

    config = load_config(encoder)
    layers = getattr(config, "num_hidden_layers", None)
    if config.is_encoder_decoder or layers is None:
        raise ResumenError(f"BERTScore needs an encoder such as {DEFAULT_ENCODER}; {encoder} is a {config.model_type} model.")
    if not 1 <= layer <= layers:
        raise ResumenError(f"--bertscore-layer {layer}: {encoder} has layers 1 to {layers}.")


def bertscore_rows(
    summaries: Sequence[str],
    references: Sequence[str],
    encoder: str = DEFAULT_ENCODER,
    layer: int = DEFAULT_LAYER,
    device: str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Each summary's BERTScore F1 against its reference, 0-100 (an empty summary scores 0)."""
    from torchmetrics.functional.text.bert import bert_score

    if len(summaries) != len(references):
        raise ValueError(f"got {len(summaries)} summaries for {len(references)} references")
    if not summaries:
        return np.zeros(0)
    result = bert_score(list(summaries), list(references), model_name_or_path=encoder, num_layers=layer, device=device, batch_size=batch_size, truncation=True)
    f1 = np.asarray(result["f1"], dtype=np.float64).reshape(-1) * 100.0
    empty = np.asarray([not summary.strip() for summary in summaries])
    return np.where(empty | np.isnan(f1), 0.0, f1)
