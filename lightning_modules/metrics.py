"""ROUGE that is right for Spanish, as torchmetrics metrics (they sync across DDP ranks).

``rouge_score`` and torchmetrics keep only ``[a-z0-9]`` ("niño" -> "ni o") and stem with Porter (English).
Here text is normalised first (NFC, so decomposed accents from macOS or a CMS score like composed ones; zero-width
characters and soft hyphens removed), words are Unicode letters and digits (``_`` separates, as in ``rouge_score``),
nothing is stemmed, and sentences for rougeLsum are split by rules that know Spanish abbreviations, because nltk's
punkt cannot be downloaded offline.
"""

from __future__ import annotations

import re
import unicodedata

import torch
from rouge_score import rouge_scorer
from torchmetrics import Metric

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
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


def normalise(text: str) -> str:
    """NFC and no invisible characters: the same words however the text was encoded."""
    return unicodedata.normalize("NFC", text).translate(_INVISIBLE)


class UnicodeWordTokenizer:
    """The tokenizer interface ``rouge_score`` expects: normalised, lower-cased Unicode words, no stemming."""

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(normalise(text).lower())


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


class IndexedMean(Metric):
    """Mean of per-example values that ignores repeats of the same example index.

    Under DDP the distributed sampler pads the last batch by repeating examples; giving each example its dataset
    index lets ``compute`` count every example once. Values without an index (``-1``) are all counted.
    """

    full_state_update = False

    def __init__(self, num_values: int = 1) -> None:
        super().__init__()
        self.num_values = num_values
        self.add_state("values", default=[], dist_reduce_fx="cat")
        self.add_state("indices", default=[], dist_reduce_fx="cat")

    def update(self, values: torch.Tensor, indices: torch.Tensor | None = None) -> None:
        values = torch.as_tensor(values, dtype=torch.float32, device=self.device).reshape(-1, self.num_values)
        if indices is None:
            indices = torch.full((values.shape[0],), -1, dtype=torch.long, device=self.device)
        self.values.append(values)
        self.indices.append(torch.as_tensor(indices, dtype=torch.long, device=self.device).reshape(-1))

    def _unique_values(self) -> torch.Tensor:
        values = _cat(self.values).reshape(-1, self.num_values)
        indices = _cat(self.indices).reshape(-1)
        if values.numel() == 0:
            return values
        keep = indices < 0
        indexed = torch.nonzero(~keep).flatten()
        if indexed.numel():
            _, first = _first_occurrence(indices[indexed])
            keep[indexed[first]] = True
        return values[keep]

    def compute(self) -> torch.Tensor:
        values = self._unique_values()
        if values.shape[0] == 0:
            return torch.zeros(self.num_values, dtype=torch.float32, device=self.device).squeeze()
        return values.mean(dim=0).squeeze()

    def count(self) -> int:
        """How many distinct examples were scored."""
        return int(self._unique_values().shape[0])


class SpanishRouge(IndexedMean):
    """ROUGE-1/2/L/Lsum F-measures in 0-100, tokenised on Unicode words.

    >>> metric = SpanishRouge()
    >>> metric.update(["ñ á"], ["ñ á"])
    >>> metric.compute()["rouge1"]
    tensor(100.)
    """

    def __init__(self) -> None:
        super().__init__(num_values=len(ROUGE_KEYS))
        self._scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS), tokenizer=UnicodeWordTokenizer())

    def update(self, preds: list[str], targets: list[str], indices: torch.Tensor | None = None) -> None:  # type: ignore[override]
        if len(preds) != len(targets):
            raise ValueError(f"got {len(preds)} predictions for {len(targets)} references")
        rows = [self._score(pred, target) for pred, target in zip(preds, targets)]
        super().update(torch.tensor(rows, dtype=torch.float32).reshape(-1, len(ROUGE_KEYS)), indices)

    def _score(self, pred: str, target: str) -> list[float]:
        # rouge_score splits rougeLsum on "\n"; give it one sentence per line.
        scores = self._scorer.score("\n".join(split_sentences(target)), "\n".join(split_sentences(pred)))
        return [100.0 * scores[key].fmeasure for key in ROUGE_KEYS]

    def compute(self) -> dict[str, torch.Tensor]:  # type: ignore[override]
        means = super().compute().reshape(-1)
        return {key: means[i] for i, key in enumerate(ROUGE_KEYS)}


def _cat(states) -> torch.Tensor:
    if isinstance(states, torch.Tensor):
        return states
    return torch.cat(states) if states else torch.zeros(0)


def _first_occurrence(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique values and the position of each one's first occurrence."""
    unique, inverse = torch.unique(indices, return_inverse=True)
    positions = torch.arange(indices.numel(), device=indices.device)
    first = torch.full((unique.numel(),), indices.numel(), dtype=torch.long, device=indices.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first
