import json

import pandas as pd
import pytest
import torch

from resumen.core.errors import ResumenError
from resumen.core.prompts import validate_template
from resumen.datamodules.summarization import SummarizationDataModule
from synthetic import write_jsonl


def make_dm(tiny_t5, files, **kwargs):
    defaults = dict(max_source_length=64, max_target_length=32, batch_size=4)
    defaults.update(kwargs)
    return SummarizationDataModule(tiny_t5, data_files=files, **defaults)


def test_prompt_template_wraps_every_article(tiny_t5, sample_files):
    dm = make_dm(tiny_t5, sample_files, max_source_length=512)
    dm.setup("fit")
    example = dm.datasets["train"][0]
    decoded = dm.tokenizer.decode(example["input_ids"], skip_special_tokens=True)
    assert decoded.startswith("Resume el siguiente articulo:")


def test_a_loader_before_setup_names_the_setup_to_call_and_loads_nothing(tiny_t5, sample_files):
    """setup runs once, where Lightning calls it (or the caller does): a loader never loads data behind its back."""
    dm = make_dm(tiny_t5, sample_files)
    for loader, stage in ((dm.train_dataloader, "fit"), (dm.val_dataloader, "fit"), (dm.test_dataloader, "test")):
        with pytest.raises(ResumenError, match=rf"split is not set up: call setup\('{stage}'\)"):
            loader()
    assert dm.datasets == {}
    dm.setup("test")
    assert next(iter(dm.test_dataloader()))["input_ids"].shape[0] == 5  # the 5 test articles, one eval batch


def test_labels_are_padded_with_minus_100_and_never_with_pad_id(tiny_t5, sample_files):
    for padding in ("batch", "longest_in_dataset", "max_length"):
        dm = make_dm(tiny_t5, sample_files, padding=padding, max_target_length=128)
        dm.setup("fit")
        batch = next(iter(dm.val_dataloader()))
        labels = batch["labels"]
        assert (labels == -100).any(), padding
        assert not (labels == dm.tokenizer.pad_token_id).any(), padding
        # every label row ends with the eos token right before its padding
        for row in labels:
            real = row[row != -100]
            assert real[-1].item() == dm.tokenizer.eos_token_id


def test_padding_modes_give_the_expected_widths(tiny_t5, sample_files):
    widths = {}
    for padding in ("batch", "longest_in_dataset", "max_length"):
        dm = make_dm(tiny_t5, sample_files, padding=padding, max_source_length=300, max_target_length=100)
        dm.setup("fit")
        batches = list(dm.val_dataloader()) + list(dm.train_dataloader())
        widths[padding] = {b["input_ids"].shape[1] for b in batches}
        longest = max(dm.datasets["train"]["length"])
    assert widths["max_length"] == {300}
    assert widths["longest_in_dataset"] >= {longest} and len(widths["longest_in_dataset"]) <= 2  # one per split
    assert len(widths["batch"]) > 2 and max(widths["batch"]) <= longest


def test_pad_to_multiple_of(tiny_t5, sample_files):
    dm = make_dm(tiny_t5, sample_files, pad_to_multiple_of=8, max_target_length=128)
    dm.setup("fit")
    for batch in dm.train_dataloader():
        assert batch["input_ids"].shape[1] % 8 == 0 and batch["labels"].shape[1] % 8 == 0


def test_subset_sizes_are_deterministic(tiny_t5, sample_files):
    ids = []
    for _ in range(2):
        dm = make_dm(tiny_t5, sample_files, max_train_samples=7, max_val_samples=3)
        dm.setup("fit")
        assert len(dm.datasets["train"]) == 7 and len(dm.datasets["validation"]) == 3
        ids.append(dm.datasets["train"]["id"])
    assert ids[0] == ids[1]


def test_missing_column_lists_the_existing_ones(tiny_t5, sample_files):
    dm = make_dm(tiny_t5, sample_files, summary_column="resumen")
    with pytest.raises(ResumenError, match=r"no column\(s\) \['resumen'\].*'text', 'summary', 'topic', 'url', 'title', 'date'"):
        dm.setup("fit")


def test_empty_rows_are_dropped_and_counted(tiny_t5, tmp_path):
    rows = [{"text": f"Artículo número {i}.", "summary": f"Resumen {i}."} for i in range(6)]
    rows[1]["text"] = "   "
    rows[2]["summary"] = ""
    rows[3]["summary"] = None
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    dm = make_dm(tiny_t5, {"train": str(path), "validation": str(path)}, max_train_samples=None)
    with pytest.warns(UserWarning, match="dropped 3 of 6 rows"):
        dm.setup("fit")
    assert sorted(dm.datasets["train"]["id"]) == ["0", "4", "5"]


def test_template_without_text_placeholder_is_refused(tiny_t5, sample_files):
    with pytest.raises(ResumenError, match=r"no \{text\} field"):
        make_dm(tiny_t5, sample_files, prompt_template="Resume el artículo")
    with pytest.raises(ResumenError, match=r"has the placeholder \{title\}: only \{text\} is filled in"):
        validate_template("{title}: {text}")


def test_tokenisation_is_cached_and_invalidated_by_settings(tiny_t5, sample_files):
    def cache_file(**kwargs):
        dm = make_dm(tiny_t5, sample_files, **kwargs)
        dm.setup("fit")
        return dm.datasets["train"].cache_files[0]["filename"]

    first = cache_file()
    assert cache_file() == first
    assert cache_file(prompt_template="Resumen de: {text}") != first
    assert cache_file(max_source_length=32) != first


def test_predict_file_txt_keeps_input_order_and_ids(tiny_t5, sample_files, tmp_path):
    articles = ["Primera noticia sobre el tiempo.", "Segunda noticia, de deportes.", "Tercera, de cultura."]
    path = tmp_path / "articles.txt"
    path.write_text("\n".join(articles) + "\n", encoding="utf-8")
    dm = make_dm(tiny_t5, sample_files, predict_file=str(path))
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert batch["id"] == ["0", "1", "2"]
    assert "reference" not in batch
    assert torch.equal(batch["index"], torch.tensor([0, 1, 2]))


def test_predict_defaults_to_test_split_with_references(tiny_t5, sample_files):
    dm = make_dm(tiny_t5, sample_files, max_test_samples=None)
    dm.setup("predict")
    expected = [json.loads(line)["summary"] for line in open(sample_files["test"], encoding="utf-8")]
    assert dm.datasets["predict"]["reference"] == expected


def test_parquet_with_mlsum_columns(tiny_t5, sample_files, tmp_path):
    files = {}
    for split, path in sample_files.items():
        frame = pd.read_json(path, lines=True)
        assert list(frame.columns) == ["text", "summary", "topic", "url", "title", "date"]
        files[split] = str(tmp_path / f"{split}.parquet")
        frame.to_parquet(files[split])
    dm = make_dm(tiny_t5, files)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 20
    assert set(dm.datasets["train"].column_names) == {
        "id",
        "index",
        "input_ids",
        "attention_mask",
        "length",
        "labels",
        "target_length",
        "reference",
        "truncated",
        "target_truncated",
    }


def test_length_grouping_reduces_padding(tiny_t5, tmp_path):
    import random

    rng = random.Random(0)
    words = "el la de que en un una noticia gobierno ciudad partido equipo año niño".split()
    rows = [{"text": " ".join(rng.choices(words, k=rng.randint(5, 120))), "summary": "Resumen breve."} for _ in range(256)]
    path = str(write_jsonl(tmp_path / "train.jsonl", rows))

    def padding_efficiency(group_by_length):
        dm = make_dm(tiny_t5, {"train": path, "validation": path}, group_by_length=group_by_length, max_source_length=512, batch_size=8, max_train_samples=None)
        dm.setup("fit")
        real = total = 0
        for batch in dm.train_dataloader():
            real += int(batch["attention_mask"].sum())
            total += batch["attention_mask"].numel()
        return real / total

    grouped, random_order = padding_efficiency(True), padding_efficiency(False)
    assert grouped > 0.9 > random_order


def test_setup_says_how_many_articles_and_summaries_are_cut(tiny_t5, tmp_path, caplog):
    """MLSUM-es articles are often longer than the recipe's 512 tokens: the share cut at each length is printed at
    setup and kept for the run report (report.json's "truncated")."""
    import logging

    long_article = "El Ayuntamiento de Valencia aprobó ayer un plan de vivienda para los barrios del centro. " * 20
    rows = [{"text": long_article if i % 4 == 0 else "El Betis ganó al Celta.", "summary": "El Betis ganó." * (1 + 20 * (i == 1))} for i in range(8)]
    files = {split: str(write_jsonl(tmp_path / f"{split}.jsonl", rows)) for split in ("train", "validation")}
    data = SummarizationDataModule(tiny_t5, data_files=files, max_source_length=64, max_target_length=16)
    with caplog.at_level(logging.INFO):
        data.setup("fit")
    assert data.truncation["train"] == {"articles": 0.25, "summaries": 0.125}  # 2 of 8 articles, 1 of 8 summaries
    assert "train: 8 examples; 25.0% of articles cut at max_source_length=64 (12.5% of summaries at max_target_length=16)" in caplog.text
    batch = next(iter(data.train_dataloader()))  # the recorded columns never reach a batch
    assert "truncated" not in batch and "target_truncated" not in batch
