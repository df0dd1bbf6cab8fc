"""Spanish fidelity on the real T5 vocabulary: detect the characters it cannot write, and extend it so it can."""

import json

import pytest

from conftest import ROOT, SAMPLE
from resumen.core.vocabulary import decode_texts, extend_tokenizer, unknown_characters
from resumen.datamodules.coverage import coverage_report

T5_LACKS = set("íúñÁÍÓÚÑ¿¡")
SENTENCE = "El niño de año y medio, ¿Rodríguez? ¡Sí! España"
# Every letter T5 lacks, beside accented letters it has (á é ó ü É Ü) and punctuation.
SAMPLE_TEXT = "Íñigo Úbeda y Óscar Ñúñez, ¿ÁLVARO? ¡Sí! Canción, pingüino, Émile y Über."


def load(directory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory)


def plain_texts() -> list[str]:
    """Prompts and summaries of the shipped sample without any character T5 lacks, plus whitespace oddities."""
    rows = [json.loads(line) for path in sorted(SAMPLE.glob("*.jsonl")) for line in path.read_text("utf-8").splitlines()]
    texts = ["Resume el siguiente articulo:\n\n" + row["text"] for row in rows] + [row["summary"] for row in rows]
    texts += ["Dos  espacios,\ttabulador\ny salto.", "  margen a ambos lados  ", "Canción y pingüino."]
    return [text for text in texts if not T5_LACKS & set(text)]


def test_report_names_exactly_the_characters_t5_cannot_write(hub_t5_tokenizer_dir):
    tokenizer = load(hub_t5_tokenizer_dir)
    report = coverage_report(tokenizer, [SAMPLE_TEXT, "Sin caracteres raros."], [SENTENCE, "Una canción."])
    assert set(report.unknown_characters) == T5_LACKS
    assert report.unknown_characters["ñ"] == {"articles": 2, "summaries": 3}  # Íñigo Ñúñez; niño año España
    assert report.articles_with_unknown == 0.5 and report.summaries_with_unknown == 0.5
    assert report.summary_round_trip == 0.5  # the sentence loses its letters, "Una canción." survives
    assert 0 < report.summary_tokens_unknown < 1
    table = report.table()
    assert "ñ (U+00F1)" in table and "decode(encode(x)) == x" in table and "50.0%" in table


def test_plain_add_tokens_breaks_t5_round_trips(hub_t5_tokenizer_dir):
    """Why extend_tokenizer exists: the library's own add_tokens inserts a space after each added character."""
    tokenizer = load(hub_t5_tokenizer_dir)
    assert decode_texts(tokenizer, [tokenizer("niño").input_ids]) == ["nio"]
    tokenizer.add_tokens(sorted(T5_LACKS))
    assert decode_texts(tokenizer, [tokenizer("niño").input_ids]) != ["niño"]


def test_extended_tokenizer_round_trips_spanish_and_keeps_plain_text_ids(hub_t5_tokenizer_dir):
    tokenizer = load(hub_t5_tokenizer_dir)
    extended = extend_tokenizer(tokenizer, unknown_characters(tokenizer, SENTENCE + SAMPLE_TEXT))
    assert len(extended) == len(tokenizer) + len(T5_LACKS)
    for text in (SENTENCE, SAMPLE_TEXT, "¿Qué?", "ñ", "Año\n\nnuevo  en   España "):
        assert decode_texts(extended, [extended(text).input_ids]) == [" ".join(text.split())], text
    assert tokenizer.unk_token_id not in extended(SENTENCE).input_ids
    for text in plain_texts():
        assert extended(text).input_ids == tokenizer(text).input_ids, text


def test_extended_tokenizer_reloads_with_auto_tokenizer(hub_t5_tokenizer_dir, tmp_path):
    tokenizer = load(hub_t5_tokenizer_dir)
    extended = extend_tokenizer(tokenizer, sorted(T5_LACKS))
    extended.save_pretrained(tmp_path / "saved")
    reloaded = load(tmp_path / "saved")
    assert reloaded(SENTENCE).input_ids == extended(SENTENCE).input_ids
    assert decode_texts(reloaded, [reloaded(SENTENCE).input_ids]) == [SENTENCE]
    assert (reloaded.pad_token_id, reloaded.eos_token_id) == (tokenizer.pad_token_id, tokenizer.eos_token_id)


def test_new_embedding_rows_start_from_close_characters(hub_t5_tokenizer_dir, tmp_path):
    from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer
    from resumen.app.tiny_models import build_tiny_t5

    model_dir = build_tiny_t5(tmp_path / "t5-real-vocab", tokenizer=load(hub_t5_tokenizer_dir), d_model=32, d_ff=64)
    module = Seq2SeqSummarizer(str(model_dir))
    module.use_added_characters(sorted(T5_LACKS))
    embeddings = module.model.get_input_embeddings().weight
    tokenizer = module.tokenizer
    assert embeddings.shape[0] == len(tokenizer) == 32100 + len(T5_LACKS)
    row = lambda token: embeddings[tokenizer.convert_tokens_to_ids(token)]  # noqa: E731
    assert row("ñ").equal(row("n")) and row("í").equal(row("i")) and row("¿").equal(row("?")) and row("¡").equal(row("!"))
    assert row("Ñ").equal(row("N")) and row("Ó").equal(row("O"))
    assert not row("ñ").equal(row("Ñ"))
    module.use_added_characters(sorted(T5_LACKS))  # the same set again changes nothing
    assert module.model.get_input_embeddings().weight.shape[0] == 32100 + len(T5_LACKS)


def test_data_module_reports_coverage_and_recommends_extension(hub_t5_tokenizer_dir, sample_files):
    from resumen.datamodules.summarization import SummarizationDataModule

    data = SummarizationDataModule(str(hub_t5_tokenizer_dir), data_files=sample_files, max_source_length=128)
    with pytest.warns(UserWarning, match="extend_vocabulary=true"):
        data.setup("fit")
    assert {"ñ", "í"} <= set(data.coverage.unknown_characters) <= T5_LACKS
    assert data.coverage.summary_round_trip < 1 and data.added_characters == []
    assert any(data.tokenizer.unk_token_id in ids for ids in data.datasets["train"]["labels"])


def test_data_module_with_extension_tokenises_without_unknowns(hub_t5_tokenizer_dir, sample_files):
    from resumen.datamodules.summarization import SummarizationDataModule

    data = SummarizationDataModule(str(hub_t5_tokenizer_dir), data_files=sample_files, max_source_length=128, extend_vocabulary=True)
    data.setup("fit")
    unk = data.base_tokenizer.unk_token_id
    assert set(data.added_characters) <= T5_LACKS and "ñ" in data.added_characters
    for split in ("train", "validation"):
        assert not any(unk in ids for ids in data.datasets[split]["input_ids"])
        assert not any(unk in ids for ids in data.datasets[split]["labels"])


def test_check_tokenizer_script_prints_the_report(hub_t5_tokenizer_dir, capsys):
    from resumen.app.check_tokenizer import main

    reports = main(["--model", str(hub_t5_tokenizer_dir), "--data", str(SAMPLE / "train.jsonl")])
    out = capsys.readouterr().out
    assert "ñ (U+00F1)" in out and "+ extend_vocabulary" in out
    assert reports["extended"].summary_round_trip == 1.0 and not reports["extended"].unknown_characters
    assert reports["tokenizer"].summary_round_trip < 1.0


@pytest.mark.slow
def test_extended_model_learns_to_write_enye_and_its_export_reloads(hub_t5_tokenizer_dir, tmp_path, monkeypatch):
    """Learnability: a tiny T5 with the real 32,100-token vocabulary, extended, writes "ñ" after fine-tuning."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from cli_helpers import run_train
    from resumen.app.tiny_models import build_tiny_t5
    from synthetic import enye_rows, write_jsonl

    model_dir = build_tiny_t5(tmp_path / "t5-real-vocab", tokenizer=load(hub_t5_tokenizer_dir))
    train = write_jsonl(tmp_path / "train.jsonl", enye_rows(256, seed=0))
    val = write_jsonl(tmp_path / "val.jsonl", enye_rows(16, seed=1))
    monkeypatch.chdir(ROOT)
    common = [
        "--config",
        str(ROOT / "configs" / "demo.yaml"),
        f"--model.model_name_or_path={model_dir}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        "--model.extend_vocabulary=true",
        f"--data.data_files={{train: {train}, validation: {val}, test: {val}}}",
        "--data.max_source_length=64",
        "--data.max_target_length=32",
        "--model.generation.max_new_tokens=24",
    ]
    run_train(
        "fit",
        *common,
        "--trainer.max_epochs=12",
        "--model.learning_rate=5e-3",
        # stop once it writes most first sentences (epoch 5 here: val/rougeL 6.8 20.5 44.8 54.6 72.8; 16 of 16 with ñ)
        "--early_stopping.patience=12",
        "--early_stopping.stopping_threshold=70",
        "--data.batch_size=16",
        "--data.max_train_samples=null",
        "--model.val_generate_samples=16",
        "--trainer.enable_progress_bar=false",
    )
    predictions = tmp_path / "predictions.jsonl"
    run_train("predict", *common, f"--predictions.output_path={predictions}", "--model.generation.num_beams=1")
    summaries = [json.loads(line)["summary"] for line in predictions.read_text("utf-8").splitlines()]
    assert len(summaries) == 16
    assert sum("ñ" in summary for summary in summaries) >= 8, summaries

    export = tmp_path / "runs" / "demo" / "version_0" / "export"
    tokenizer = AutoTokenizer.from_pretrained(export)
    model = AutoModelForSeq2SeqLM.from_pretrained(export)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) > 32100
    text = "El niño de Peñíscola ganó en A Coruña."  # the characters this data needed (ñ í); ¿ ¡ were not added
    assert decode_texts(tokenizer, [tokenizer(text).input_ids]) == [text]
    ids = tokenizer("Resume el siguiente articulo:\n\n" + enye_rows(1, seed=5)[0]["text"], return_tensors="pt").input_ids
    generated = decode_texts(tokenizer, model.generate(ids, max_new_tokens=24))[0]
    assert "ñ" in generated, generated
