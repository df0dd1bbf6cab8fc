"""Spanish ROUGE as a Hugging Face ``evaluate`` module: the same scores resumen logs, for any training loop.

    import evaluate
    from resumen.core.shipped import spanish_rouge_path
    rouge = evaluate.load(spanish_rouge_path())  # a local path in the installed package: works with HF_HUB_OFFLINE=1
    rouge.compute(predictions=["El niño juega."], references=["el niño juega"])  # {'rouge1': 100.0, ...}

With ``Seq2SeqTrainer``: ``compute_metrics=rouge.for_trainer(tokenizer)`` (and ``predict_with_generate=True``).
Ships inside resumen (``pip install resumen``, or ``pip install -e .`` in a checkout): the scorer is ``resumen.core.rouge``, the one behind the
training metric and ``scripts/compare.py``, so all three give identical numbers.
"""

from typing import Any
from collections.abc import Callable

import datasets
import evaluate
import numpy as np

from resumen.core.errors import ResumenError
from resumen.core.rouge import ROUGE_KEYS, SpanishRougeScorer, rouge_intervals

_DESCRIPTION = """ROUGE-1/2/L/Lsum F-measures (0-100) for Spanish: text normalised to NFC without invisible characters,
Unicode words (accents and ñ kept, no English stemming), rougeLsum over sentences split with Spanish abbreviations
in mind. On ASCII text it equals rouge_score's ROUGE without stemming. Each text is scored on its first
1,000 words (summaries are a few dozen; ROUGE-L's cost grows with the square of the length)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated summaries: a list of strings (not one string), at least one.
    references: reference summaries: a list of strings, one per prediction. Each text counts up to its first
        1,000 words.
    use_aggregator: return the mean over examples (default) instead of one score per example.
    confidence_intervals: also return each score's seeded 95% bootstrap interval as ``<key>_low``/``<key>_high``.
Returns:
    rouge1, rouge2, rougeL, rougeLsum: floats in 0-100 (lists when ``use_aggregator=False``).
"""

_CITATION = """@inproceedings{lin-2004-rouge, title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
author = "Lin, Chin-Yew", booktitle = "Text Summarization Branches Out", year = "2004", pages = "74--81"}"""


class SpanishRouge(evaluate.Metric):
    """Spanish ROUGE (see the module docstring)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            reference_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def compute(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> dict[str, Any] | None:
        """``evaluate``'s compute, after checking the inputs: a plain string would be scored letter by letter."""
        if predictions is not None or references is not None:
            check_texts(predictions, references)
        return super().compute(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references, use_aggregator: bool = True, confidence_intervals: bool = False) -> dict[str, Any]:
        rows = SpanishRougeScorer().score_rows(predictions, references)
        if not use_aggregator:
            return {key: rows[:, i].tolist() for i, key in enumerate(ROUGE_KEYS)}
        result: dict[str, Any] = {key: float(rows[:, i].mean()) if len(rows) else 0.0 for i, key in enumerate(ROUGE_KEYS)}
        if confidence_intervals:
            for key, interval in rouge_intervals(rows).items():
                result[f"{key}_low"], result[f"{key}_high"] = interval.low, interval.high
        return result

    def for_trainer(self, tokenizer: Any) -> Callable[[Any], dict[str, float]]:
        """A ``compute_metrics`` for ``Seq2SeqTrainer(predict_with_generate=True)``: decodes ids, then scores."""

        def compute_metrics(prediction: Any) -> dict[str, float]:
            generated, labels = prediction.predictions, prediction.label_ids
            generated = generated[0] if isinstance(generated, tuple) else generated
            return self.compute(predictions=_decode(tokenizer, generated), references=_decode(tokenizer, labels))

        return compute_metrics


def check_texts(predictions: Any, references: Any) -> None:
    """Lists (or tuples) of strings, as many of each, at least one: anything else is refused with what it was."""
    for name, value in (("predictions", predictions), ("references", references)):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ResumenError(
                f"{name} must be a list of strings, not {type(value).__name__}: pass [text] for one text (a plain string would be scored letter by letter)."
            )
        if not value:
            raise ResumenError(f"{name} is empty: there is nothing to score (ROUGE of no examples is undefined).")
        wrong = [item for item in value if not isinstance(item, str)]
        if wrong:
            raise ResumenError(f"{name} must hold strings only (found a {type(wrong[0]).__name__}).")
    if len(predictions) != len(references):
        raise ResumenError(f"got {len(predictions)} predictions for {len(references)} references: give one reference per prediction.")


def _decode(tokenizer: Any, ids: Any) -> list[str]:
    """Decode a batch of ids, dropping the -100 the trainer pads labels and generations with between batches."""
    rows = [[int(token) for token in row if token != -100] for row in np.asarray(ids)]
    return tokenizer.batch_decode(rows, skip_special_tokens=True)
