"""Data and model share one tokenizer and one config read; the prompt a model was trained with travels with it."""

import json

from cli_helpers import demo_args, in_root, run_train


def test_one_fit_reads_the_config_once_and_builds_one_tokenizer(tiny_t5, tmp_path, monkeypatch):
    import transformers

    from core import loading

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
    cli = in_root(run_train, *demo_args("fit", tiny_t5, tmp_path / "runs", "--trainer.max_epochs=1",
                                        "--trainer.enable_progress_bar=false"))
    assert calls == {"config": 1, "tokenizer": 1}
    assert cli.datamodule.tokenizer is cli.model.tokenizer and cli.datamodule.vocabulary is cli.model.vocabulary


def test_the_training_prompt_travels_with_the_export(tiny_t5, tmp_path):
    template = "Noticia: {text}\n\nResumen en una frase:"
    runs = tmp_path / "runs"
    in_root(run_train, *demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
                                  f"--data.prompt_template={template}"))
    export = runs / "demo" / "version_0" / "export"
    assert json.loads((export / "config.json").read_text())["prompt_template"] == template
    assert "`Noticia: {text}\\n\\nResumen en una frase:`" in (export / "README.md").read_text(encoding="utf-8")

    articles = tmp_path / "articles.txt"
    articles.write_text("El Betis ganó al Celta en el último minuto.\n", encoding="utf-8")
    predicted = in_root(run_train, *demo_args("predict", str(export), tmp_path / "runs-export", "--ckpt_path=pretrained",
                                              f"--data.predict_file={articles}", "--trainer.enable_progress_bar=false"))
    data = predicted.datamodule
    assert data.prompt_template == template  # no --data.prompt_template given: the export's own
    prompt = data.tokenizer.decode(data.datasets["predict"][0]["input_ids"], skip_special_tokens=True)
    assert prompt.startswith("Noticia: El Betis") and prompt.endswith("Resumen en una frase:")
