"""Bad input gets one clear line and exit code 2 before any work; crashes lose nothing; runs are reproducible."""

import json
import os
import sys
from pathlib import Path

import pytest

from cli_helpers import demo_args
from conftest import ROOT, read_only_mount
from resumen.core.files import atomic_directory, atomic_file
from resumen.app.cli_support import main_guard
from synthetic import write_jsonl


def run_guarded(main, args, capsys):
    """Run an entry point like its console script does; return (exit code, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main_guard(main, list(args))
    err = capsys.readouterr().err
    return exit_info.value.code, err


def train_main(args):
    from resumen.app.train import cli_main

    return cli_main(args)


def assert_one_line_error(code, err, pattern):
    import re

    assert code == 2, err
    assert "Traceback" not in err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, err
    assert re.search(pattern, error_lines[0]), error_lines[0]


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def fit_args(tiny_t5, tmp_path, *extra):
    return demo_args("fit", tiny_t5, tmp_path / "runs", "--trainer.max_epochs=1", *extra)


@pytest.mark.parametrize(
    "make_file,pattern",
    [
        (lambda d: d / "missing.jsonl", r"'.*missing.jsonl' does not exist"),
        (lambda d: _write(d / "data.xlsx", "x"), r"unsupported extension '.xlsx'"),
        (lambda d: _write(d / "bad.jsonl", '{"text": "a", "summary": "b"}\n{"text": "a", \n'), r"line 2 is not valid JSON"),
        (lambda d: _write(d / "empty.jsonl", ""), r"is empty"),
    ],
)
def test_bad_data_files(tiny_t5, tmp_path, capsys, in_root, make_file, pattern):
    path = make_file(tmp_path)
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, f"--data.data_files.train={path}"), capsys)
    assert_one_line_error(code, err, pattern)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.ckpt"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_column_lists_columns(tiny_t5, tmp_path, capsys, in_root):
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, "--data.text_column=body"), capsys)
    assert_one_line_error(code, err, r"no column\(s\) \['body'\]; its columns are \['text', 'summary'")


def test_empty_split_after_filtering(tiny_t5, tmp_path, capsys, in_root):
    path = write_jsonl(tmp_path / "blank.jsonl", [{"text": " ", "summary": "x"}, {"text": None, "summary": "y"}])
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, f"--data.data_files.train={path}"), capsys)
    assert_one_line_error(code, err, r"train split is empty after dropping rows")


def test_huge_article_is_truncated_not_a_crash(tiny_t5, tmp_path):
    from resumen.datamodules.summarization import SummarizationDataModule

    rows = [{"text": "palabra " * 130_000, "summary": "Un resumen."}, {"text": "Corto.", "summary": "Breve."}]
    path = str(write_jsonl(tmp_path / "big.jsonl", rows))
    assert os.path.getsize(path) > 1_000_000
    dm = SummarizationDataModule(tiny_t5, data_files={"train": path, "validation": path}, max_source_length=64)
    dm.setup("fit")
    assert max(dm.datasets["train"]["length"]) == 64


@pytest.mark.parametrize(
    "extra,pattern",
    [
        (["--data.prompt_template=Resume esto"], r"no \{text\} field"),
        (["--data.prompt_template=Resume {titulo}: {text}"], r"has the placeholder \{titulo\}"),
        (["--trainer.precision=16-mixed"], r"16-mixed.*overflows.*bf16-mixed.*32-true"),
        (["--model.generation.num_beams=0"], r"num_beams must be at least 1"),
        (["--model.generation.max_new_tokens=0"], r"max_new_tokens must be at least 1"),
    ],
)
def test_bad_settings(tiny_t5, tmp_path, capsys, in_root, extra, pattern):
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, *extra), capsys)
    assert_one_line_error(code, err, pattern)
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.parametrize(
    "model,pattern",
    [
        ("/nonexistent/model", r"does not exist"),
        ("google/flan-t5-small", r"hub cannot be reached.*hf download"),
    ],
)
def test_bad_model_paths(tmp_path, capsys, in_root, model, pattern):
    code, err = run_guarded(train_main, fit_args(model, tmp_path), capsys)
    assert_one_line_error(code, err, pattern)


def test_directory_without_config_and_wrong_model_kind(tmp_path, tiny_gpt2, capsys, in_root):
    code, err = run_guarded(train_main, fit_args(str(tmp_path), tmp_path), capsys)
    assert_one_line_error(code, err, r"no config.json")
    code, err = run_guarded(train_main, fit_args(tiny_gpt2, tmp_path), capsys)
    assert_one_line_error(code, err, r"decoder-only")
    from resumen.app import next_token

    code, err = run_guarded(next_token.main, ["--model", str(tmp_path), "x"], capsys)
    assert_one_line_error(code, err, r"no config.json")


def test_tokenizer_larger_than_embeddings(tiny_t5, tmp_path, capsys, in_root):
    import shutil

    from transformers import AutoTokenizer

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_t5, model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.add_tokens(["<nuevo1>", "<nuevo2>"])
    tokenizer.save_pretrained(model_dir)
    code, err = run_guarded(train_main, fit_args(str(model_dir), tmp_path), capsys)
    assert_one_line_error(code, err, r"tokenizer .* has \d+ tokens but the model's embeddings only \d+")


@pytest.mark.parametrize(
    "args,pattern",
    [
        (["--source", "xx", "hola"], r"not one of GemmaX2's 28"),
        (["--num-beams", "0", "hola"], r"num_beams must be at least 1"),
    ],
)
def test_translate_errors(tiny_gemma2, capsys, args, pattern):
    from resumen.app import translate

    code, err = run_guarded(translate.main, ["--model", tiny_gemma2, *args], capsys)
    assert_one_line_error(code, err, pattern)


def test_top_p_out_of_range(tiny_gpt2, capsys):
    from resumen.app import generate

    code, err = run_guarded(generate.main, ["--model", tiny_gpt2, "--do-sample", "--top-p", "0", "hola"], capsys)
    assert_one_line_error(code, err, r"top_p must be in \(0, 1\]")


def test_debug_shows_the_traceback(tiny_gpt2):
    from resumen.core.errors import ResumenError
    from resumen.app import generate

    with pytest.raises(ResumenError):
        main_guard(generate.main, ["--debug", "--model", tiny_gpt2, "--top-p", "2", "hola"])


def test_existing_export_is_refused_before_training(tiny_t5, tmp_path, capsys, in_root):
    export = tmp_path / "export"
    export.mkdir()
    (export / "config.json").write_text("{}")
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, f"--export.dirpath={export}"), capsys)
    assert_one_line_error(code, err, r"already holds an export.*--export.overwrite=true")
    assert [p.name for p in export.iterdir()] == ["config.json"]
    assert not list(tmp_path.rglob("*.ckpt"))


def test_atomic_writes_leave_the_previous_output_on_a_crash(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "model.safetensors").write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "model.safetensors").write_text("half")
            raise RuntimeError("killed while saving")
    assert (target / "model.safetensors").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]

    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text('{"id": "0"}\n')
    with pytest.raises(RuntimeError):
        with atomic_file(predictions) as handle:
            handle.write('{"id": "half')
            raise RuntimeError("killed while writing")
    assert predictions.read_text() == '{"id": "0"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "predictions.jsonl"]


def test_leftovers_of_killed_writers_are_cleaned_and_a_half_swapped_export_restored(tmp_path):
    import subprocess

    from resumen.core.files import _HOST, remove_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    (tmp_path / f".predictions.jsonl.tmp-{_HOST}-{dead}").write_text('{"id": "0", "summ')
    (tmp_path / f".export.tmp-{_HOST}-{dead}").mkdir()
    # killed between the two renames of an export swap: only the previous export, under its .old name, is whole
    old = tmp_path / f".report.old-{_HOST}-{dead}"
    old.mkdir()
    (old / "config.json").write_text("{}")
    alive = tmp_path / f".last.ckpt.tmp-{_HOST}-{os.getpid()}"  # a writer that is still running
    alive.write_bytes(b"in progress")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted([f".predictions.jsonl.tmp-{_HOST}-{dead}", f".export.tmp-{_HOST}-{dead}"])
    assert (tmp_path / "report" / "config.json").read_text() == "{}"
    assert alive.exists()


def test_nan_loss_stops_with_the_step_and_the_fix(tiny_t5, tmp_path, capsys, in_root, monkeypatch):
    from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer

    real_forward = Seq2SeqSummarizer.forward

    def forward_with_nan_after_3_steps(self, *args, **kwargs):
        output = real_forward(self, *args, **kwargs)
        if self.training and self.global_step >= 6:
            output.loss = output.loss * float("nan")
        return output

    monkeypatch.setattr(Seq2SeqSummarizer, "forward", forward_with_nan_after_3_steps)
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, "--trainer.max_epochs=3"), capsys)
    # checked on logged steps (every 2 here): the window that holds the first NaN step, without a sync per step
    assert_one_line_error(code, err, r"loss became NaN or infinite at step 6-7 \(checked on logged steps\): lower the learning rate .* bf16-mixed")
    assert list(tmp_path.rglob("last.ckpt")), "the last good checkpoint (end of epoch 0) is kept"


@pytest.mark.slow
def test_same_seed_same_losses_and_predictions(tiny_t5, tmp_path, in_root):
    from resumen.app.train import cli_main

    results = []
    for run in ("a", "b"):
        runs = tmp_path / run
        fit = cli_main(demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=2"))
        predict = cli_main(demo_args("predict", tiny_t5, runs))
        writer = next(cb for cb in predict.trainer.callbacks if hasattr(cb, "written_to"))
        results.append((fit.model.val_history, writer.written_to.read_text(encoding="utf-8")))
    assert results[0][0] == results[1][0]
    assert results[0][1] == results[1][1]


# ------------------------------------------------------------------------------- bad input, the rest of the list
def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _garbage_parquet(path: Path) -> Path:
    return _bytes(path, b"PAR1 this is not a parquet file at all PAR1")


@pytest.mark.parametrize(
    "make_file,pattern",
    [
        (lambda d: _bytes(d / "latin1.jsonl", b'{"text": "a", "summary": "b"}\n{"text": "ni\xf1o", "summary": "c"}\n'), r"line 2 is not UTF-8 \(byte 0xf1\)"),
        (lambda d: _write(d / "header.csv", "text,summary\n"), r"is empty: it has a header but no rows"),
        (lambda d: _write(d / "braces.jsonl", "{}\n{}\n"), r"is empty: it holds no rows with fields"),
        (lambda d: _write(d / "blank.jsonl", "\n  \n\n"), r"is empty: it holds only blank lines"),
        (lambda d: _write(d / "cut.json", '[{"text": "a", "summary": "b"}, {"text": "c", "sum'), r"not valid JSON .*cut short"),
        (lambda d: _garbage_parquet(d / "garbage.parquet"), r"not a readable parquet file"),
        (lambda d: (d / "folder.jsonl").mkdir() or d / "folder.jsonl", r"is a directory"),
        (lambda d: _fifo(d / "pipe.jsonl"), r"is a FIFO"),
        (
            lambda d: _write(d / "surrogate.jsonl", '{"text": "a", "summary": "b"}\n{"text": "El \\ud800 alcalde", "summary": "c"}\n'),
            r"line 2 holds a lone surrogate escape",
        ),
    ],
)
def test_more_bad_data_files(tiny_t5, tmp_path, capsys, in_root, make_file, pattern, monkeypatch):
    from resumen.lightning_modules import seq2seq

    path = make_file(tmp_path)
    loaded = []
    monkeypatch.setattr(seq2seq, "load_seq2seq_model", lambda *a, **k: loaded.append(a) or pytest.fail("weights loaded"))
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, f"--data.data_files.train={path}"), capsys)
    assert_one_line_error(code, err, pattern)
    assert not loaded, "the data is checked before any weights load"


def test_a_file_the_reader_cannot_parse_is_one_line_with_its_reason(tmp_path):
    """A CSV whose quote never closes passes the quick check; datasets' reader then fails with a
    DatasetGenerationError that said nothing of why."""
    from resumen.core.errors import ResumenError
    from resumen.datamodules.sources import load_raw_dataset

    bad = _write(tmp_path / "open-quote.csv", 'text,summary\n"El alcalde, dijo,adiós\nb,c\n')
    with pytest.raises(
        ResumenError,
        match=r"open-quote.csv cannot be read \(ParserError: .*EOF inside string.*\); likely a "
        r"quote \(\"\) opened and never closed: fix the file",
    ):
        load_raw_dataset(None, None, None, {"train": str(bad)}, cache_dir=str(tmp_path / "cache"))


def test_a_utf8_bom_and_a_line_separator_inside_a_row_are_accepted(tiny_t5, tmp_path):
    from resumen.datamodules.summarization import SummarizationDataModule

    rows = '{"text": "El niño juega.\u2028Y gana.", "summary": "Juega."}\n{"text": "Otra noticia.", "summary": "Otra."}\n'
    path = _bytes(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + rows.encode())
    dm = SummarizationDataModule(tiny_t5, data_files={"train": str(path), "validation": str(path)}, coverage_samples=0)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 2


def test_a_bad_predict_file_keeps_the_earlier_predictions(one_epoch_run, tiny_t5, tmp_path, capsys, in_root):
    output = tmp_path / "predictions.jsonl"
    output.write_text('{"id": "0", "summary": "earlier"}\n', encoding="utf-8")
    articles = _bytes(tmp_path / "articles.txt", b"Una noticia.\nOtra \xe1rbol.\n")
    args = demo_args("predict", tiny_t5, one_epoch_run, f"--data.predict_file={articles}", f"--predictions.output_path={output}")
    code, err = run_guarded(train_main, args, capsys)
    assert_one_line_error(code, err, r"line 2 is not UTF-8")
    assert output.read_text(encoding="utf-8") == '{"id": "0", "summary": "earlier"}\n'


@pytest.mark.parametrize(
    "extra,pattern",
    [
        (["--data.max_train_samples=0"], r"data.max_train_samples must be at least 1, or null for every row"),
        (["--data.max_val_samples=-3"], r"data.max_val_samples must be at least 1"),
        (["--data.eval_batch_size=0"], r"data.eval_batch_size must be at least 1"),
        (["--data.pad_to_multiple_of=0"], r"data.pad_to_multiple_of must be at least 1"),
        (["--data.max_source_length=100000"], r"max_source_length=100000 is far beyond"),
        (["--trainer.max_epochs=0"], r"trainer.max_epochs=0 trains nothing"),
        (["--model.learning_rate=abc"], r'"model.learning_rate": Expected a .*float.*Got value: abc'),
        (["--model.no_such_option=1"], r"unrecognized arguments: --model.no_such_option=1"),
    ],
)
def test_more_bad_settings(tiny_t5, tmp_path, capsys, in_root, extra, pattern):
    code, err = run_guarded(train_main, fit_args(tiny_t5, tmp_path, *extra), capsys)
    assert_one_line_error(code, err, pattern)
    assert "usage:" not in err and len(err.strip().splitlines()) <= 3, err  # no 110 lines of usage first
    assert not list(tmp_path.rglob("*.ckpt"))


def test_max_source_length_beyond_the_models_positions(tiny_t5, tmp_path, capsys, in_root):
    """BART has learned positions (T5's are relative: no limit); the check reads only the model's config."""
    from transformers import AutoTokenizer, BartConfig

    bart = tmp_path / "tiny-bart"
    tokenizer = AutoTokenizer.from_pretrained(tiny_t5)
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
    )
    config.save_pretrained(bart)  # no weights needed: the refusal comes before any load
    tokenizer.save_pretrained(bart)
    code, err = run_guarded(train_main, fit_args(str(bart), tmp_path, "--data.max_source_length=100"), capsys)
    assert_one_line_error(code, err, r"data.max_source_length=100 exceeds the 64 positions of '.*tiny-bart': use at most 64")


@pytest.fixture(scope="module")
def one_epoch_run(tiny_t5, tmp_path_factory) -> Path:
    from cli_helpers import in_root, run_train

    runs = tmp_path_factory.mktemp("one-epoch") / "runs"
    in_root(run_train, *demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"))
    return runs


def _last(runs: Path) -> Path:
    return runs / "demo" / "version_0" / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize(
    "damage,pattern",
    [
        (lambda data: b"these are my notes, not a checkpoint\n", r"is not a torch checkpoint \(no zip archive"),
        (lambda data: data[: len(data) // 2], r"is not a torch checkpoint .*cut short"),
        (lambda data: data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0x10]) + data[len(data) // 2 + 1 :], r"is corrupted \(checksum mismatch"),
    ],
    ids=["text-file", "truncated", "bit-flip"],
)
def test_a_damaged_checkpoint_is_one_line(one_epoch_run, tiny_t5, tmp_path, capsys, in_root, damage, pattern):
    from resumen.app import export

    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(damage(_last(one_epoch_run).read_bytes()))
    for entry_point, args in [
        (train_main, demo_args("test", tiny_t5, tmp_path / "runs", f"--ckpt_path={damaged}")),
        (train_main, fit_args(tiny_t5, tmp_path, f"--ckpt_path={damaged}")),
        (export.main, [str(damaged), "--output", str(tmp_path / "out")]),
    ]:
        code, err = run_guarded(entry_point, args, capsys)
        assert_one_line_error(code, err, pattern)
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_of_another_model_size_names_the_reason(one_epoch_run, tmp_path, capsys):
    from resumen.app import export
    from resumen.app.tiny_models import build_tiny_t5

    wider = build_tiny_t5(tmp_path / "wider-t5", d_model=96)
    code, err = run_guarded(export.main, [str(_last(one_epoch_run)), "--model", str(wider), "--output", str(tmp_path / "out")], capsys)
    assert_one_line_error(code, err, r"trained from a model of another size: 'model\..*' is \[\d+, 64\] there and \[\d+, 96\]")


# ---------------------------------------------------------------------------------------- the smaller failures
def test_predict_keeps_articles_without_a_reference(one_epoch_run, tiny_t5, tmp_path, in_root):
    rows = [
        {"text": "El Betis ganó al Celta.", "summary": None},
        {"text": "Llueve en Sevilla.", "summary": ""},
        {"text": "Sube el pan.", "summary": "El pan sube."},
    ]
    articles = write_jsonl(tmp_path / "articles.jsonl", rows)
    output = tmp_path / "predictions.jsonl"
    train_main(
        demo_args(
            "predict", tiny_t5, one_epoch_run, f"--data.predict_file={articles}", f"--predictions.output_path={output}", "--trainer.enable_progress_bar=false"
        )
    )
    predictions = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in predictions] == ["0", "1", "2"]
    assert "reference" not in predictions[0] and "reference" not in predictions[1]
    assert predictions[2]["reference"] == "El pan sube."


def test_no_generation_in_validation_selects_the_best_by_loss(tiny_t5, tmp_path, in_root):
    with pytest.warns(UserWarning, match="best checkpoint is chosen by the lowest val/loss instead"):
        cli = train_main(fit_args(tiny_t5, tmp_path, "--model.val_generate_samples=0", "--trainer.enable_progress_bar=false"))
    checkpoint = cli.trainer.checkpoint_callback
    assert checkpoint.monitor == "val/loss" and Path(checkpoint.best_model_path).name.startswith("best-epoch01-loss")
    assert (Path(cli.trainer.log_dir) / "export" / "model.safetensors").is_file()


# --------------------------------------------------------------------------------------------- companion scripts
def test_script_inputs_split_only_on_newlines_and_must_be_text(tiny_gpt2, tmp_path, capsys, monkeypatch):
    import io

    from resumen.app import next_token

    inputs = _bytes(tmp_path / "inputs.txt", "uno\u2028dos\x0ctres\r\ncuatro\n\n".encode())
    rows = next_token.main(["--model", tiny_gpt2, "--file", str(inputs), "--json", "--top-k", "2"])
    assert [row["text"] for row in rows] == ["uno\u2028dos\x0ctres", "cuatro"]
    capsys.readouterr()

    binary = io.TextIOWrapper(io.BytesIO(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"))
    monkeypatch.setattr(sys, "stdin", binary)
    code, err = run_guarded(next_token.main, ["--model", tiny_gpt2, "-"], capsys)
    assert_one_line_error(code, err, r"standard input is not UTF-8 text")


@pytest.mark.parametrize(
    "args,pattern",
    [(["--top-k", "0", "hola"], r"--top-k must be at least 1"), ([""], r"input 1 is empty")],
)
def test_next_token_refuses_nothing_to_show(tiny_gpt2, capsys, args, pattern):
    from resumen.app import next_token

    code, err = run_guarded(next_token.main, ["--model", tiny_gpt2, *args], capsys)
    assert_one_line_error(code, err, pattern)


def test_compare_reports_a_bad_model_and_keeps_the_others(tiny_t5, tiny_gpt2, tmp_path, capsys):
    from resumen.app import compare

    output = tmp_path / "comparison.json"
    args = ["--models", tiny_t5, "/nonexistent/model", tiny_gpt2, "--max-new-tokens", "3", "--json-output", str(output), "hola"]
    with pytest.raises(SystemExit) as exit_info:
        main_guard(compare.main, args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "error: /nonexistent/model: model path '/nonexistent/model' does not exist" in err
    assert "1 of 3 model(s) failed: /nonexistent/model" in err
    rows = json.loads(output.read_text(encoding="utf-8"))
    assert [row["model"] for row in rows] == [tiny_t5, "/nonexistent/model", tiny_gpt2]
    assert "output" in rows[0] and "error" in rows[1] and "output" in rows[2]


def test_compare_checks_its_output_files_before_scoring(tiny_t5, sample_files, tmp_path, capsys, monkeypatch):
    """--plot DIR, --json-output DIR or a read-only folder used to be found after every score was computed (exit 2,
    nothing printed): now one line before any model loads."""
    from resumen.app import compare

    monkeypatch.setattr(compare, "compare_dataset", lambda args: pytest.fail("scored before the outputs were checked"))
    base = ["--dataset", "--data-file", sample_files["test"], "--models", tiny_t5]
    (tmp_path / "dir.png").mkdir()
    for extra, pattern in [
        (["--plot", str(tmp_path)], "--plot writes a PNG"),
        (["--plot", str(tmp_path / "dir.png")], "--plot '.*' is a directory"),
        (["--json-output", str(tmp_path)], "--json-output '.*' is a directory"),
        (["--output", str(tmp_path)], "--output '.*' is a directory"),
    ]:
        code, err = run_guarded(compare.main, [*base, *extra], capsys)
        assert_one_line_error(code, err, pattern)
    with read_only_mount(tmp_path / "dir.png", tmp_path / "mounted") as mount:
        code, err = run_guarded(compare.main, [*base, "--markdown-output", str(mount / "sub" / "table.md")], capsys)
        assert_one_line_error(code, err, "--markdown-output .* cannot be written")


def test_a_tokenizer_without_a_padding_token_is_one_line_before_any_data_work(tiny_t5, tmp_path, capsys, monkeypatch, in_root):
    """It was reported by the collator, after the whole corpus was tokenised (14.5 minutes on the full MLSUM-es)."""
    import shutil

    from resumen.datamodules.summarization import SummarizationDataModule
    from resumen.lightning_modules import seq2seq

    model = tmp_path / "no-pad"
    shutil.copytree(tiny_t5, model)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.pop("pad_token", None)
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    monkeypatch.setattr(seq2seq, "load_seq2seq_model", lambda *a, **k: pytest.fail("weights loaded"))
    monkeypatch.setattr(SummarizationDataModule, "setup", lambda *a, **k: pytest.fail("data set up"))
    code, err = run_guarded(train_main, fit_args(str(model), tmp_path), capsys)
    assert_one_line_error(code, err, r"the tokenizer of '.*no-pad' has no padding token, which batches of articles need")
