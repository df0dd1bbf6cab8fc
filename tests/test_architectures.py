"""The architecture matrix of docs/models.md: each encoder-decoder family is fitted once (one epoch of the shipped
sample, with LoRA: the merged export and the adapter), and each ✓ of the table is a test below. T5 (Flan-T5) itself
is what the rest of the suite trains. Tiny random models built offline; the real sizes are docs/models.md's."""

import json

import pytest
import torch

from cli_helpers import demo_args, in_root

ARCHITECTURES = {  # kind -> (model_type, the layers LoRA's all-linear adapts, printed in the model's order)
    "mt5": ("mt5", ["q", "k", "v", "o", "wi_0", "wi_1", "wo"]),
    "bart": ("bart", ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]),
    "marian": ("marian", ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]),
    "t5gemma": ("t5gemma", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
}
ARTICLES = [
    "El Betis ganó al Celta por 3-1 en Sevilla, con dos goles de Borja Iglesias en la segunda parte.",
    "La Junta de Andalucía aprobó ayer un plan de 120 millones de euros para la sequía, que beneficiará a 6.000 familias.",
]


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def fitted(request, tmp_path_factory):
    import logging

    from resumen.app.tiny_models import BUILDERS
    from resumen.app.train import cli_main

    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    model = BUILDERS[kind](root / "base")
    args = demo_args("fit", str(model), root / "runs", "--trainer.max_epochs=1", "--model.lora.r=8", "--trainer.enable_progress_bar=false")
    printed: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: printed.append(record.getMessage())  # what rank_zero_info printed
    console = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    console.addHandler(handler)
    try:
        in_root(cli_main, args)
    finally:
        console.removeHandler(handler)
    export = root / "runs" / "demo" / "version_0" / "export"
    return {"kind": kind, "base": model, "export": export, "printed": "\n".join(printed)}


def test_fit_with_lora_prints_the_layers_it_adapts_and_exports_a_merged_model_and_its_adapter(fitted):
    from transformers import AutoConfig

    model_type, layers = ARCHITECTURES[fitted["kind"]]
    line = next(line for line in fitted["printed"].splitlines() if line.startswith("Trainable parameters"))
    assert set(line.split("LoRA r=8 on ", 1)[1].split(", ")) == set(layers), line
    assert AutoConfig.from_pretrained(fitted["export"]).model_type == model_type
    assert (fitted["export"] / "model.safetensors").is_file() and (fitted["export"] / "adapter" / "adapter_model.safetensors").is_file()


def test_the_export_and_the_adapter_load_with_the_auto_classes_and_summarise_alike(fitted):
    """The merged export (the Auto classes, through the inference core summarize.py and the server use) and the
    adapter on its base write the same summaries."""
    from resumen.app.common import load_summarizer

    merged = load_summarizer(str(fitted["export"]), "cpu")
    adapter = load_summarizer(str(fitted["export"] / "adapter"), "cpu")
    written = merged.summarize(ARTICLES, num_beams=1, max_new_tokens=16)
    assert [s.summary for s in written] == [s.summary for s in adapter.summarize(ARTICLES, num_beams=1, max_new_tokens=16)]
    assert all(s.input_tokens > 10 and s.output_tokens >= 1 for s in written)


def test_ctranslate2_converts_the_export_with_torchs_log_probabilities_and_greedy_summaries(fitted):
    """Per-token log-probabilities of one target, teacher-forced, within 1e-3 of torch's; greedy summaries equal."""
    import ctranslate2
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from resumen.app.common import load_summarizer
    from resumen.core.ctranslate2_backend import ensure_conversion

    export = fitted["export"]
    converted = ensure_conversion(str(export), print)
    tokenizer = AutoTokenizer.from_pretrained(export)
    model = AutoModelForSeq2SeqLM.from_pretrained(export).eval()
    source = tokenizer(ARTICLES[1], return_tensors="pt")
    target = tokenizer("El plan beneficiará a 6.000 familias.", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    start = model.generation_config.decoder_start_token_id
    with torch.no_grad():
        logits = model(**source, decoder_input_ids=torch.tensor([[start, *target[:-1]]])).logits
    expected = torch.log_softmax(logits.float(), -1)[0, torch.arange(len(target)), torch.tensor(target)]
    translator = ctranslate2.Translator(str(converted), device="cpu", compute_type="float32")
    scored = translator.score_batch([tokenizer.convert_ids_to_tokens(source["input_ids"][0].tolist())], [tokenizer.convert_ids_to_tokens(target)])
    got = torch.tensor(scored[0].log_probs[: len(target)])
    assert torch.allclose(got, expected, atol=1e-3), (got - expected).abs().max()
    torch_engine = load_summarizer(str(export), "cpu")
    ct2_engine = load_summarizer(str(export), "cpu", backend="ctranslate2", compute_type="float32")
    settings = {"num_beams": 1, "max_new_tokens": 16}
    assert [s.summary for s in ct2_engine.summarize(ARTICLES, **settings)] == [s.summary for s in torch_engine.summarize(ARTICLES, **settings)]


def test_compare_scores_the_export_its_ctranslate2_copy_and_lead_1_on_the_same_articles(fitted, sample_files):
    """compare.py --dataset: the export and its CTranslate2 float32 copy (greedy) write the same summaries, so their
    paired difference is 0; lead-1 is scored beside them."""
    from resumen.app import compare

    export = str(fitted["export"])
    rows = compare.main(
        ["--dataset", "--models", export, f"{export}@ctranslate2:float32", "lead-1", "--data-file", sample_files["test"], "--max-new-tokens", "8"]
        + ["--num-beams", "1"]
    )
    by_model = {row["model"]: row for row in rows}
    assert {export, f"{export}@ctranslate2:float32", "lead-1", "(references)"} <= set(by_model), list(by_model)
    torch_row, ct2_row = by_model[export], by_model[f"{export}@ctranslate2:float32"]
    assert torch_row["examples"] == ct2_row["examples"] == 5 and torch_row["rougeL"] == ct2_row["rougeL"]


# which families the CPU's bulk dropout masks reach: nn.Dropout layers are replaced; BART and Marian call
# torch's functional dropout inside transformers' layers, so they keep torch's masks (docs/models.md)
HAS_DROPOUT_LAYERS = {"mt5": True, "t5gemma": True, "bart": False, "marian": False}


def test_cpu_dropout_replaces_the_dropout_layers_a_family_has(fitted):
    """With --model.dropout_rate=0.1 (set_dropout), the dropout layers a family has get the bulk masks."""
    from transformers import AutoModelForSeq2SeqLM

    from resumen.lightning_modules.cpu_dropout import CpuDropout, use_cpu_dropout
    from resumen.lightning_modules.model_changes import set_dropout

    has_layers = HAS_DROPOUT_LAYERS[fitted["kind"]]
    model = AutoModelForSeq2SeqLM.from_pretrained(fitted["export"])
    set_dropout(model, 0.1)
    layers = sum(type(m) is torch.nn.Dropout and m.p > 0 for m in model.modules())
    assert use_cpu_dropout(model) == layers and (layers > 0) == has_layers
    assert sum(isinstance(m, CpuDropout) for m in model.modules()) == layers


def test_the_trained_with_record_travels_in_every_architectures_export(fitted):
    record = json.loads((fitted["export"] / "config.json").read_text())["resumen"]
    assert record["base_model"] == str(fitted["base"]) and record["lora"]["r"] == 8


def test_the_t5gemma_recipe_trains_a_t5gemma_without_vocabulary_extension(tmp_path):
    """configs/mlsum_t5gemma_s.yaml, by name, on local files and a tiny T5Gemma: the tokenizer covers the data (the
    coverage report says so, nothing is added), gradient clipping runs under whatever precision the CPU gets."""
    import logging

    from cli_helpers import SAMPLE_PROFILE
    from resumen.app.tiny_models import build_tiny_t5gemma
    from resumen.app.train import cli_main

    model = build_tiny_t5gemma(tmp_path / "t5gemma")
    printed: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: printed.append(record.getMessage())
    console = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    console.addHandler(handler)
    try:
        args = ["fit", "--config", "mlsum_t5gemma_s", "--config", str(SAMPLE_PROFILE), f"--model.model_name_or_path={model}"]
        args += [f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]
        cli = in_root(cli_main, args)
    finally:
        console.removeHandler(handler)
    text = "\n".join(printed)
    assert "every character is known" in text and cli.model.vocabulary.added_characters in (None, [])
    assert cli.trainer.gradient_clip_val == 1.0
    assert (tmp_path / "runs" / "mlsum_t5gemma_s" / "version_0" / "export" / "model.safetensors").is_file()
