"""Unit tests of the decisions the commands take, dicts in and decisions out, no fit and no process: which settings
may change on resume, when a run is finished, the trained-with record, how articles are encoded, the training order
a resumed run continues, and the CLI's up-front checks. (The end-to-end tests check the same promises as a user meets
them; these say which rule broke.)"""

import inspect
from types import SimpleNamespace

import pytest

from resumen.core.errors import ResumenError


# ------------------------------------------------------------------------------------------- resume decisions
def test_only_the_free_settings_may_change_on_resume():
    from resumen.app.resume import differences

    saved = {"model": {"learning_rate": 0.001}, "trainer": {"max_epochs": 4, "precision": "32-true"}, "seed_everything": 42}
    now = {"model": {"learning_rate": 0.001}, "trainer": {"max_epochs": 8, "precision": "bf16-mixed"}, "seed_everything": 42}
    assert differences(saved, now) == []  # more epochs, another precision: the same run, continued
    changed = {**now, "model": {"learning_rate": 0.01}}
    assert differences(saved, changed) == [("model.learning_rate", 0.001, 0.01)]
    assert differences(saved, {**now, "seed_everything": 7}) == [("seed_everything", 42, 7)]


def test_an_option_added_since_the_run_counts_as_its_default():
    from resumen.app.resume import differences

    saved = {"model": {"learning_rate": 0.001}}
    defaults = {"model": {"fast_cpu_dropout": True}}
    assert differences(saved, {"model": {"learning_rate": 0.001, "fast_cpu_dropout": True}}, defaults) == []
    assert differences(saved, {"model": {"learning_rate": 0.001, "fast_cpu_dropout": False}}, defaults) == [("model.fast_cpu_dropout", True, False)]


def test_the_checkpoint_own_settings_and_seed_win_over_a_hand_edited_config():
    from resumen.app.resume import checkpoint_differences

    checkpoint = {
        "hyper_parameters": {"learning_rate": 0.001, "_class_path": "x"},
        "datamodule_hyper_parameters": {"batch_size": 4},
        "callbacks": {"RandomState": {"per_rank": [], "seed_everything": 42}},
    }
    same = {"model": {"learning_rate": 0.001}, "data": {"batch_size": 4}, "seed_everything": 42}
    assert checkpoint_differences(checkpoint, same, None) == []
    assert checkpoint_differences(checkpoint, {**same, "data": {"batch_size": 2}}, None) == [("data.batch_size", 4, 2)]
    assert checkpoint_differences(checkpoint, {**same, "seed_everything": 7}, None) == [("seed_everything", 42, 7)]
    older = {k: v for k, v in checkpoint.items() if k != "callbacks"}  # a checkpoint that did not record its seed
    assert checkpoint_differences(older, {**same, "seed_everything": 7}, None) == []


@pytest.mark.parametrize(
    "checkpoint, max_epochs, max_steps, finished",
    [
        ({"global_step": 40, "loops": {"fit_loop": {"epoch_progress": {"current": {"processed": 4}}}}}, 4, -1, "trained 4 of max_epochs=4"),
        ({"global_step": 40, "loops": {"fit_loop": {"epoch_progress": {"current": {"processed": 4}}}}}, 8, -1, None),
        ({"global_step": 40, "epoch": 1}, 8, 40, "ran 40 of max_steps=40"),
        ({"global_step": 10, "epoch": 1}, 2, -1, "trained 2 of max_epochs=2"),  # no loop progress: epoch + 1
    ],
)
def test_a_run_is_finished_when_its_epochs_or_steps_are_done(checkpoint, max_epochs, max_steps, finished):
    from resumen.app.resume import training_finished

    reason = training_finished(checkpoint, max_epochs, max_steps)
    assert (reason is None) if finished is None else (finished in reason)


# ------------------------------------------------------------------------------------------ trained-with record
def test_the_trained_with_record_round_trips_and_refuses_bad_values():
    from resumen.core.trained_with import TrainedWith

    record = TrainedWith(prompt_template="Resume:\n\n{text}", max_source_length=80, added_characters=["ñ"], base_model="t5")
    assert TrainedWith.from_dict(record.as_dict(), "test") == record
    assert TrainedWith.from_dict({**record.as_dict(), "written_by_a_newer_resumen": 1}, "test") == record
    for bad, says in [
        ({"max_source_length": 0}, "positive integer"),
        ({"added_characters": "ñ"}, "list of characters"),
        ({"prompt_template": "{text.__class__}"}, "template"),
        ([], "not a mapping"),
    ]:
        with pytest.raises(ResumenError, match=says):
            TrainedWith.from_dict(bad, "export/config.json")


def test_an_export_without_a_record_is_a_plain_model_and_a_newer_format_is_refused():
    from resumen.core.trained_with import FORMAT, TrainedWith, from_checkpoint, from_model_config

    assert from_model_config(SimpleNamespace(), "plain-t5") is None
    # a template without the record (a format never released) is not read: the model is a plain one
    assert from_model_config(SimpleNamespace(prompt_template="Resumen:\n{text}"), "pre-record-export") is None
    assert from_checkpoint({"prompt_template": "Resumen:\n{text}", "added_characters": ["ñ"]}, "pre-record.ckpt") is None
    record = TrainedWith(max_source_length=80)
    assert record.as_dict()["format"] == FORMAT == 1
    unversioned = {k: v for k, v in record.as_dict().items() if k != "format"}  # what 0.1.0 wrote: format 1
    assert TrainedWith.from_dict(unversioned, "0.1-export") == record
    with pytest.raises(ResumenError, match="record of format 2, written by a newer resumen .* upgrade resumen"):
        TrainedWith.from_dict({**record.as_dict(), "format": 2}, "export/config.json")


# -------------------------------------------------------------------------------------------------- encoding
def test_an_article_is_encoded_in_its_template_and_cut_to_max_source_length(tiny_t5):
    from resumen.core.encoding import encode_articles
    from resumen.core.loading import load_tokenizer

    tokenizer = load_tokenizer(tiny_t5)
    short, long = "El Betis ganó al Celta.", "El Betis ganó al Celta en el último minuto. " * 40
    encoded = encode_articles(tokenizer, "Resume el siguiente articulo:\n\n{text}", [short, long], 32)
    assert encoded["truncated"] == [False, True] and encoded["length"][1] == 32 and encoded["length"][0] < 32
    alone = tokenizer("Resume el siguiente articulo:\n\n" + short)["input_ids"]
    assert encoded["input_ids"][0] == alone  # filled by concatenation, tokenised as the tokenizer does


# -------------------------------------------------------------------------------------------------- sampling
def test_an_epochs_order_depends_only_on_seed_and_epoch_and_a_resume_skips_the_batches_done():
    from resumen.datamodules.sampling import ResumableSampler

    data = list(range(10))
    first = ResumableSampler(data, batch_size=3, seed=1)
    again = ResumableSampler(data, batch_size=3, seed=1)
    assert first.epoch_order() == again.epoch_order() and sorted(first.epoch_order()) == data
    first.set_epoch(1)
    assert first.epoch_order() != again.epoch_order()  # a new order each epoch
    resumed = ResumableSampler(data, batch_size=3, seed=1, batches_done=lambda: 2)
    assert list(resumed) == again.epoch_order()[6:]  # the third batch on, as the uninterrupted run
    ranks = [ResumableSampler(data, batch_size=3, num_replicas=2, rank=r, seed=1).epoch_order() for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 5 and sorted(ranks[0] + ranks[1]) == data  # split, nothing repeated


# ------------------------------------------------------------------------------------------------- CLI checks
def test_the_cli_refuses_an_optimizer_of_its_own_and_settings_that_train_nothing():
    from resumen.app.cli_checks import check_fit_settings, refuse_optimizer_options

    with pytest.raises(ResumenError, match="the model owns its optimizer"):
        refuse_optimizer_options(["fit", "--optimizer=SGD"])
    refuse_optimizer_options(["fit", "--model.learning_rate=0.1"])
    config = _config(max_epochs=0)
    with pytest.raises(ResumenError, match="trainer.max_epochs=0 trains nothing"):
        check_fit_settings(config, warn=lambda message: None)


def test_no_validation_summaries_choose_the_best_checkpoint_by_the_loss():
    from resumen.app.cli_checks import check_fit_settings

    warnings: list[str] = []
    config = _config(val_generate_samples=0)
    check_fit_settings(config, warn=warnings.append)
    assert (config.checkpoint.monitor, config.checkpoint.mode) == ("val/loss", "min")
    assert config.checkpoint.filename.startswith("best-epoch{epoch:02d}-loss")
    assert len(warnings) == 1 and "chosen by the lowest val/loss" in warnings[0]


class _Section(dict):
    """A config section as jsonargparse hands it: keys read as attributes too."""

    __getattr__ = dict.get

    def __setattr__(self, name, value):
        self[name] = value


def _config(max_epochs: int = 3, val_generate_samples: int = 5) -> _Section:
    from resumen.app.cli_checks import DEFAULT_CHECKPOINT_NAME

    return _Section(
        trainer=_Section(max_epochs=max_epochs, max_steps=-1),
        model=_Section(val_generate_samples=val_generate_samples),
        checkpoint=_Section(monitor="val/rougeL", mode="max", filename=DEFAULT_CHECKPOINT_NAME),
        early_stopping=None,
    )


# ----------------------------------------------------------------------------------------------- output length
def test_a_summarys_length_ends_at_its_first_end_token_whatever_fills_the_row():
    """Beam search fills a finished row with end tokens up to the batch's longest (transformers 5): every summary
    of a batch reported the longest length (30/30/30 instead of 20/30/28). A model may also write the padding token
    (0, T5's decoder start) as text."""
    import torch

    from resumen.core.inference import generated_lengths

    output = torch.tensor([[0, 7, 8, 1, 1, 1, 1], [0, 7, 8, 9, 10, 11, 1], [0, 0, 0, 1, 0, 0, 0], [0, 7, 8, 9, 10, 11, 12]])
    assert generated_lengths(output, 1).tolist() == [3, 6, 3, 6]  # the end token counts; no end: every token
    assert generated_lengths(output, [1, 12]).tolist() == [3, 6, 3, 6]


def test_beam_search_reports_each_summarys_own_length(tiny_t5):
    """The same through generate(): rows made to end after 2, 6 and 10 tokens, with 4 beams and greedily."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    from resumen.core.generation import GenerationSettings
    from resumen.core.inference import Summarizer, generate_summaries

    class EndAfter(LogitsProcessor):
        def __init__(self, beams: int) -> None:
            self.beams = beams

        def __call__(self, input_ids, scores):
            for row in range(scores.shape[0]):
                if input_ids.shape[1] >= 3 + 4 * (row // self.beams):  # example 0 ends at step 3, 1 at 7, 2 at 11
                    scores[row, :] = -1e9
                    scores[row, 1] = 0.0  # </s>
            return scores

    summarizer = Summarizer.load(tiny_t5, device="cpu")
    ids = torch.tensor([[5, 6, 7, 1], [8, 9, 10, 1], [11, 12, 13, 1]])
    for beams in (1, 4):
        settings = GenerationSettings(num_beams=beams, max_new_tokens=20)
        _, lengths = generate_summaries(
            summarizer.model, summarizer.tokenizer, ids, torch.ones_like(ids), settings, logits_processor=LogitsProcessorList([EndAfter(beams)])
        )
        assert lengths.tolist() == [3, 7, 11], beams


def test_the_default_model_is_the_export_of_the_run_that_ended_last(tmp_path):
    """Testing an older run or converting it for CTranslate2 touched its export, which then became the default
    (the newest file time): the default now follows the time each fit recorded when it ended."""
    import json
    import os
    import time

    from resumen.app.common import latest_export

    ended = {"demo/version_0": 1000.0, "demo/version_1": 3000.0, "other/version_0": 2000.0, "demo/version_2": None}
    for name, when in ended.items():
        export = tmp_path / name / "export"
        export.mkdir(parents=True)
        (export / "config.json").write_text("{}")
        if when is not None:
            (export.parent / "status.json").write_text(json.dumps({"status": "finished", "time": when}))
    now = time.time()
    os.utime(tmp_path / "demo/version_0/export/config.json", (now, now))  # an older run, tested or converted just now
    os.utime(tmp_path / "demo/version_0/export", (now, now))
    assert latest_export(tmp_path) == tmp_path / "demo/version_1/export"
    assert latest_export(tmp_path / "nothing") is None


def test_hints_name_what_works(tmp_path, monkeypatch):
    """Issue 40's hints that failed as written: a run directory given as the model (it got a sharded-checkpoint
    message), the hub's advice to unset HF_HUB_OFFLINE when it was not set, compare's flag for local data, and the
    CTranslate2 comparison command (without --dataset it ran the three default hub models)."""
    from resumen.core.ctranslate2_backend import choose_compute_type
    from resumen.core.loading import _explain_load_error
    from resumen.app.common import load_summarizer

    run = tmp_path / "runs" / "demo" / "version_0"
    (run / "export").mkdir(parents=True)
    (run / "export" / "config.json").write_text("{}")
    with pytest.raises(ResumenError, match=r"is a run directory, not a model: did you mean its export, --model .*version_0/export"):
        load_summarizer(str(run), "cpu")
    from huggingface_hub.errors import LocalEntryNotFoundError

    unreachable = OSError("We couldn't connect to 'https://huggingface.co'")
    unreachable.__cause__ = LocalEntryNotFoundError("offline")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert "(no network: go online)" in str(_explain_load_error("google/flan-t5-small", unreachable))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "(HF_HUB_OFFLINE is set: unset it once online)" in str(_explain_load_error("google/flan-t5-small", unreachable))
    from resumen.datamodules.sources import load_raw_dataset

    with pytest.raises(ResumenError, match=r"hub is offline .*train.py: --data.data_files.test=PATH.*compare.py: --data-file PATH"):
        load_raw_dataset("nobody/no-such-dataset", "es", None, None, cache_dir=str(tmp_path / "cache"))
    pytest.importorskip("ctranslate2")
    assert "compare.py --dataset --models EXPORT EXPORT@ctranslate2:int8" in choose_compute_type("cpu", None)[1]


# ------------------------------------------------------------------------------------------------- the gate
def test_the_gate_refuses_other_host_names_on_loopback_unless_allowed():
    """DNS rebinding against a keyless loopback server, and the reverse proxy that passes its own Host name
    (--allowed-host). The gate in front of every route, called as uvicorn calls it."""
    import asyncio

    from resumen.app.serving.app import Gate

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def status(gate: Gate, host: bytes, method: str = "GET") -> tuple[int, bytes]:
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "path": "/health", "headers": [(b"host", host)]}
        asyncio.run(gate(scope, None, send))
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    strict = Gate(app, loopback_only=True)
    assert status(strict, b"127.0.0.1:8000") == (200, b"ok") and status(strict, b"localhost")[0] == 200
    assert status(strict, b"[::1]:8000")[0] == 200 and status(strict, b"LOCALHOST:8000")[0] == 200
    refused, body = status(strict, b"evil.example:8000")
    assert refused == 400 and b"--allowed-host NAME" in body
    assert status(Gate(app, loopback_only=True, allowed_hosts=frozenset({"resumen.internal"})), b"resumen.internal")[0] == 200
    assert status(Gate(app), b"evil.example")[0] == 200  # served on 0.0.0.0: any name (a key guards it)
    assert status(strict, b"127.0.0.1", "HEAD") == (200, b"")  # HEAD as GET, without the body


# ----------------------------------------------------------------------------------------- server limits
def test_two_servers_in_one_process_keep_their_own_limits_and_a_body_crosses_to_a_worker_as_its_job():
    """Limits are each server's own (constructor arguments, no class globals): a body one server refuses, another
    accepts; the validated body pickles as a plain job dict, so a worker needs neither the class nor the limits."""
    import pickle

    from pydantic import ValidationError

    from resumen.app.serving.apis import SummarizeAPI
    from resumen.app.serving.requests import Limits, summarize_request

    strict, roomy = Limits(models=("a",), max_chars=10, max_beams=2), Limits(models=("b", "c"), max_chars=100, max_beams=8)
    body = {"text": "El Betis ganó al Celta.", "num_beams": 4}
    with pytest.raises(ValidationError, match="at most 10"):
        summarize_request(strict)(**body)
    accepted = summarize_request(roomy)(**body)
    assert pickle.loads(pickle.dumps(accepted)) == {"texts": [body["text"]], "single": True, "model": "b", "overrides": {"num_beams": 4}}
    with pytest.raises(ValidationError, match="between 1 and 2"):
        summarize_request(strict)(text="hola", num_beams=4)
    with pytest.raises(ValidationError, match="unknown model 'a'"):
        summarize_request(roomy)(text="hola", model="a")
    api = SummarizeAPI({"b": "path-b", "c": "path-c"}, {}, roomy, max_batch_size=2)
    assert inspect.signature(api.decode_request).parameters["request"].annotation is summarize_request(roomy)
    worker_copy = pickle.loads(pickle.dumps(api))
    assert worker_copy.limits == roomy and worker_copy.decode_request({"texts": ["x"]}) == {"texts": ["x"]}


# ----------------------------------------------------------------------------------------- decoding options
def test_each_summary_option_is_a_flag_a_request_field_and_a_module_option_from_one_definition(capsys):
    """resumen/core/generation.py's fields marked ``summary`` are summarize.py's flags, the server request's fields
    and --model.generation.<name>: a new one is one field there."""
    from resumen.app import summarize
    from resumen.app.serving.requests import Limits, summarize_request
    from resumen.app.train import cli_main
    from resumen.core.generation import SUMMARY_OPTIONS, summary_overrides

    assert SUMMARY_OPTIONS == ("max_new_tokens", "num_beams", "length_penalty", "no_repeat_ngram_size")
    parsed = summarize.parse_args(["--model", "m", "--num-beams", "3", "--length-penalty", "1.5", "x"])
    assert summary_overrides(parsed) == {"num_beams": 3, "length_penalty": 1.5}
    request = summarize_request(Limits(models=("m",)))
    assert set(SUMMARY_OPTIONS) <= set(request.model_fields)
    assert request(text="hola", no_repeat_ngram_size=3).overrides() == {"no_repeat_ngram_size": 3}
    with pytest.raises(SystemExit):
        cli_main(["fit", "--help"])
    shown = capsys.readouterr().out
    assert all(f"--model.generation.{name}" in shown for name in SUMMARY_OPTIONS)


@pytest.mark.parametrize(
    "values,says",
    [({"no_repeat_ngram_size": -1}, "no_repeat_ngram_size must be at least 0"), ({"length_penalty": 9.0}, "length_penalty must be at most 5.0")],
)
def test_a_decoding_option_outside_its_bounds_is_one_line_everywhere(values, says):
    from resumen.core.generation import GenerationSettings

    with pytest.raises(ResumenError, match=says):
        GenerationSettings(**values)


def test_an_old_decoding_key_is_one_line_naming_the_new_one(tmp_path):
    from resumen.app.cli_checks import refuse_moved_options
    from resumen.app.recipes import with_recipes

    with pytest.raises(ResumenError, match=r"--model.num_beams is now --model.generation.num_beams"):
        refuse_moved_options(["fit", "--model.num_beams=4"])
    old = tmp_path / "old.yaml"
    old.write_text("model:\n  max_new_tokens: 64\n  num_beams: 2\n")
    with pytest.raises(ResumenError, match=r"model.max_new_tokens is now model.generation.max_new_tokens .* move max_new_tokens, num_beams under"):
        with_recipes(["fit", "--config", str(old)])  # where every config file named on the command line is read
    refuse_moved_options(["fit", "--model.generation.num_beams=4", "--config", str(tmp_path / "missing.yaml")])  # the parser's to report


def test_decoding_options_may_change_when_a_fit_resumes():
    from resumen.app.resume import checkpoint_differences

    saved = {"hyper_parameters": {"learning_rate": 0.01, "generation": {"num_beams": 2, "max_new_tokens": 64}, "val_num_beams": 1}}
    now = {"model": {"learning_rate": 0.01, "generation": {"num_beams": 4, "max_new_tokens": 128}, "val_num_beams": 2}}
    assert checkpoint_differences(saved, now, None) == []
    assert checkpoint_differences(saved, {"model": {**now["model"], "learning_rate": 0.1}}, None) == [("model.learning_rate", 0.01, 0.1)]


# ----------------------------------------------------------------------------------------- CPU threads
def test_torch_threads_spin_briefly_before_sleeping_unless_the_user_chose():
    from resumen.app import choose_openmp_waiting

    ours: dict[str, str] = {}
    assert choose_openmp_waiting(ours) and ours == {"GOMP_SPINCOUNT": "100000"}
    for users in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "0"}):
        chosen = dict(users)
        assert not choose_openmp_waiting(chosen) and chosen == users


def test_a_command_starts_torch_with_the_waiting_it_chose():
    """The choice is made when the application package is imported, before torch (every command imports it first):
    a fresh command's environment holds it when OpenMP starts."""
    import subprocess
    import sys

    from conftest import ROOT

    script = "import resumen.app, os, torch; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-1000:]
    assert done.stdout.split() == ["100000", "None"]
