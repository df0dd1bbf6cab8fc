"""Every number resumen reports about a summary, defined once, as data.

``METRICS`` is the collection: each entry names a metric, says what it needs (the reference, the article, or the
summary alone), which way is better, and how one example's value is computed. The module's validation and test,
``test_results.{json,md}``, TensorBoard, the model card, ``compare.py``, ``runs.py`` and ``tune_generation.py``
iterate it; adding a metric is one entry and its function here (docs/evaluation.md says what each one means).

Beyond ROUGE (``resumen.core.rouge``, the Spanish scorer) the metrics need no model: length and compression;
abstractiveness as novel n-grams (See et al. 2017); extractive fragment coverage and density (Grusky et al. 2018,
Newsroom); repetition; and two faithfulness proxies, numbers and names in the summary that the article never
mentions. Words are the ROUGE scorer's (NFC, invisible characters removed, Unicode letters and digits, lower case),
so "niño", "NIÑO" and a decomposed "nin\u0303o" are one word.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property, partial

import numpy as np

from resumen.core.rouge import (
    ROUGE_KEYS,
    SEED,
    SPANISH_ABBREVIATIONS,
    WORD,
    Interval,
    SpanishRougeScorer,
    bootstrap_intervals,
    cap_words,
    normalise,
    split_sentences,
    words,
)

# a number as written in Spanish or English news: 1.500, 1,5, 3,50, 1.500.000, 1,500, 2019, 7
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])")
_THOUSANDS = re.compile(r"^\d{1,3}([.,])\d{3}(?:\1\d{3})*$")
# a capitalised word: a capital letter, then letters (accents and ñ included)
_CAPITALISED = re.compile(r"^[A-ZÁÉÍÓÚÜÑ][^\W\d_]+$")


@dataclass
class Example:
    """One summary with its article and reference, tokenised once for every metric (each computed lazily)."""

    summary: str
    reference: str | None = None
    article: str | None = None
    rouge_scorer: SpanishRougeScorer | None = field(default=None, repr=False)  # shared by score_rows; built if needed

    @cached_property
    def summary_words(self) -> list[str]:
        return words(self.summary)

    @cached_property
    def article_words(self) -> list[str]:
        return words(cap_words(self.article or "", ARTICLE_WORDS))

    @cached_property
    def fragment_lengths(self) -> list[int]:
        """The extractive fragments' lengths, found once for coverage and density."""
        return fragments(self.summary_words, self.article_words)

    @cached_property
    def rouge(self) -> dict[str, float]:
        return (self.rouge_scorer or SpanishRougeScorer()).score(self.summary, self.reference or "")


# Articles are read up to their first ARTICLE_WORDS words (MLSUM-es articles average about 800): the fragment search
# is linear in the article per summary word, and a summary rarely copies from further down.
ARTICLE_WORDS = 5000


@dataclass(frozen=True)
class SummaryMetric:
    """One metric: its key (logged as ``test/<key>``, a column everywhere), how people read it, and its function."""

    key: str
    label: str  # shown in tables and charts
    group: str  # rouge | length | abstractiveness | repetition | faithfulness
    needs: str  # reference | article | summary: what must be known for a value
    higher_is_better: bool | None  # None: neither (a length describes, it does not judge)
    compute: Callable[[Example], float]
    definition: str
    headline: bool = False  # shown where space is short: the runs listing, the HParams tab, the console


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def novel_ngrams(example: Example, n: int) -> float:
    """% of the summary's n-grams (counted with repeats) that the article never contains; 0 with none."""
    summary = ngrams(example.summary_words, n)
    if not summary:
        return 0.0
    article = set(ngrams(example.article_words, n))
    return 100.0 * sum(gram not in article for gram in summary) / len(summary)


def fragment_spans(summary: Sequence[str], article: Sequence[str]) -> list[tuple[int, int]]:
    """The extractive fragments (Grusky et al. 2018, Algorithm 1) as ``(first summary word, length)``: greedily,
    the longest article word sequence each summary position starts; a word found nowhere in the article starts none."""
    positions: dict[str, list[int]] = {}
    for j, word in enumerate(article):
        positions.setdefault(word, []).append(j)
    spans, i = [], 0
    while i < len(summary):
        best = 0
        for j in positions.get(summary[i], ()):
            k = 0
            while i + k < len(summary) and j + k < len(article) and summary[i + k] == article[j + k]:
                k += 1
            best = max(best, k)
        if best:
            spans.append((i, best))
            i += best
        else:
            i += 1
    return spans


def fragments(summary: Sequence[str], article: Sequence[str]) -> list[int]:
    """The lengths of the extractive fragments (``fragment_spans``)."""
    return [length for _, length in fragment_spans(summary, article)]


def coverage(example: Example) -> float:
    """% of summary words inside an extractive fragment (Grusky et al. 2018)."""
    n = len(example.summary_words)
    return 100.0 * sum(example.fragment_lengths) / n if n else 0.0


def density(example: Example) -> float:
    """Mean squared fragment length per summary word: 1 for word-by-word copying, the summary's length for a single
    copied span (Grusky et al. 2018)."""
    n = len(example.summary_words)
    return sum(f * f for f in example.fragment_lengths) / n if n else 0.0


def compression(example: Example) -> float:
    """Article words per summary word (Grusky et al. 2018); an empty summary counts as one word."""
    return len(example.article_words) / max(len(example.summary_words), 1)


def repeated_trigrams(example: Example) -> float:
    """% of the summary's trigrams that repeat an earlier one in the same summary; 0 with none."""
    grams = ngrams(example.summary_words, 3)
    return 100.0 * (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def number_value(text: str) -> str:
    """A number as a canonical string: "1.500", "1,500" and "1500" -> "1500"; "1,5", "1.5" and "1,50" -> "1.5"."""
    if _THOUSANDS.match(text):
        text = re.sub(r"[.,]", "", text)
    else:
        text = text.replace(",", ".")
        if text.count(".") > 1:  # not a thousands pattern nor one decimal point: compare it as written
            return text
    try:
        return format(Decimal(text).normalize(), "f")
    except InvalidOperation:
        return text


def numbers(text: str) -> set[str]:
    return {number_value(match) for match in _NUMBER.findall(normalise(text))}


def unsupported_number_values(summary: str, article: str) -> set[str]:
    """The summary's numbers (canonical values) that the article never mentions."""
    return numbers(summary) - numbers(cap_words(article, ARTICLE_WORDS))


def unsupported_numbers(example: Example) -> float:
    """100 when the summary holds a number the article never mentions (after "1.500"/"1500"/"1,5" are made one)."""
    return 100.0 * bool(unsupported_number_values(example.summary, example.article or ""))


def names(text: str) -> set[str]:
    """Capitalised words not at the start of a sentence (opening "¿", "¡" and quotes are not words), lower-cased;
    titles and abbreviations ("Sr.", "Dra.", "EE. UU.") are not names."""
    found = set()
    for sentence in split_sentences(text):
        for word in WORD.findall(sentence)[1:]:
            if _CAPITALISED.match(word) and word.lower() not in SPANISH_ABBREVIATIONS:
                found.add(word.lower())
    return found


def unsupported_names(example: Example) -> float:
    """100 when the summary holds a name (a capitalised word inside a sentence) the article never contains."""
    return 100.0 * bool(names(example.summary) - set(example.article_words))


def marked_spans(summary: str, article: str) -> list[tuple[int, int, str]]:
    """Character spans of ``normalise(summary)`` to mark, for a person: ``copied`` (a word inside an extractive
    fragment), ``unsupported`` (a number or name the article never mentions)."""
    text = normalise(summary)
    example = Example(summary, None, article)
    matches = list(WORD.finditer(text))
    spans = []
    aligned = len(matches) == len(example.summary_words)  # lower-casing kept every word whole (it nearly always does)
    for first, length in fragment_spans(example.summary_words, example.article_words) if aligned else []:
        spans.append((matches[first].start(), matches[first + length - 1].end(), "copied"))
    missing_numbers = unsupported_number_values(summary, article)
    spans += [(m.start(), m.end(), "unsupported") for m in _NUMBER.finditer(text) if number_value(m.group()) in missing_numbers]
    missing_names = names(summary) - set(example.article_words)
    spans += [(m.start(), m.end(), "unsupported") for m in matches if m.group().lower() in missing_names and _CAPITALISED.match(m.group())]
    return sorted(spans)


def _rouge(key: str) -> Callable[[Example], float]:
    return lambda example: example.rouge[key]


ROUGE_LABELS = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}

METRICS: tuple[SummaryMetric, ...] = (
    *(
        SummaryMetric(key, ROUGE_LABELS[key], "rouge", "reference", True, _rouge(key), f"Spanish {ROUGE_LABELS[key]} F-measure, 0-100", headline=True)
        for key in ROUGE_KEYS
    ),
    SummaryMetric("words", "words", "length", "summary", None, lambda e: float(len(e.summary_words)), "summary length in words", headline=True),
    SummaryMetric("empty", "empty %", "length", "summary", False, lambda e: 100.0 * (not e.summary_words), "% of summaries without a word"),
    SummaryMetric("compression", "compression", "length", "article", None, compression, "article words per summary word"),
    *(
        SummaryMetric(
            f"novel_{n}grams",
            f"novel {n}-grams %",
            "abstractiveness",
            "article",
            None,
            partial(novel_ngrams, n=n),
            f"% of summary {n}-grams not in the article",
            headline=n == 2,
        )
        for n in (1, 2, 3, 4)
    ),
    SummaryMetric("coverage", "coverage %", "abstractiveness", "article", None, coverage, "% of summary words inside a fragment copied from the article"),
    SummaryMetric("density", "density", "abstractiveness", "article", None, density, "mean squared copied-fragment length per summary word"),
    SummaryMetric(
        "repeated_trigrams", "repeated 3-grams %", "repetition", "summary", False, repeated_trigrams, "% of summary trigrams repeating an earlier one"
    ),
    SummaryMetric(
        "unsupported_numbers",
        "unsupported numbers %",
        "faithfulness",
        "article",
        False,
        unsupported_numbers,
        "% of summaries with a number the article lacks",
        headline=True,
    ),
    SummaryMetric(
        "unsupported_names",
        "unsupported names %",
        "faithfulness",
        "article",
        False,
        unsupported_names,
        "% of summaries with a name the article lacks",
        headline=True,
    ),
)
# Model-based metrics, computed on request only (they load an encoder): compare.py --metrics bertscore.
MODEL_METRICS: tuple[SummaryMetric, ...] = (
    SummaryMetric(
        "bertscore",
        "BERTScore F1",
        "semantic",
        "reference",
        True,
        lambda example: float("nan"),  # batched on a device by resumen.core.bertscore, not per example here
        "BERTScore F1 against the reference, 0-100 (Zhang et al. 2020; encoder and layer as chosen)",
    ),
)
ALL_METRICS = (*METRICS, *MODEL_METRICS)  # what a result may hold, in the order results list them
KEYS = tuple(metric.key for metric in METRICS)
BY_KEY = {metric.key: metric for metric in ALL_METRICS}
GROUPS = tuple(dict.fromkeys(metric.group for metric in METRICS))
HEADLINE = tuple(metric.key for metric in METRICS if metric.headline)


def score_rows(summaries: Sequence[str], references: Sequence[str | None] | None = None, articles: Sequence[str | None] | None = None) -> np.ndarray:
    """One row per summary, one column per ``METRICS`` entry (in ``KEYS`` order); NaN where what a metric needs is
    missing (no reference, no article)."""
    n = len(summaries)
    references = list(references) if references is not None else [None] * n
    articles = list(articles) if articles is not None else [None] * n
    if not len(references) == len(articles) == n:
        raise ValueError(f"got {n} summaries, {len(references)} references and {len(articles)} articles")
    scorer = SpanishRougeScorer()
    rows = np.full((n, len(METRICS)), np.nan)
    for i, (summary, reference, article) in enumerate(zip(summaries, references, articles)):
        example = Example(summary, reference, article, scorer)
        known = {"summary": True, "reference": reference is not None, "article": article is not None}
        for j, metric in enumerate(METRICS):
            if known[metric.needs]:
                rows[i, j] = metric.compute(example)
    return rows


def reference_rows(references: Sequence[str], articles: Sequence[str]) -> np.ndarray:
    """The model-free metrics of the reference summaries themselves: how long, abstractive and faithful the data is."""
    return score_rows(references, None, articles)


def intervals(rows: np.ndarray, seed: int = SEED, keys: Sequence[str] = KEYS) -> dict[str, Interval]:
    """Each metric's mean and 95% bootstrap interval over the examples (one column per key of ``keys``, ``KEYS``
    unless a model-based metric such as BERTScore was added); metrics without values are left out."""
    rows = np.asarray(rows, dtype=np.float64)
    rows = rows.reshape(len(rows), -1) if rows.size else rows.reshape(0, len(keys))
    if rows.shape[1] != len(keys):
        raise ValueError(f"{rows.shape[1]} score columns for {len(keys)} metrics")
    known = [j for j in range(len(keys)) if len(rows) and not np.isnan(rows[:, j]).any()]
    return dict(zip((keys[j] for j in known), bootstrap_intervals(rows[:, known], seed=seed)))


def paired_differences(baseline: np.ndarray, other: np.ndarray, seed: int = SEED, keys: Sequence[str] = KEYS) -> dict[str, Interval]:
    """``other - baseline`` for each metric both have, with a paired bootstrap interval (the same examples)."""
    if np.shape(baseline) != np.shape(other):
        raise ValueError(f"paired scores need the same examples: {np.shape(baseline)} vs {np.shape(other)}")
    return intervals(np.asarray(other, dtype=np.float64) - np.asarray(baseline, dtype=np.float64), seed=seed, keys=keys)


def shown_metrics(rows: Sequence[dict[str, object]]) -> list[SummaryMetric]:
    """The collection's metrics, and the model-based ones (BERTScore) some row of ``rows`` holds."""
    return [*METRICS, *(m for m in MODEL_METRICS if any(m.key in row for row in rows))]


def grouped(values: dict[str, object]) -> dict[str, dict[str, object]]:
    """``{key: value}`` as ``{group: {key: value}}``, in ``METRICS`` order (test_results.json's layout)."""
    result: dict[str, dict[str, object]] = {}
    for metric in ALL_METRICS:
        if metric.key in values:
            result.setdefault(metric.group, {})[metric.key] = values[metric.key]
    return result
