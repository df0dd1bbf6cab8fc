"""ROUGE that is right for Spanish, and bootstrap intervals for it: the one scorer behind every door.

``rouge_score`` and torchmetrics keep only ``[a-z0-9]`` ("niño" -> "ni o") and stem with Porter (English).
Here text is normalised first (NFC, so decomposed accents from macOS or a CMS score like composed ones; zero-width
characters and soft hyphens removed), words are Unicode letters and digits (``_`` separates, as in ``rouge_score``),
nothing is stemmed, and sentences for rougeLsum are split by rules that know Spanish abbreviations, because nltk's
punkt cannot be downloaded offline. The LCS and n-gram counting are ``rouge_score``'s own.

The training metric (``resumen.lightning_modules.metrics.SpanishRouge``), the ``evaluate`` module
(``resumen/evaluation/spanish_rouge``) and ``scripts/compare.py`` all score through :class:`SpanishRougeScorer`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np
from rouge_score import rouge_scorer

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
WORD = re.compile(r"[^\W_]+", re.UNICODE)  # a word: Unicode letters and digits (``_`` separates, as in rouge_score)
# Invisible characters that split a word in two: zero-width space/non-joiner/joiner, word joiner, BOM, soft hyphen.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
# A candidate sentence end: . ! ? or … (closing quotes or brackets may follow), then space, then what can open a
# sentence: a capital or digit, possibly after an opening quote, bracket, ¿ or ¡.
_SENTENCE_END = re.compile(r"[.!?…][\"'»”’)\]]*\s+(?=[\"'«“‘¿¡(\[]?[A-ZÁÉÍÓÚÜÑ0-9])")
_WORD_BEFORE = re.compile(r"([^\W\d_]+)\.?$")
# Abbreviations a period does not end a sentence after (lower case, without the period). Single letters count too:
# initials ("J. García") and pieces of "EE. UU.", "a. C.", "d. C.".
SPANISH_ABBREVIATIONS = frozenset(
    "sr sra srta sres sras dr dra dres d dña dª don ud uds vd vds ee uu núm num nº pág págs art arts cap caps "
    "av avda c cía prof profa lic ing gral col tel aprox máx mín vol vols fig figs dcha izq ej pp ed eds st "
    "admón depto dpto excmo excma ilmo ilma mons pdte pdta sto sta".split()
)


# Each text is scored on its first MAX_WORDS words: ROUGE-L's LCS is quadratic in pure Python (1,000 words against
# 1,000 take 0.3 s, 4,000 take 4.7 s; 10 MB against 10 MB would exhaust memory). Summaries are a few dozen words.
MAX_WORDS = 1000


def cap_words(text: str, limit: int = MAX_WORDS) -> str:
    """``text`` up to the end of its ``limit``-th word (the whole text when it is shorter)."""
    for count, match in enumerate(WORD.finditer(text), start=1):
        if count == limit:
            return text[: match.end()]
    return text


def normalise(text: str) -> str:
    """NFC and no invisible characters: the same words however the text was encoded."""
    return unicodedata.normalize("NFC", text).translate(_INVISIBLE)


class UnicodeWordTokenizer:
    """The tokenizer interface ``rouge_score`` expects: normalised, lower-cased Unicode words, no stemming."""

    def tokenize(self, text: str) -> list[str]:
        return words(text)


def words(text: str) -> list[str]:
    """The scorer's words: normalised, lower case, Unicode letters and digits (the metrics beyond ROUGE count these)."""
    return WORD.findall(normalise(text).lower())


def split_sentences(text: str) -> list[str]:
    """Split Spanish (or English) text into sentences without nltk: not after an abbreviation or an initial."""
    sentences = []
    for line in normalise(text).splitlines():
        start = 0
        for boundary in _SENTENCE_END.finditer(line):
            before = _WORD_BEFORE.search(line[start : boundary.start()])
            word = before.group(1).lower() if before else ""
            if line[boundary.start()] == "." and (len(word) == 1 or word in SPANISH_ABBREVIATIONS):
                continue
            sentences.append(line[start : boundary.end()].strip())
            start = boundary.end()
        sentences.append(line[start:].strip())
    return [sentence for sentence in sentences if sentence]


class SpanishRougeScorer:
    """ROUGE-1/2/L/Lsum F-measures of one prediction against one reference, in 0-100.

    >>> SpanishRougeScorer().score("El niño juega.", "el nin\u0303o juega")["rouge1"]
    100.0
    """

    def __init__(self) -> None:
        self._scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS), tokenizer=UnicodeWordTokenizer())

    def score(self, prediction: str, reference: str) -> dict[str, float]:
        prediction, reference = cap_words(normalise(prediction)), cap_words(normalise(reference))
        # rouge_score splits rougeLsum on "\n": give it one sentence per line.
        scores = self._scorer.score("\n".join(split_sentences(reference)), "\n".join(split_sentences(prediction)))
        return {key: 100.0 * scores[key].fmeasure for key in ROUGE_KEYS}

    def score_rows(self, predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
        """One row per pair, one column per ``ROUGE_KEYS`` entry."""
        if len(predictions) != len(references):
            raise ValueError(f"got {len(predictions)} predictions for {len(references)} references")
        rows = [list(self.score(p, r).values()) for p, r in zip(predictions, references)]
        return np.asarray(rows, dtype=np.float64).reshape(-1, len(ROUGE_KEYS))


LITERATURE_SCORER = "rouge_score 0.1.2 default tokenizer (lowercase a-z and 0-9 only), Porter stemmer"


class LiteratureRougeScorer(SpanishRougeScorer):
    """ROUGE as the published MLSUM-es figures were computed, to place a model among them: ``rouge_score`` with its
    default tokenizer (ASCII letters and digits: "niño" becomes "ni o") and the Porter stemmer, as transformers'
    ``run_summarization.py`` scores, sentences split for ROUGE-Lsum. Wrong for Spanish, kept apart from our scores
    and always shown under its own name.

    >>> LiteratureRougeScorer().score("El niño juega.", "el nino juega")["rouge1"] < 100
    True
    """

    def __init__(self) -> None:
        self._scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)


# ------------------------------------------------------------------------------------------------ intervals
CONFIDENCE = 0.95
RESAMPLES = 1000
SEED = 0


@dataclass(frozen=True)
class Interval:
    """A mean over examples and its bootstrap confidence interval (percentile method)."""

    mean: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self, digits: int = 2) -> dict[str, float]:
        return {"mean": round(self.mean, digits), "low": round(self.low, digits), "high": round(self.high, digits)}

    def __str__(self) -> str:
        return f"{self.mean:.2f} [{self.low:.2f}, {self.high:.2f}]"


def bootstrap_intervals(values: np.ndarray, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED) -> list[Interval]:
    """One interval per column of ``values`` (examples x scores), as ``rouge_score``'s ``BootstrapAggregator``.

    Examples are resampled with replacement ``resamples`` times (the same resamples for every column, so paired
    columns stay paired); the interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of
    the resampled means. Seeded: the same scores always give the same interval.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values.reshape(len(values), -1)
    if len(values) == 0:
        return [Interval(0.0, 0.0, 0.0) for _ in range(values.shape[1])]
    rng = np.random.default_rng(seed)
    means = np.empty((resamples, values.shape[1]))
    chunk = max(1, 2_000_000 // max(len(values), 1))  # bounded memory for large test sets
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        picks = rng.integers(0, len(values), size=(stop - start, len(values)))
        means[start:stop] = values[picks].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    return [Interval(float(m), float(lo), float(hi)) for m, lo, hi in zip(values.mean(axis=0), low, high)]


def rouge_intervals(rows: np.ndarray, seed: int = SEED) -> dict[str, Interval]:
    """Each ROUGE key's mean and 95% interval from per-example rows (``SpanishRougeScorer.score_rows``)."""
    return dict(zip(ROUGE_KEYS, bootstrap_intervals(rows, seed=seed)))


def paired_differences(baseline: np.ndarray, other: np.ndarray, seed: int = SEED) -> dict[str, Interval]:
    """``other - baseline`` per ROUGE key with a paired bootstrap interval (the same examples in both rows)."""
    if np.shape(baseline) != np.shape(other):
        raise ValueError(f"paired scores need the same examples: {np.shape(baseline)} vs {np.shape(other)}")
    return dict(zip(ROUGE_KEYS, bootstrap_intervals(np.asarray(other) - np.asarray(baseline), seed=seed)))


def describe_difference(key: str, difference: Interval, higher_is_better: bool | None = True) -> str:
    """The difference in words: a user should not read noise as an improvement, nor a rise in a metric where lower
    is better (unsupported names) as one."""
    if not difference.excludes_zero():
        return f"{key} {difference.mean:+.2f} [{difference.low:+.2f}, {difference.high:+.2f}]: not significant (the 95% interval includes 0)"
    direction = "higher" if difference.mean > 0 else "lower"
    verdict = "" if higher_is_better is None else (", better" if (difference.mean > 0) == higher_is_better else ", worse")
    return f"{key} {difference.mean:+.2f} [{difference.low:+.2f}, {difference.high:+.2f}]: significantly {direction} (95%{verdict})"
