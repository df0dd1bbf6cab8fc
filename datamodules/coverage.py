"""How well a tokenizer covers the data: unknown characters, unknown-token shares, and summary round-trips."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from resumen.core.encoding import tokenize
from resumen.core.vocabulary import (
    character_counts,
    decode_texts,
    normalise_whitespace,
    unknown_characters,
    unknown_token_id,
)


@dataclass
class CoverageReport:
    """Shares are in [0, 1]; ``unknown_characters`` maps each lost character to its count in articles and summaries."""

    examples: int
    unknown_characters: dict[str, dict[str, int]] = field(default_factory=dict)
    articles_with_unknown: float = 0.0
    summaries_with_unknown: float = 0.0
    article_tokens_unknown: float = 0.0
    summary_tokens_unknown: float = 0.0
    summary_round_trip: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def perfect(self) -> bool:
        """Nothing to show: every character known, no unknown token, every summary round-trips."""
        return not self.unknown_characters and not self.article_tokens_unknown and not self.summary_tokens_unknown and self.summary_round_trip == 1.0

    def summary_line(self, split: str) -> str:
        """One line for commands after the fit (the fit printed the whole table), and for a fit with nothing to show."""
        if self.perfect:
            return f"Tokenizer coverage of the {split} data: every character is known and every summary round-trips ({self.examples} examples)."
        if not self.unknown_characters:
            return f"Tokenizer coverage of the {split} data: every character is known ({self.examples} examples)."
        lost = " ".join(self.unknown_characters)
        return (
            f"Tokenizer coverage of the {split} data: {len(self.unknown_characters)} unknown character(s) ({lost}) in "
            f"{self.articles_with_unknown:.0%} of {self.examples} articles; the fit's log has the table."
        )

    def table(self, title: str = "Tokenizer coverage") -> str:
        """A short plain-text table (also valid Markdown, for TensorBoard's Text tab)."""
        lines = [
            f"{title} ({self.examples} examples)",
            "",
            "| | articles | summaries |",
            "|---|---|---|",
            f"| examples with unknown tokens | {self.articles_with_unknown:.1%} | {self.summaries_with_unknown:.1%} |",
            f"| unknown tokens | {self.article_tokens_unknown:.2%} | {self.summary_tokens_unknown:.2%} |",
            f"| decode(encode(x)) == x | | {self.summary_round_trip:.1%} |",
        ]
        if self.unknown_characters:
            lines += ["", "| character | occurrences in articles | in summaries |", "|---|---|---|"]
            for character, counts in self.unknown_characters.items():
                lines.append(f"| {character} (U+{ord(character):04X}) | {counts['articles']} | {counts['summaries']} |")
        else:
            lines += ["", "No character of the data is unknown to the tokenizer."]
        return "\n".join(lines)


def coverage_report(tokenizer: Any, articles: list[str], summaries: list[str] | None) -> CoverageReport:
    """Measure ``tokenizer`` on parallel lists of articles and (optionally) summaries."""
    summaries = summaries or []
    article_counts, summary_counts = character_counts(articles), character_counts(summaries)
    lost = unknown_characters(tokenizer, set(article_counts) | set(summary_counts))
    report = CoverageReport(examples=len(articles))
    report.unknown_characters = {
        c: {"articles": article_counts.get(c, 0), "summaries": summary_counts.get(c, 0)}
        for c in sorted(lost, key=lambda c: (-(article_counts.get(c, 0) + summary_counts.get(c, 0)), c))
    }
    unk = unknown_token_id(tokenizer)
    report.articles_with_unknown, report.article_tokens_unknown = _unknown_shares(tokenizer, articles, unk)
    if summaries:
        report.summaries_with_unknown, report.summary_tokens_unknown = _unknown_shares(tokenizer, summaries, unk)
        ids = tokenize(tokenizer, summaries)["input_ids"]
        decoded = decode_texts(tokenizer, ids)
        exact = sum(out == normalise_whitespace(text) for out, text in zip(decoded, summaries))
        report.summary_round_trip = exact / len(summaries)
    return report


def _unknown_shares(tokenizer: Any, texts: list[str], unk: int | None) -> tuple[float, float]:
    if not texts or unk is None:
        return 0.0, 0.0
    encoded = tokenize(tokenizer, texts, add_special_tokens=False)["input_ids"]
    with_unknown = sum(unk in ids for ids in encoded)
    unknown = sum(ids.count(unk) for ids in encoded)
    total = sum(len(ids) for ids in encoded)
    return with_unknown / len(texts), unknown / max(total, 1)
