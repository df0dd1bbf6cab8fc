"""CTranslate2 behind the inference core: the same summaries as torch in float32 (added characters included), one
conversion per export that is redone when the weights change, and clear refusals."""

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, read_only_mount
from resumen.core.errors import ResumenError

ctranslate2 = pytest.importorskip("ctranslate2")

ARTICLES = [
    json.loads(line)["text"]
    for split in ("train", "validation", "test")
    for line in (ROOT / f"datamodules/data/{split}.jsonl").read_text(encoding="utf-8").splitlines()
]


@pytest.fixture(scope="module")
def export(finished_run, tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("ct2") / "export"
    shutil.copytree(finished_run["runs"] / "demo" / "version_0" / "export", copy)
    return copy


def load(path, backend="torch", compute_type=None, messages=None):
    from resumen.core.inference import Summarizer

    return Summarizer.load(
        str(path),
        device="cpu",
        precision="32-true",
        backend=backend,
        compute_type=compute_type,
        announce=(messages.append if messages is not None else lambda line: None),
    )


def test_float32_greedy_writes_the_torch_summaries(export):
    torch_summaries = load(export).summarize(ARTICLES, num_beams=1)
    converted = load(export, "ctranslate2", "float32").summarize(ARTICLES, num_beams=1)
    assert [s.summary for s in converted] == [s.summary for s in torch_summaries]
    assert [s.output_tokens for s in converted] == [s.output_tokens for s in torch_summaries]
    assert [s.input_tokens for s in converted] == [s.input_tokens for s in torch_summaries]


def test_float32_scores_a_summary_with_torchs_own_log_probabilities(export):
    """Beam search ranks by probabilities, not only by the argmax greedy needs: CTranslate2 float32 gives each token
    of a summary torch's log-probability. (Before resumen followed transformers 5's scale_decoder_outputs, a tied
    model converted with logits 1/sqrt(d_model) of torch's: greedy matched, beams did not.)"""
    import torch

    reference = load(export)
    engine = load(export, "ctranslate2", "float32").engine
    encoded = reference.encode(ARTICLES[:6])
    summaries = [s.summary for s in reference.summarize(ARTICLES[:6], num_beams=1)]
    for source, summary in zip(encoded["input_ids"], summaries):
        target = reference.tokenizer(text_target=[summary])["input_ids"][0]  # ends with </s>
        with torch.inference_mode():
            logits = reference.model(input_ids=torch.tensor([source]), labels=torch.tensor([target])).logits[0]
        expected = torch.log_softmax(logits, -1).gather(1, torch.tensor(target)[:, None]).squeeze(1)
        scored = engine.translator.score_batch([reference.tokenizer.convert_ids_to_tokens(source)], [reference.tokenizer.convert_ids_to_tokens(target[:-1])])[0]
        assert torch.allclose(torch.tensor(scored.log_probs), expected, atol=1e-3), (scored.log_probs, expected.tolist())


def test_an_extended_vocabulary_writes_its_added_character_the_same(tiny_t5, tmp_path):
    """An export whose tokenizer gained a character (extend_vocabulary adds those a vocabulary lacks, as "ñ" for T5)
    and whose head favours it: both engines write it."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from resumen.core.vocabulary import Vocabulary, extend_embeddings

    base = AutoTokenizer.from_pretrained(tiny_t5)
    vocabulary = Vocabulary(base)
    vocabulary.use(["ç"])  # the tiny tokenizer has every Spanish letter; it lacks this one
    assert len(vocabulary.tokenizer) == len(base) + 1
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5)
    extend_embeddings(model, vocabulary.tokenizer, ["ç"], known_rows=len(base))
    new_id = vocabulary.tokenizer.convert_tokens_to_ids("ç")
    model.config.tie_word_embeddings = False  # a head of its own (as Flan-T5's), rigged to favour the new token
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    with torch.no_grad():
        head = model.lm_head.weight
        direction = torch.randn(head.shape[1], generator=torch.Generator().manual_seed(0))
        head[:] = -direction
        head[new_id] = direction
        head[vocabulary.tokenizer.eos_token_id] = 0.1 * direction
    export = tmp_path / "extended-export"
    model.save_pretrained(export)
    vocabulary.tokenizer.save_pretrained(export)
    torch_summaries = [s.summary for s in load(export).summarize(ARTICLES[:8], num_beams=1, max_new_tokens=12)]
    assert any("ç" in summary for summary in torch_summaries)
    converted = load(export, "ctranslate2", "float32").summarize(ARTICLES[:8], num_beams=1, max_new_tokens=12)
    assert [s.summary for s in converted] == torch_summaries


def test_int8_streams_greedy_tokens_that_add_up_to_its_summary(export):
    summarizer = load(export, "ctranslate2", "int8")
    counts = {}
    pieces = list(summarizer.stream(ARTICLES[0], counts, num_beams=1))
    assert len(pieces) > 1 and "".join(pieces) == summarizer.summarize([ARTICLES[0]], num_beams=1)[0].summary
    assert counts["input_tokens"] > 0 and counts["output_tokens"] > 0


def test_the_conversion_is_made_once_reused_and_redone_when_the_weights_change(export):
    shutil.rmtree(export / "ctranslate2", ignore_errors=True)
    messages: list[str] = []
    load(export, "ctranslate2", messages=messages)
    assert len(messages) == 1 and "converting" in messages[0] and (export / "ctranslate2" / "model.bin").is_file()
    made = (export / "ctranslate2" / "model.bin").stat().st_mtime_ns
    load(export, "ctranslate2", messages=messages)
    assert len(messages) == 1 and (export / "ctranslate2" / "model.bin").stat().st_mtime_ns == made  # reused
    weights = export / "model.safetensors"
    weights.write_bytes(weights.read_bytes())  # the same weights written again (new times, same content): reused
    load(export, "ctranslate2", messages=messages)
    assert len(messages) == 1 and (export / "ctranslate2" / "model.bin").stat().st_mtime_ns == made
    _change_one_weight(weights)  # other weights (a new export in place)
    load(export, "ctranslate2", messages=messages)
    assert "converted from other weights" in messages[-1] and (export / "ctranslate2" / "model.bin").stat().st_mtime_ns != made
    assert sorted(p.name for p in export.iterdir() if p.name.startswith(".")) == [], "no temporary is left"


def _change_one_weight(weights: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(weights), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        metadata = handle.metadata()
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] + 1e-3
    save_file(tensors, str(weights), metadata=metadata)


def test_a_copied_export_keeps_its_conversion_even_on_a_read_only_mount(export, tmp_path):
    """cp -r, kubectl cp and object stores give every file a new modification time: the conversion is recognised by
    content and used as it is, also where nothing can be written (the read-only mount docs/serving.md recommends)."""
    import time

    load(export, "ctranslate2")
    time.sleep(0.01)
    copy = tmp_path / "copy"
    shutil.copytree(export, copy, copy_function=shutil.copyfile)  # contents only: every time is new
    assert (copy / "model.safetensors").stat().st_mtime_ns != (export / "model.safetensors").stat().st_mtime_ns
    messages: list[str] = []
    before = (copy / "ctranslate2" / "model.bin").stat().st_mtime_ns
    with read_only_mount(copy, tmp_path / "mounted") as mount:
        with pytest.raises(OSError):
            (mount / "probe").write_text("x")
        summary = load(mount, "ctranslate2", messages=messages).summarize(ARTICLES[:1], num_beams=1)[0].summary
    assert messages == [] and summary == load(export).summarize(ARTICLES[:1], num_beams=1)[0].summary
    load(copy, "ctranslate2", messages=messages)  # writable: the new times are recorded, nothing converted
    assert messages == [] and (copy / "ctranslate2" / "model.bin").stat().st_mtime_ns == before


@pytest.mark.parametrize("damage", ["truncated", "zero link", "entry is a file"])
def test_a_damaged_conversion_is_made_again_or_named(export, tmp_path, damage):
    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    load(copy, "ctranslate2")
    model_bin = copy / "ctranslate2" / "model.bin"
    messages: list[str] = []
    if damage == "entry is a file":
        shutil.rmtree(copy / "ctranslate2")
        (copy / "ctranslate2").write_text("mine")
        with pytest.raises(ResumenError, match="ctranslate2' is a file or a link, not a conversion resumen made: move it away"):
            load(copy, "ctranslate2", messages=messages)
        assert (copy / "ctranslate2").read_text() == "mine"
        return
    if damage == "truncated":
        model_bin.write_bytes(model_bin.read_bytes()[:1000])
    else:
        model_bin.unlink()
        model_bin.symlink_to("/dev/zero")
    load(copy, "ctranslate2", messages=messages).summarize(ARTICLES[:1], num_beams=1)
    assert len(messages) == 1 and "is damaged (model.bin is" in messages[0] and "converting again" in messages[0]
    assert model_bin.is_file() and not model_bin.is_symlink()


def test_a_killed_conversions_temporary_is_removed_by_the_next(export, tmp_path):
    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    shutil.rmtree(copy / "ctranslate2", ignore_errors=True)
    from resumen.core.files import temporary_sibling

    ours = temporary_sibling(copy / "ctranslate2")
    left = ours.with_name(ours.name.rsplit("-", 1)[0] + "-999999999")  # the same host, a writer that is gone
    left.mkdir()
    (left / "model.bin").write_bytes(b"\0" * 1000)
    load(copy, "ctranslate2")
    assert not left.exists() and (copy / "ctranslate2" / "model.bin").is_file()


def test_a_conversion_made_by_an_older_resumen_is_made_again(export):
    """Conversions before the T5 output-scaling fix carry no converter version: they are converted again."""
    from resumen.core.ctranslate2_backend import SOURCE_FILE

    messages: list[str] = []
    load(export, "ctranslate2", messages=messages)
    record = export / "ctranslate2" / SOURCE_FILE
    old = json.loads(record.read_text())
    old.pop("resumen converter")
    record.write_text(json.dumps(old))
    messages.clear()
    load(export, "ctranslate2", messages=messages)
    assert len(messages) == 1 and "converted from other weights" in messages[0]
    assert "resumen converter" in json.loads(record.read_text())


def test_a_failed_conversion_names_its_cause(tiny_t5, tmp_path):
    from resumen.core.ctranslate2_backend import ensure_conversion

    broken = tmp_path / "broken"
    shutil.copytree(tiny_t5, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ResumenError, match="could not convert .*broken' to CTranslate2 \\("):
        ensure_conversion(str(broken))
    assert not (broken / "ctranslate2").exists()


def test_a_compute_type_the_device_cannot_run_names_the_ones_it_can(export):
    with pytest.raises(ResumenError, match="compute type 'float16' cannot run on this cpu .* it can run .*int8"):
        load(export, "ctranslate2", "float16")


@pytest.mark.parametrize("flags", [{"avx2", "avx512_vnni"}, {"avx2", "amx_int8"}, {"avx2", "fma"}])
def test_the_cpu_default_is_float32_and_int8_runs_when_asked_for(monkeypatch, flags):
    """int8 lost ROUGE-L on the demo against torch on CPUs with VNNI (-4.2) and without (-8.2): never the default.
    Asked for without int8 dot products, it runs and the reason says what it costs."""
    pytest.importorskip("ctranslate2")
    from resumen.core import precision
    from resumen.core.ctranslate2_backend import choose_compute_type

    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    chosen, why = choose_compute_type("cpu", None)
    assert chosen == "float32" and "--compute-type int8" in why
    chosen, why = choose_compute_type("cpu", "int8")
    assert chosen == "int8" and (("no VNNI" in why) == (flags == {"avx2", "fma"}))


def test_a_checkpoint_is_pointed_to_its_export_first(finished_run, capsys):
    from resumen.app import summarize
    from resumen.app.cli_support import main_guard

    best = next((finished_run["runs"] / "demo" / "version_0" / "checkpoints").glob("best-*.ckpt"))
    with pytest.raises(SystemExit):
        main_guard(summarize.main, ["--model", str(best), "--backend", "ctranslate2", "hola"])
    assert f"python scripts/export.py {best} --output DIR --ctranslate2" in capsys.readouterr().err


def test_compare_puts_torch_and_int8_side_by_side_with_their_paired_difference(export, sample_files):
    from resumen.app import compare

    from resumen.core.summary_metrics import KEYS

    *rows, references = compare.main(["--dataset", "--data-file", sample_files["test"], "--models", str(export), f"{export}@ctranslate2:int8"])
    assert [row["backend"] for row in rows] == ["torch", "ctranslate2"] and rows[1]["precision"] == "int8"
    assert rows[1]["difference_vs"] == str(export) and set(rows[1]["difference"]) == set(KEYS) and references["model"] == "(references)"


def test_export_py_converts_an_export_and_fit_can_convert_its_own(export, tiny_t5, tmp_path):
    from cli_helpers import demo_args, in_root
    from resumen.app import export as export_script
    from resumen.app.train import cli_main

    shutil.rmtree(export / "ctranslate2", ignore_errors=True)
    assert export_script.main(["--ctranslate2", str(export)]) == export / "ctranslate2"
    runs = tmp_path / "runs"
    in_root(cli_main, demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", "--export.ctranslate2=true", "--trainer.enable_progress_bar=false"))
    assert (runs / "demo" / "version_0" / "export" / "ctranslate2" / "model.bin").is_file()
    assert os.path.exists(runs / "demo" / "version_0" / "export" / "ctranslate2" / "resumen_source.json")
