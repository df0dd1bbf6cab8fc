import pytest

from resumen.core.errors import ResumenError
from resumen.core.generation import GenerationSettings
from resumen.core.loading import check_precision, load_config, load_seq2seq_model, load_tokenizer
from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer


@pytest.mark.parametrize("precision", ["16-mixed", "16", 16, "16-true"])
def test_fp16_is_refused_for_t5_with_the_alternative(tiny_t5, precision):
    config = load_config(tiny_t5)
    with pytest.raises(ResumenError, match="bf16-mixed.*32-true"):
        check_precision(precision, config, tiny_t5)


@pytest.mark.parametrize("precision", ["bf16-mixed", "32-true", "32", None])
def test_bf16_and_fp32_are_allowed_for_t5(tiny_t5, precision):
    check_precision(precision, load_config(tiny_t5), tiny_t5)


def test_fp16_is_allowed_for_gpt2(tiny_gpt2):
    check_precision("16-mixed", load_config(tiny_gpt2), tiny_gpt2)


def test_missing_local_path(tmp_path):
    with pytest.raises(ResumenError, match="does not exist"):
        load_tokenizer(str(tmp_path / "nope"))


def test_hub_id_offline_says_how_to_fix():
    with pytest.raises(ResumenError, match=r"hub cannot be reached.*hf download google/flan-t5-small"):
        load_config("google/flan-t5-small")


def test_directory_without_config(tmp_path):
    with pytest.raises(ResumenError, match="no config.json"):
        load_config(str(tmp_path))


def test_decoder_only_model_refused_by_seq2seq_module(tiny_gpt2):
    with pytest.raises(ResumenError, match="decoder-only"):
        load_seq2seq_model(tiny_gpt2)


def test_module_loads_in_train_mode_and_rejects_bad_generation_settings(tiny_t5):
    module = Seq2SeqSummarizer(tiny_t5)
    assert module.model.training
    with pytest.raises(ResumenError, match="num_beams"):
        Seq2SeqSummarizer(tiny_t5, generation=GenerationSettings(num_beams=0))
    with pytest.raises(ResumenError, match="max_new_tokens"):
        Seq2SeqSummarizer(tiny_t5, generation=GenerationSettings(max_new_tokens=0))


def test_no_decay_on_biases_and_norms(tiny_t5):
    import lightning as L

    module = Seq2SeqSummarizer(tiny_t5, weight_decay=0.1)
    trainer = L.Trainer(max_steps=10, logger=False, enable_checkpointing=False)
    module.trainer = trainer
    optimizer = module.configure_optimizers()["optimizer"]
    decay, no_decay = optimizer.param_groups
    norms = {id(p) for n, p in module.model.named_parameters() if "layer_norm" in n}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert norms and norms <= {id(p) for p in no_decay["params"]}
    counted = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
    assert counted == sum(p.numel() for p in module.model.parameters())  # shared embedding counted once
