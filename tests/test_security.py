"""Files the tool is handed never choose code to run, and templates are data: each case as it was found."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli_helpers import demo_args, in_root
from conftest import ROOT
from resumen.core.errors import ResumenError
from resumen.app.cli_support import main_guard
from resumen.app.train import cli_main

EVIL_CODE = """
from pathlib import Path
Path(MARKER).write_text("the repository's code ran")
from transformers import T5Config, T5ForConditionalGeneration

class EvilConfig(T5Config):
    model_type = "evil-t5"

class EvilModel(T5ForConditionalGeneration):
    config_class = EvilConfig
"""


@pytest.fixture
def code_repository(tiny_t5, tmp_path) -> Path:
    """A model directory whose config asks for its own code, which leaves a marker file when it is imported."""
    repository = tmp_path / "gift-model"
    shutil.copytree(tiny_t5, repository)
    config = json.loads((repository / "config.json").read_text())
    config.update({"model_type": "evil-t5", "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModelForSeq2SeqLM": "evil.EvilModel"}})
    (repository / "config.json").write_text(json.dumps(config))
    (repository / "evil.py").write_text(f"MARKER = {str(repository / 'CODE_RAN')!r}\n" + EVIL_CODE)
    return repository


def gift_checkpoint(path: Path, model_dir: Path) -> Path:
    """A checkpoint of tensors and plain values only (it passes the CRC and weights_only checks) whose
    hyper-parameters turn remote code on and name the class to build."""
    torch.save(
        {
            "epoch": 0,
            "global_step": 1,
            "pytorch-lightning_version": "2.6.6",
            "state_dict": {"model.shared.weight": torch.zeros(2, 2)},
            "hyper_parameters": {
                "model_name_or_path": str(model_dir),
                "trust_remote_code": True,
                "_class_path": "resumen.lightning_modules.seq2seq.Seq2SeqSummarizer",
            },
        },
        path,
    )
    return path


def test_the_gift_repository_would_run_its_code_if_allowed(code_repository):
    """The control: the repository's code does run when trust_remote_code is really on."""
    from resumen.core.loading import load_config

    load_config(str(code_repository), trust_remote_code=True)
    assert (code_repository / "CODE_RAN").exists()


@pytest.mark.slow
def test_a_checkpoint_cannot_turn_on_remote_code_in_export(code_repository, tmp_path):
    gift = gift_checkpoint(tmp_path / "gift.ckpt", code_repository)
    result = subprocess.run(
        [sys.executable, "scripts/export.py", str(gift), "--output", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert not (code_repository / "CODE_RAN").exists(), "the checkpoint's trust_remote_code was obeyed"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "custom code" in errors[0] and "trust_remote_code" in errors[0], result.stderr[-1500:]


def test_a_checkpoint_cannot_turn_on_remote_code_in_test(code_repository, tiny_t5, tmp_path, capsys):
    gift = gift_checkpoint(tmp_path / "gift.ckpt", code_repository)
    with pytest.raises(SystemExit) as exit_info:
        # no --model.model_name_or_path: the command line would win over the checkpoint's own model
        args = [arg for arg in demo_args("test", tiny_t5, tmp_path / "runs", f"--ckpt_path={gift}") if not arg.startswith("--model.model_name_or_path")]
        in_root(main_guard, cli_main, args)
    assert exit_info.value.code == 2
    assert not (code_repository / "CODE_RAN").exists(), "the checkpoint's trust_remote_code was obeyed"
    assert "custom code" in capsys.readouterr().err


def test_only_the_command_line_turns_remote_code_on_in_export(code_repository, tmp_path, monkeypatch):
    """--trust-remote-code is the user's decision: it does reach the loader (the repository's code then runs)."""
    from resumen.app import export

    gift = gift_checkpoint(tmp_path / "gift.ckpt", code_repository)
    with pytest.raises(ResumenError):  # the crafted weights do not fit the model; the code has run by then
        export.main([str(gift), "--output", str(tmp_path / "out"), "--trust-remote-code"])
    assert (code_repository / "CODE_RAN").exists()


def test_a_config_file_cannot_turn_on_remote_code(code_repository, tiny_t5, tmp_path, capsys):
    """`--config evil.yaml` (or `--model evil.yaml`) with model.trust_remote_code: true is refused before anything
    loads; the same setting as a flag on the command line is the user's decision and runs, with a warning naming the
    files that will run."""
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"model:\n  model_name_or_path: {code_repository}\n  trust_remote_code: true\n")
    evil_model = tmp_path / "evil-model.yaml"
    evil_model.write_text(f"model_name_or_path: {code_repository}\ntrust_remote_code: true\n")
    args = [arg for arg in demo_args("fit", tiny_t5, tmp_path / "runs", "--trainer.max_epochs=1") if not arg.startswith("--model.model_name_or_path")]
    for extra in (["--config", str(evil)], [f"--model={evil_model}"]):
        with pytest.raises(SystemExit) as exit_info:
            in_root(main_guard, cli_main, [*args, *extra])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        assert "a config file sets model.trust_remote_code: true" in error and "--model.trust_remote_code=true" in error
        assert not (code_repository / "CODE_RAN").exists(), "the config file's trust_remote_code was obeyed"
    from resumen.core.loading import load_config

    load_config(str(code_repository), trust_remote_code=True)  # what the flag does: it runs, and says what runs
    assert (code_repository / "CODE_RAN").exists()
    assert "may run with your permissions: evil.py" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------- templates
@pytest.fixture
def weights_never_load(monkeypatch):
    """Fail the test if any model weights start loading (bad input must be refused before)."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("model weights were loaded before the bad input was refused")

    monkeypatch.setattr(transformers.AutoModelForSeq2SeqLM, "from_pretrained", refuse)


@pytest.mark.parametrize(
    "template, says",
    [
        ("{text:>99999999}", "no conversion or format spec"),
        ("{text!r}", "no conversion or format spec"),
        ("{text.__class__.__mro__}", "only {text} is filled in"),
        ("{text[0]}", "only {text} is filled in"),
        ("{0}", "only {text} is filled in"),
        ("{summary}: {text}", "only {text} is filled in"),
        ("{text", "is not a valid template"),
        ("Resume el artículo.", "has no {text} field"),
        ("{text} {text}", "has 2 {text} fields"),
        ("x" * 3000 + "{text}", "at most 2,000 are accepted"),
    ],
)
def test_a_bad_template_flag_is_one_line_before_any_weights_load(template, says, tiny_t5, tmp_path, capsys, weights_never_load):
    args = demo_args("fit", tiny_t5, tmp_path / "runs", f"--data.prompt_template={template}")
    with pytest.raises(SystemExit) as exit_info:
        in_root(main_guard, cli_main, args)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2 and len(errors) == 1 and says in errors[0], err[-1500:]
    assert not (tmp_path / "runs").exists()


def test_literal_braces_stay_literal_and_the_article_is_not_interpreted():
    from resumen.core.prompts import format_prompt

    assert format_prompt("{{Noticia}}: {text} }}", "{text.__class__} {0}") == "{Noticia}: {text.__class__} {0} }"


def test_an_export_whose_template_is_code_is_refused_before_its_weights_load(tiny_t5, tmp_path, capsys, weights_never_load):
    export = tmp_path / "export"
    shutil.copytree(tiny_t5, export)
    config = json.loads((export / "config.json").read_text())
    config["prompt_template"] = "{text.__class__.__mro__}"
    (export / "config.json").write_text(json.dumps(config))
    articles = tmp_path / "articles.txt"
    articles.write_text("El Betis ganó al Celta.\n", encoding="utf-8")
    args = demo_args("predict", str(export), tmp_path / "runs", "--ckpt_path=pretrained", f"--data.predict_file={articles}")
    with pytest.raises(SystemExit):
        in_root(main_guard, cli_main, args)
    err = capsys.readouterr().err
    assert "config.json" in err and "only {text} is filled in" in err


@pytest.mark.parametrize("record", ["trained_with.json"])  # the record (files from before it are no longer read)
def test_an_adapter_template_is_checked_when_read(record, tiny_t5, tmp_path):
    from resumen.core.errors import ResumenError
    from resumen.core.loading import load_config

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": tiny_t5, "peft_type": "LORA"}))
    template = "{text:>99999999}"
    (adapter / record).write_text(json.dumps({"prompt_template": template}) if record.endswith(".json") else template)
    with pytest.raises(ResumenError, match="no conversion or format spec"):
        load_config(str(adapter))


def test_a_template_that_fills_max_source_length_by_itself_is_refused(tiny_t5, tmp_path, capsys):
    template = "Resume el siguiente artículo de la sección de deportes y economía en una sola frase corta:\n\n{text}"
    args = demo_args("fit", tiny_t5, tmp_path / "runs", f"--data.prompt_template={template}", "--data.max_source_length=8")
    with pytest.raises(SystemExit):
        in_root(main_guard, cli_main, args)
    err = capsys.readouterr().err
    assert "leaves no room for the article within max_source_length=8" in err


# ------------------------------------------------------------------------------------ library errors, one line
def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def backtracking_tokenizer(tiny_t5, tmp_path) -> Path:
    """A model whose tokenizer.json normaliser has a regex that backtracks without end on some inputs: the Rust
    tokenizer panics (a BaseException that no ``except Exception`` stops)."""
    model = tmp_path / "backtracking"
    shutil.copytree(tiny_t5, model)
    tokenizer = json.loads((model / "tokenizer.json").read_text())
    tokenizer["normalizer"] = {
        "type": "Sequence",
        "normalizers": [tokenizer["normalizer"], {"type": "Replace", "pattern": {"Regex": "(a|aa)+$"}, "content": ""}],
    }
    (model / "tokenizer.json").write_text(json.dumps(tokenizer))
    return model


@pytest.mark.slow
def test_a_tokenizer_that_panics_is_one_line_naming_its_file(backtracking_tokenizer, tmp_path):
    rows = [{"text": "El Betis ganó al Celta " + "a" * 60 + "b.", "summary": "El Betis ganó."}] * 4
    data = [f"--data.data_files.{split}={write_rows(tmp_path / f'{split}.jsonl', rows)}" for split in ("train", "validation")]
    result = subprocess.run(
        [sys.executable, "scripts/train.py", *demo_args("fit", str(backtracking_tokenizer), tmp_path / "runs", *data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-2000:]
    assert "tokenizer.json" in errors[0] and str(backtracking_tokenizer) in errors[0] and "retry-limit" in errors[0]
    assert "stack backtrace" not in result.stderr and "Traceback" not in result.stderr


def test_compare_keeps_the_other_models_rows_when_one_panics(backtracking_tokenizer, tiny_t5, capsys):
    from resumen.app import compare

    with pytest.raises(SystemExit):
        main_guard(compare.main, ["--models", tiny_t5, str(backtracking_tokenizer), "--max-new-tokens", "2", "--json", "hola " + "a" * 60 + "b"])
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    assert [row["model"] for row in rows] == [tiny_t5, str(backtracking_tokenizer)]
    assert "output" in rows[0] and "tokenizer.json" in rows[1]["error"]


def test_a_malformed_tokenizer_json_is_one_line_before_any_weights_load(tiny_t5, tmp_path, capsys, weights_never_load):
    model = tmp_path / "garbled"
    shutil.copytree(tiny_t5, model)
    (model / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "Nope"}')
    with pytest.raises(SystemExit):
        in_root(main_guard, cli_main, demo_args("fit", str(model), tmp_path / "runs"))
    err = capsys.readouterr().err
    assert f"the tokenizer files of '{model}'" in err and "tokenizer.json" in err


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_weights_file_with_a_payload_is_refused_in_one_line_and_runs_nothing(tiny_t5, tmp_path, capsys):
    model = tmp_path / "payload"
    shutil.copytree(tiny_t5, model)
    (model / "model.safetensors").unlink()
    marker = tmp_path / "payload-ran"
    torch.save({"shared.weight": _Payload(marker)}, model / "pytorch_model.bin")
    with pytest.raises(SystemExit):
        in_root(main_guard, cli_main, demo_args("fit", str(model), tmp_path / "runs"))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "refusing to unpickle them" in errors[0] and "\x1b[" not in err
    assert not marker.exists()


def test_weights_of_another_architecture_are_refused_before_they_load(tiny_t5, tmp_path, capsys, weights_never_load):
    from transformers import BartConfig

    model = tmp_path / "mismatch"
    shutil.copytree(tiny_t5, model)
    vocab = json.loads((model / "config.json").read_text())["vocab_size"]
    bart = BartConfig(
        vocab_size=vocab,
        d_model=64,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
    )
    (model / "config.json").write_text(json.dumps(bart.to_dict()))
    with pytest.raises(SystemExit):
        in_root(main_guard, cli_main, demo_args("fit", str(model), tmp_path / "runs"))
    err = capsys.readouterr().err
    assert "do not belong to a bart model" in err and "config.json's model_type does not match" in err
