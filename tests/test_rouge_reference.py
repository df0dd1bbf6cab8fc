"""rouge_score's published expected values (rouge_scorer_test.py and scoring_test.py), ported as fixed numbers.

Only the cases that do not depend on Porter stemming (we never stem) or on several references per example
(we score one reference). The ROUGE-1.5.5 figures are rouge_score's "ground truth" from the original Perl script.
"""

from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from resumen.core.rouge import ROUGE_KEYS, SpanishRougeScorer, UnicodeWordTokenizer, bootstrap_intervals

FIXTURES = Path(__file__).parent / "fixtures" / "rouge_score"


def ours(prediction: str, reference: str) -> dict[str, float]:
    """Our scorer, back on rouge_score's 0-1 scale."""
    return {key: value / 100 for key, value in SpanishRougeScorer().score(prediction, reference).items()}


def precision_recall(key: str, reference: str, prediction: str):
    """Precision and recall need rouge_score's Score tuple: the same scorer our class wraps, our tokeniser."""
    score = rouge_scorer.RougeScorer([key], tokenizer=UnicodeWordTokenizer()).score(reference, prediction)[key]
    return score.precision, score.recall


# (reference, prediction, rouge type, precision, recall, f-measure): rouge_scorer_test.py
SIMPLE_CASES = [
    ("testing one two", "testing", "rouge1", 1, 1 / 3, 1 / 2),  # testRouge1
    ("testing one two", "testing one", "rouge2", 1, 1 / 2, 2 / 3),  # testRouge2
    ("testing one two", "testing one", "rougeL", 1, 2 / 3, 4 / 5),  # testRougeLConsecutive
    ("testing one two", "testing two", "rougeL", 1, 2 / 3, 4 / 5),  # testRougeLNonConsecutive
    ("testing one two", "testing one", "rouge1", 1, 2 / 3, 4 / 5),  # testMultipleRougeTypes
    ("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", "rougeLsum", 0.4, 0.8, 0.5333),  # testRougeLsum
    ("this is a test", "this is a test", "rouge1", 1, 1, 1),  # testRougeTokenizerInit
]


@pytest.mark.parametrize("reference,prediction,key,precision,recall,fmeasure", SIMPLE_CASES)
def test_rouge_scorer_simple_cases(reference, prediction, key, precision, recall, fmeasure):
    assert ours(prediction, reference)[key] == pytest.approx(fmeasure, abs=1e-4)
    assert precision_recall(key, reference, prediction) == pytest.approx((precision, recall), abs=1e-4)


@pytest.mark.parametrize("reference,prediction", [("testing one two", ""), ("w1 w2 w3 w4 w5", ""), ("", "w1"), ("w1 w2 w3 w4 w5", "/")])
def test_empty_or_wordless_sides_score_zero(reference, prediction):  # testRougeEmpty, testRougeLsum's empty cases
    assert ours(prediction, reference) == {key: 0.0 for key in ROUGE_KEYS}


# ROUGE-1.5.5 on the two lines of testdata/{target,prediction}.txt: (precision, recall, f-measure) per line
ROUGE_155 = {
    "rouge1": [(0.68750, 0.40741, 0.51163), (0.65385, 0.40476, 0.50000)],  # testRouge1AgainstRouge155
    "rouge2": [(0.53333, 0.30769, 0.39024), (0.48000, 0.29268, 0.36364)],  # testRouge2AgainstRouge155
    "rougeL": [(0.68750, 0.40741, 0.51163), (0.65385, 0.40476, 0.50000)],  # testRougeLAgainstRouge155
}


@pytest.mark.parametrize("key", sorted(ROUGE_155))
def test_against_rouge_155(key):
    references = (FIXTURES / "target.txt").read_text(encoding="utf-8").splitlines()
    predictions = (FIXTURES / "prediction.txt").read_text(encoding="utf-8").splitlines()
    for reference, prediction, (precision, recall, fmeasure) in zip(references, predictions, ROUGE_155[key], strict=True):
        assert ours(prediction, reference)[key] == pytest.approx(fmeasure, abs=5e-6)
        assert precision_recall(key, reference, prediction) == pytest.approx((precision, recall), abs=5e-6)


def test_rouge_lsum_sentence_splitting():  # testRougeLSumSentenceSplitting (its nltk split; ours needs no download)
    reference, prediction = "First sentence.\nSecond Sentence.", "Second sentence.\nFirst Sentence."
    assert ours(prediction, reference)["rougeLsum"] == pytest.approx(1.0)
    assert ours(prediction.replace("\n", " "), reference.replace("\n", " "))["rougeLsum"] == pytest.approx(1.0)


# scoring_test.py: three examples' (precision, recall, f-measure) and the expected (low, mid, high) aggregates
THREE_EXAMPLES = [(1, 1 / 3, 1 / 2), (0, 0, 0), (1, 1, 1)]


def test_bootstrap_consistent_percentiles():  # testConsistentPercentiles (confidence 0.9)
    intervals = bootstrap_intervals(THREE_EXAMPLES, confidence=0.9)
    expected = [(1 / 3, 2 / 3, 3 / 3), (1 / 9, 4 / 9, 7 / 9), (1 / 6, 3 / 6, 5 / 6)]
    for interval, (low, mid, high) in zip(intervals, expected):
        assert (interval.low, interval.mean, interval.high) == pytest.approx((low, mid, high), abs=1e-8)


def test_bootstrap_zero_confidence_collapses_to_the_middle():  # testLargeConfidence (confidence 0.0)
    intervals = bootstrap_intervals(THREE_EXAMPLES, confidence=0.0)
    for interval, mid in zip(intervals, (2 / 3, 4 / 9, 3 / 6)):
        assert (interval.low, interval.mean, interval.high) == pytest.approx((mid, mid, mid), abs=1e-8)


def test_bootstrap_is_seeded_and_paired_columns_share_resamples():
    rows = [[i % 7, (i % 7) + 1.0] for i in range(50)]
    first, second = bootstrap_intervals(rows), bootstrap_intervals(rows)
    assert first == second
    # the same resamples for both columns: column 2 is column 1 + 1 in every resample
    assert first[1].low == pytest.approx(first[0].low + 1) and first[1].high == pytest.approx(first[0].high + 1)
