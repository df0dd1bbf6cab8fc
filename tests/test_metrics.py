import pytest
import torch

from resumen.core.rouge import split_sentences
from resumen.lightning_modules.metrics import IndexedMean, SpanishRouge


def rouge(pred: str, target: str) -> dict[str, float]:
    metric = SpanishRouge()
    metric.update([pred], [target])
    return {k: float(v) for k, v in metric.compute().items()}


def test_spanish_words_keep_accents_and_enye():
    scores = rouge("El niño comió una canción española", "el niño cantó una canción española")
    assert scores["rouge1"] == pytest.approx(83.333, abs=0.01)  # the default [a-z0-9] tokeniser gives 88.89


def test_non_ascii_only_text_scores_100_against_itself():
    assert rouge("ñ á", "ñ á") == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0, "rougeLsum": 100.0}


def test_no_english_stemming():
    # Porter would stem "running"/"runs" to "run"; Spanish text gets no English stemmer.
    assert rouge("casas", "casa")["rouge1"] == 0.0


def test_rouge_lsum_uses_sentence_split():
    target = "El Betis ganó. El Celta perdió."
    pred = "El Celta perdió. El Betis ganó."
    scores = rouge(pred, target)
    assert scores["rougeLsum"] == pytest.approx(100.0)
    assert scores["rougeL"] < 100.0


def test_sentence_split_handles_spanish_openers():
    assert split_sentences("Hola a todos. ¿Qué tal? ¡Muy bien! 3 goles.\nOtra línea") == [
        "Hola a todos.",
        "¿Qué tal?",
        "¡Muy bien!",
        "3 goles.",
        "Otra línea",
    ]


def test_repeated_indices_are_counted_once():
    metric = SpanishRouge()
    metric.update(["a b", "x"], ["a b", "y"], torch.tensor([0, 1]))
    metric.update(["a b"], ["a b"], torch.tensor([0]))  # a DDP padding duplicate of example 0
    assert float(metric.compute()["rouge1"]) == pytest.approx(50.0)
    assert metric.count() == 2


def test_indexed_mean_without_indices_counts_everything():
    metric = IndexedMean()
    metric.update(torch.tensor([1.0, 3.0]))
    metric.update(torch.tensor([5.0]))
    assert float(metric.compute()) == pytest.approx(3.0)


def test_decomposed_accents_score_like_composed_ones():
    import unicodedata

    text = "El niño comió una canción en la montaña"
    nfd = unicodedata.normalize("NFD", text)
    assert nfd != text
    for pred, target in [(nfd, text), (text, nfd), (nfd, nfd)]:
        assert rouge(pred, target) == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0, "rougeLsum": 100.0}


@pytest.mark.parametrize(
    "pred,target",
    [("ni\u200bño canción", "niño canción"), ("niño can\u00adción", "niño canción"), ("a_b c", "a b c"), ("\ufeffniño\u2060 juega", "niño juega")],
    ids=["zero-width space", "soft hyphen", "underscore", "bom and word joiner"],
)
def test_invisible_characters_and_underscores_do_not_split_words(pred, target):
    assert rouge(pred, target)["rouge1"] == pytest.approx(100.0)


def test_rouge_lsum_does_not_split_after_spanish_abbreviations():
    scores = rouge("García llegó el Sr.", "El Sr. García llegó.")  # one sentence on each side
    assert scores["rougeLsum"] == pytest.approx(50.0) and scores["rougeL"] == pytest.approx(50.0)


def test_sentence_split_knows_abbreviations_initials_and_closing_quotes():
    text = "El Sr. García y la Dra. Pérez llegaron a EE. UU. el año 300 a. C. con J. Ruiz. Dijo «ya está». Pág. 3 luego... Fin."
    assert split_sentences(text) == [
        "El Sr. García y la Dra. Pérez llegaron a EE. UU. el año 300 a. C. con J. Ruiz.",
        "Dijo «ya está».",
        "Pág. 3 luego...",
        "Fin.",
    ]


def test_the_literature_comparable_rouge_scores_as_rouge_score_does_and_ours_does_not():
    """Published MLSUM-es figures come from rouge_score's ASCII tokenizer with the Porter stemmer: the literature
    scorer is exactly that; ours reads Spanish words whole."""
    from rouge_score import rouge_scorer

    from resumen.core.rouge import LiteratureRougeScorer, SpanishRougeScorer

    prediction, reference = "El niño ganó la carrera en Peñíscola.", "La niña ganó carreras en Peñíscola."
    theirs = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, prediction)["rougeL"].fmeasure
    assert LiteratureRougeScorer().score(prediction, reference)["rougeL"] == pytest.approx(100 * theirs)
    assert SpanishRougeScorer().score(prediction, reference)["rougeL"] < LiteratureRougeScorer().score(prediction, reference)["rougeL"]
