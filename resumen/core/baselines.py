"""Extractive baselines, named like models wherever a model is named for evaluation (``compare.py --models lead-3``).

``lead-K``: the article's first K sentences, the bar every news-summarisation paper reports first (MLSUM reports
Lead-3 beside its models). ``oracle``: sentences chosen greedily while they raise ROUGE against the reference
(Nallapati et al. 2017), the ceiling of extraction; it reads the reference, so it is a bound, not a model. Sentences
come from the Spanish-aware splitter the ROUGE-Lsum scorer uses (``resumen.core.rouge.split_sentences``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from rouge_score import rouge_scorer

from resumen.core.rouge import UnicodeWordTokenizer, cap_words, normalise, split_sentences

_LEAD = re.compile(r"^lead-([1-9][0-9]?)$")
ORACLE = "oracle"
# the baselines every test is paired with (cheap: no model, no reference); compare.py takes any
TEST_BASELINES = ("lead-1", "lead-3")
# the oracle looks at the article's first ORACLE_SENTENCES sentences: greedy search is quadratic in them, and news
# puts what a summary says near the top
ORACLE_SENTENCES = 40


def is_baseline(name: str) -> bool:
    """Whether ``name`` names a baseline (``lead-1`` ... ``lead-99``, ``oracle``) rather than a model; a local
    directory of that name is a model."""
    return (name == ORACLE or _LEAD.match(name) is not None) and not Path(name).exists()


def lead(article: str, k: int) -> str:
    """The article's first ``k`` sentences."""
    return " ".join(split_sentences(article)[:k])


def oracle_scorer() -> rouge_scorer.RougeScorer:
    """What the oracle maximises: ROUGE-1 and ROUGE-2 on the Spanish scorer's words."""
    return rouge_scorer.RougeScorer(["rouge1", "rouge2"], tokenizer=UnicodeWordTokenizer())


def oracle(article: str, reference: str, scorer: rouge_scorer.RougeScorer | None = None) -> str:
    """Greedy extractive oracle: add the sentence that raises ROUGE-1 + ROUGE-2 F most, while it rises; the chosen
    sentences in article order."""
    scorer = scorer or oracle_scorer()
    sentences = split_sentences(cap_words(normalise(article)))[:ORACLE_SENTENCES]
    reference = cap_words(normalise(reference))
    chosen: list[int] = []
    best = 0.0
    while True:
        candidates = []
        for i in range(len(sentences)):
            if i in chosen:
                continue
            text = " ".join(sentences[j] for j in sorted([*chosen, i]))
            scores = scorer.score(reference, text)
            candidates.append((scores["rouge1"].fmeasure + scores["rouge2"].fmeasure, -i, i))
        if not candidates:
            break
        score, _, pick = max(candidates)
        if score <= best:
            break
        best = score
        chosen.append(pick)
    return " ".join(sentences[j] for j in sorted(chosen))


def baseline_summaries(name: str, articles: Sequence[str], references: Sequence[str | None]) -> list[str]:
    """The summaries baseline ``name`` writes for ``articles`` (the oracle also reads ``references``)."""
    if name == ORACLE:
        if any(reference is None for reference in references):
            raise ValueError("the oracle needs a reference summary for every article")
        scorer = oracle_scorer()  # one for every article
        return [oracle(article, reference or "", scorer) for article, reference in zip(articles, references)]
    match = _LEAD.match(name)
    if match is None:
        raise ValueError(f"'{name}' is not a baseline: use lead-K (K sentences, e.g. lead-3) or oracle")
    return [lead(article, int(match.group(1))) for article in articles]
