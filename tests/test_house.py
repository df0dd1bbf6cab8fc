"""Data and model share one tokenizer and one config read; the prompt a model was trained with travels with it."""

import json
from pathlib import Path

from cli_helpers import demo_args, in_root, run_train


def test_one_fit_reads_the_config_once_and_builds_one_tokenizer(tiny_t5, tmp_path, monkeypatch):
    import transformers

    from resumen.core import loading

    loading._read_config.cache_clear()
    calls = {"config": 0, "tokenizer": 0}
    real_config, real_tokenizer = transformers.AutoConfig.from_pretrained, transformers.AutoTokenizer.from_pretrained

    def count(kind, real):
        def counted(*args, **kwargs):
            calls[kind] += 1
            return real(*args, **kwargs)

        return counted

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", count("config", real_config))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", count("tokenizer", real_tokenizer))
    cli = in_root(run_train, *demo_args("fit", tiny_t5, tmp_path / "runs", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"))
    assert calls == {"config": 1, "tokenizer": 1}
    assert cli.datamodule.tokenizer is cli.model.tokenizer and cli.datamodule.vocabulary is cli.model.vocabulary


def test_a_resume_checks_last_ckpt_once_and_reads_its_weights_once(tiny_t5, tmp_path, monkeypatch):
    """fit --ckpt_path last: one CRC pass over last.ckpt and one full load (Lightning's); its settings and counters
    (the resume decision, the vocabulary) are read memory-mapped, without reading the weights."""
    import zipfile

    import torch

    runs = tmp_path / "runs"
    in_root(run_train, *demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"))
    reads = []
    real_load, real_testzip = torch.load, zipfile.ZipFile.testzip

    def load(path, *args, **kwargs):
        reads.append(("mapped" if kwargs.get("mmap") else "full", Path(path).name))
        return real_load(path, *args, **kwargs)

    def testzip(archive):
        reads.append(("crc", Path(archive.filename).name))
        return real_testzip(archive)

    monkeypatch.setattr(torch, "load", load)
    monkeypatch.setattr(zipfile.ZipFile, "testzip", testzip)
    cli = in_root(run_train, *demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false", "--ckpt_path=last"))
    assert cli.trainer.current_epoch == 2
    last = [kind for kind, name in reads if name == "last.ckpt"]
    assert last.count("crc") == 1 and last.count("full") == 1 and set(last) == {"crc", "full", "mapped"}, reads


def test_the_training_prompt_travels_with_the_export(tiny_t5, tmp_path):
    template = "Noticia: {text}\n\nResumen en una frase:"
    runs = tmp_path / "runs"
    in_root(run_train, *demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", f"--data.prompt_template={template}"))
    export = runs / "demo" / "version_0" / "export"
    assert json.loads((export / "config.json").read_text())["prompt_template"] == template
    assert "`Noticia: {text}\\n\\nResumen en una frase:`" in (export / "README.md").read_text(encoding="utf-8")

    articles = tmp_path / "articles.txt"
    articles.write_text("El Betis ganó al Celta en el último minuto.\n", encoding="utf-8")
    predicted = in_root(
        run_train,
        *demo_args(
            "predict", str(export), tmp_path / "runs-export", "--ckpt_path=pretrained", f"--data.predict_file={articles}", "--trainer.enable_progress_bar=false"
        ),
    )
    data = predicted.datamodule
    assert data.prompt_template == template  # no --data.prompt_template given: the export's own
    prompt = data.tokenizer.decode(data.datasets["predict"][0]["input_ids"], skip_special_tokens=True)
    assert prompt.startswith("Noticia: El Betis") and prompt.endswith("Resumen en una frase:")
