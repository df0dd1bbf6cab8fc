"""The Spanish ROUGE `evaluate` module: loads offline from the repository, and agrees with the other two doors."""

import os
import unicodedata

import numpy as np
import pytest
import torch

from resumen.core.rouge import ROUGE_KEYS, rouge_intervals
from resumen.core.shipped import spanish_rouge_path
from resumen.lightning_modules.metrics import SpanishRouge

MODULE_PATH = spanish_rouge_path()  # what a user loads: the folder in the installed package

SPANISH_PAIRS = [  # (prediction, reference): accents, ñ, NFD, invisible characters, abbreviations, several sentences
    ("El niño comió una canción española.", "el niño cantó una canción española"),
    (unicodedata.normalize("NFD", "La montaña está cerca de Logroño."), "La montaña de Logroño está cerca."),
    ("El Sr. García llegó a Madrid. Habló con la Dra. Pérez.", "Habló con la Dra. Pérez. El Sr. García llegó."),
    ("Los EE. UU. suben aranceles al acero», dijo.", "«EE. UU. sube los aranceles», dijo el ministro."),
    ("ni\u200bño can\u00adción a_b", "niño canción a b"),
    ("", "Una referencia sin predicción."),
    ("El Betis ganó 3-1 al Celta… ¿Y ahora?", "El Celta perdió 1-3 ante el Betis. ¿Y ahora qué?"),
]


@pytest.fixture(scope="module")
def spanish_rouge():
    import evaluate

    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # the load must not need the hub
    return evaluate.load(MODULE_PATH)


def test_three_doors_give_identical_numbers(spanish_rouge):
    predictions, references = map(list, zip(*SPANISH_PAIRS))
    # door 1: the torchmetrics metric logged during training (indices as the data module gives them)
    metric = SpanishRouge()
    metric.update(predictions[:3], references[:3], torch.arange(3))
    metric.update(predictions[3:], references[3:], torch.arange(3, len(predictions)))
    training = {key: float(value) for key, value in metric.compute().items()}
    # door 2: the evaluate module
    via_evaluate = spanish_rouge.compute(predictions=predictions, references=references)
    # door 3: what compare.py and `test` report: the metric's per-example scores through the bootstrap
    indices, rows = metric.per_example()
    assert indices.tolist() == list(range(len(predictions)))
    reported = {key: interval.mean for key, interval in rouge_intervals(rows).items()}
    for key in ROUGE_KEYS:
        assert training[key] == pytest.approx(via_evaluate[key], abs=1e-9) == pytest.approx(reported[key], abs=1e-9)
        assert 0 < via_evaluate[key] < 100
    per_example = spanish_rouge.compute(predictions=predictions, references=references, use_aggregator=False)
    assert np.allclose(np.array([per_example[key] for key in ROUGE_KEYS]).T, rows)


def test_evaluate_module_intervals_match_the_reported_ones(spanish_rouge):
    predictions, references = map(list, zip(*SPANISH_PAIRS))
    result = spanish_rouge.compute(predictions=predictions, references=references, confidence_intervals=True)
    metric = SpanishRouge()
    metric.update(predictions, references, torch.arange(len(predictions)))
    for key, interval in rouge_intervals(metric.per_example()[1]).items():
        assert (result[f"{key}_low"], result[f"{key}_high"]) == pytest.approx((interval.low, interval.high), abs=1e-9)
        assert result[f"{key}_low"] <= result[key] <= result[f"{key}_high"]


def test_nfd_and_nfc_score_100_through_evaluate(spanish_rouge):
    text = "El niño comió en la montaña."
    result = spanish_rouge.compute(predictions=[unicodedata.normalize("NFD", text)], references=[text])
    assert result == {key: 100.0 for key in ROUGE_KEYS}


def test_for_trainer_decodes_padded_ids_like_seq2seq_trainer(spanish_rouge, real_t5_dir):
    from transformers import AutoTokenizer, EvalPrediction

    tokenizer = AutoTokenizer.from_pretrained(real_t5_dir)
    predictions, references = ["the cat sat on the mat", "a dog"], ["the cat sat", "a dog barked at night"]

    def padded(texts):  # the trainer pads across batches with -100
        ids = [tokenizer(t).input_ids for t in texts]
        width = max(map(len, ids)) + 3
        return np.array([row + [-100] * (width - len(row)) for row in ids])

    scores = spanish_rouge.for_trainer(tokenizer)(EvalPrediction(predictions=padded(predictions), label_ids=padded(references)))
    assert scores == pytest.approx(spanish_rouge.compute(predictions=predictions, references=references))


def test_works_as_seq2seq_trainer_compute_metrics(spanish_rouge, tiny_t5, tmp_path):
    import datasets
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5)
    texts = ["El Gobierno aprobó ayer la reforma.", "La lluvia inundó tres calles de Valencia."]
    features = tokenizer(texts, max_length=32, truncation=True)
    features["labels"] = tokenizer(text_target=texts, max_length=16, truncation=True)["input_ids"]
    trainer = Seq2SeqTrainer(
        model=model,
        args=Seq2SeqTrainingArguments(
            output_dir=str(tmp_path), predict_with_generate=True, generation_max_length=8, per_device_eval_batch_size=1, report_to=[], use_cpu=True
        ),
        eval_dataset=datasets.Dataset.from_dict(dict(features)),
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        compute_metrics=spanish_rouge.for_trainer(tokenizer),
    )
    metrics = trainer.evaluate()
    assert {f"eval_{key}" for key in ROUGE_KEYS} <= set(metrics)
    assert all(0 <= metrics[f"eval_{key}"] <= 100 for key in ROUGE_KEYS)


@pytest.mark.parametrize(
    "predictions, references, says",
    [
        ("El niño juega.", "el niño juega", "must be a list of strings, not str"),
        ([], [], "is empty: there is nothing to score"),
        (["a", "b"], ["a"], "got 2 predictions for 1 references"),
        ([None], ["a"], "must hold strings only"),
    ],
)
def test_bad_inputs_are_refused_with_what_they_were(spanish_rouge, predictions, references, says):
    from resumen.core.errors import ResumenError

    with pytest.raises(ResumenError, match=says):
        spanish_rouge.compute(predictions=predictions, references=references, confidence_intervals=True)


def test_very_long_texts_are_scored_on_their_first_thousand_words_in_bounded_time(spanish_rouge):
    import time

    from resumen.core.rouge import MAX_WORDS

    words = [f"palabra{i % 97}" for i in range(200_000)]  # about 2 MB each
    long_prediction, long_reference = " ".join(words), " ".join(reversed(words))
    start = time.perf_counter()
    capped = spanish_rouge.compute(predictions=[long_prediction], references=[long_reference])
    assert time.perf_counter() - start < 20  # uncapped, the LCS table alone would need 40 billion cells
    first = spanish_rouge.compute(predictions=[" ".join(words[:MAX_WORDS])], references=[" ".join(list(reversed(words))[:MAX_WORDS])])
    assert capped == first
