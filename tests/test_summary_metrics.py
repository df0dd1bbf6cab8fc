"""The metrics beyond ROUGE and the extractive baselines, checked against values computed by hand, Spanish edge
cases included (NFD accents, "¿¡", «quotes», "1.500" / "1500" / "1,5", abbreviations)."""

import math

import numpy as np
import pytest
import torch

from resumen.core import summary_metrics as sm
from resumen.core.baselines import baseline_summaries, is_baseline, lead, oracle
from resumen.lightning_modules.metrics import SummaryScores


def value(key, summary, article=None, reference=None):
    return sm.BY_KEY[key].compute(sm.Example(summary, reference, article))


def test_novel_ngrams_count_the_summary_ngrams_the_article_lacks():
    article = "a b x c d"
    assert value("novel_1grams", "a b c d", article) == 0.0
    assert value("novel_2grams", "a b c d", article) == pytest.approx(100 / 3)  # (b, c) of ab, bc, cd
    assert value("novel_3grams", "a b c d", article) == 100.0
    assert value("novel_4grams", "a b c", article) == 0.0  # no 4-gram: nothing novel
    # one word however it is written: case, NFD accents, punctuation
    assert value("novel_2grams", "EL NIÑO comió.", "el nin\u0303o comió pan") == 0.0


def test_coverage_and_density_follow_grusky_et_al():
    # fragments: "a b c" (3) and "d e" (2) -> coverage 5/5, density (9 + 4) / 5
    assert value("coverage", "a b c d e", "x a b c y d e") == 100.0
    assert value("density", "a b c d e", "x a b c y d e") == pytest.approx(2.6)
    # "z" appears nowhere: 4 of 5 words covered, fragments "a b" and "c d"
    assert value("coverage", "a b z c d", "a b q c d") == pytest.approx(80.0)
    assert value("density", "a b z c d", "a b q c d") == pytest.approx(8 / 5)
    assert sm.fragments(["a", "b", "c"], ["a", "b", "a", "b", "c"]) == [3]  # the longest match, not the first
    assert value("coverage", "", "a b") == 0.0 and value("density", "", "a b") == 0.0


def test_length_compression_empty_and_repetition():
    article = " ".join(["palabra"] * 10)
    assert value("words", "dos palabras") == 2.0
    assert value("compression", "dos palabras", article) == 5.0
    assert value("compression", "", article) == 10.0 and value("empty", "") == 100.0 and value("empty", "¿?") == 100.0
    assert value("repeated_trigrams", "a b c a b c") == 25.0  # abc, bca, cab, abc: one of four repeats
    assert value("repeated_trigrams", "a b") == 0.0


@pytest.mark.parametrize(
    "written,canonical",
    [
        ("1.500", "1500"),
        ("1500", "1500"),
        ("1,500", "1500"),
        ("1.500.000", "1500000"),
        ("1,5", "1.5"),
        ("1.5", "1.5"),
        ("3,50", "3.5"),
        ("2019", "2019"),
        ("0,25", "0.25"),
    ],
)
def test_numbers_are_compared_as_values(written, canonical):
    assert sm.number_value(written) == canonical


def test_unsupported_numbers_flag_a_summary_with_a_number_the_article_never_gives():
    article = "El club pagó 1500 euros en 2019, un 3,5% más."
    assert value("unsupported_numbers", "Pagó 1.500 euros en 2019.", article) == 0.0
    assert value("unsupported_numbers", "Subió un 3,50 %.", article) == 0.0
    assert value("unsupported_numbers", "Pagó 1.600 euros.", article) == 100.0
    assert value("unsupported_numbers", "Subió un 3,6 %.", article) == 100.0
    assert value("unsupported_numbers", "Sin cifras.", article) == 0.0


def test_unsupported_names_are_capitalised_words_inside_a_sentence_the_article_lacks():
    article = "el presidente pedro sánchez habló ayer en madrid."
    assert value("unsupported_names", "El presidente Pedro Sánchez habló.", article) == 0.0  # "El" opens the sentence
    assert value("unsupported_names", "Habló en Madrid y en Sevilla.", article) == 100.0  # Sevilla is new
    # sentence starts after "¿", "¡" and quotes are not names; a name after them is
    assert value("unsupported_names", "¿Quién habló? «Ayer» habló.", article) == 0.0
    assert value("unsupported_names", "¡Habló! Vino María.", article) == 100.0
    assert sm.names("El Sr. García llegó. Luego Ana.") == {"garcía", "ana"}  # "Sr." does not end the sentence


def test_score_rows_leaves_a_metric_out_when_what_it_needs_is_missing():
    rows = sm.score_rows(["Ana vino."], ["Ana vino."], [None])
    row = dict(zip(sm.KEYS, rows[0]))
    assert row["rougeL"] == 100.0 and row["words"] == 2.0 and math.isnan(row["coverage"])
    assert set(sm.intervals(rows)) == {m.key for m in sm.METRICS if m.needs != "article"}
    assert set(sm.intervals(sm.reference_rows(["Ana vino."], ["Ana vino ayer."]))) == {m.key for m in sm.METRICS if m.needs != "reference"}
    with pytest.raises(ValueError, match="1 summaries, 2 references"):
        sm.score_rows(["a"], ["a", "b"], ["a"])


def test_the_collection_is_one_place_each_key_once_with_a_definition():
    assert len(set(sm.KEYS)) == len(sm.KEYS) and sm.KEYS[:4] == ("rouge1", "rouge2", "rougeL", "rougeLsum")
    assert all(m.definition and m.label and m.group in sm.GROUPS and m.needs in ("reference", "article", "summary") for m in sm.METRICS)
    grouped = sm.grouped({"rougeL": 1, "words": 2, "unsupported_names": 3})
    assert grouped == {"rouge": {"rougeL": 1}, "length": {"words": 2}, "faithfulness": {"unsupported_names": 3}}


def test_the_torchmetric_counts_each_example_once_and_leaves_out_metrics_without_input():
    metric = SummaryScores()
    metric.update(["Ana vino.", "Luis no."], ["Ana vino.", "Luis sí."], torch.tensor([0, 1]), ["Ana vino ayer.", "Luis no vino."])
    metric.update(["Ana vino."], ["Ana vino."], torch.tensor([0]), ["Ana vino ayer."])  # a DDP pad repeat of index 0
    scores = metric.compute()
    assert metric.count() == 2 and float(scores["coverage"]) == 100.0 and float(scores["words"]) == 2.0
    only_references = SummaryScores()
    only_references.update(["Ana vino."], ["Ana vino."])
    assert "coverage" not in only_references.compute() and float(only_references.compute()["rougeL"]) == 100.0


ARTICLE = (
    "El Sr. García llegó a EE.UU. el lunes con 1.500 euros. «No pienso volver», dijo el empresario... "
    "¿Por qué? Nadie lo sabe. La Dra. Pérez, de la Univ. de Sevilla, cifra la pérdida en 3,5 millones."
)


def test_lead_k_is_the_first_k_spanish_sentences():
    assert lead(ARTICLE, 1) == "El Sr. García llegó a EE.UU. el lunes con 1.500 euros."
    assert lead(ARTICLE, 2) == "El Sr. García llegó a EE.UU. el lunes con 1.500 euros. «No pienso volver», dijo el empresario..."
    assert lead(ARTICLE, 4).endswith("¿Por qué? Nadie lo sabe.")
    assert lead(ARTICLE, 50) == lead(ARTICLE, 5)  # a short article is all of it
    assert baseline_summaries("lead-3", [ARTICLE], [None]) == [lead(ARTICLE, 3)]


def test_the_oracle_adds_sentences_while_rouge_rises_in_article_order():
    assert oracle(ARTICLE, "Nadie sabe por qué.") == "¿Por qué? Nadie lo sabe."
    both = oracle(ARTICLE, "La Dra. Pérez cifra la pérdida en 3,5 millones; García llegó a EE.UU. con 1.500 euros.")
    assert both == "El Sr. García llegó a EE.UU. el lunes con 1.500 euros. La Dra. Pérez, de la Univ. de Sevilla, cifra la pérdida en 3,5 millones."
    assert oracle(ARTICLE, "zzz") == ""  # nothing raises ROUGE: nothing is chosen
    with pytest.raises(ValueError, match="reference summary for every article"):
        baseline_summaries("oracle", [ARTICLE], [None])


def test_baseline_names_and_a_directory_of_that_name(tmp_path, monkeypatch):
    assert is_baseline("lead-1") and is_baseline("lead-12") and is_baseline("oracle")
    assert not is_baseline("lead-0") and not is_baseline("lead") and not is_baseline("google/flan-t5-small")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "oracle").mkdir()
    assert not is_baseline("oracle")  # a local model directory wins


def test_paired_differences_cover_every_metric_both_sides_have():
    a = sm.score_rows(["Ana vino.", "Luis no."], ["Ana vino.", "Luis sí."], ["Ana vino ayer.", "Luis no vino."])
    b = sm.score_rows(["Ana.", "Luis."], ["Ana vino.", "Luis sí."], ["Ana vino ayer.", "Luis no vino."])
    differences = sm.paired_differences(a, b)
    assert set(differences) == set(sm.KEYS) and differences["words"].mean == pytest.approx(-1.0)
    assert np.isclose(differences["rouge1"].mean, b[:, 0].mean() - a[:, 0].mean())
