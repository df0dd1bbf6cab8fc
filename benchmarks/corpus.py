"""A deterministic synthetic Spanish corpus shaped like MLSUM-es: long articles, short summaries with a long tail.

Words come from a fixed pseudo-Spanish lexicon (Zipf-distributed, accents and ñ included); lengths are drawn
so that most articles exceed 512 tokens and most summaries are 20–60 tokens with a tail past 100.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SYLLABLES = (
    "a e i o u ba be bi bo bu ca co cu da de di do du fa fe fi fo ga go gu la le li lo lu ma me mi mo mu na ne ni "
    "no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu va ve vi za ce ci que qui gue gui cha che "
    "chi cho lla lle llo ña ño ñe rra rre rro tra tre tro pla ple pre pro bra bre gra gre cla cre cri dra fla fra "
    "ción sión más está día país según tam bién cons trans ex in des com"
).split()
FUNCTION_WORDS = "de la que el en y a los se del las un por con no una su para es al lo como más pero sus le ya o".split()


def lexicon(size: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = set(FUNCTION_WORDS)
    while len(words) < size:
        count = int(rng.integers(1, 5))
        words.add("".join(SYLLABLES[i] for i in rng.integers(0, len(SYLLABLES), count)))
    content = sorted(words - set(FUNCTION_WORDS))
    rng.shuffle(content)  # frequency rank must not follow the alphabet
    return (FUNCTION_WORDS + content)[:size]


def _sentences(words: list[str], rng: np.random.Generator) -> str:
    out, start = [], 0
    while start < len(words):
        end = start + int(rng.integers(8, 28))
        sentence = words[start:end]
        out.append(sentence[0].capitalize() + (" " + " ".join(sentence[1:]) if len(sentence) > 1 else "") + ".")
        start = end
    return " ".join(out)


def make_corpus(count: int, seed: int = 0, lexicon_size: int = 20000) -> list[dict[str, str]]:
    """``count`` rows of ``{"text", "summary"}``; the same arguments always give the same rows."""
    rng = np.random.default_rng(seed)
    words = np.array(lexicon(lexicon_size, seed=1234), dtype=object)
    probabilities = 1.0 / (np.arange(len(words)) + 2.7)
    probabilities /= probabilities.sum()
    # Article and summary lengths in words: medians ~480 and ~24, with tails (MLSUM-es: long news, short ledes).
    article_words = np.clip(rng.lognormal(np.log(480), 0.45, count), 120, 2500).astype(int)
    summary_words = np.clip(rng.lognormal(np.log(24), 0.55, count), 6, 160).astype(int)
    rows = []
    for n_article, n_summary in zip(article_words, summary_words):
        drawn = list(words[rng.choice(len(words), n_article + n_summary, p=probabilities)])
        rows.append({"text": _sentences(drawn[:n_article], rng), "summary": _sentences(drawn[n_article:], rng)})
    return rows


def write_jsonl(rows: list[dict[str, str]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
