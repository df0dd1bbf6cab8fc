"""The CPU dropout (lightning_modules/cpu_dropout.py): the same dropout as torch's, drawn in bulk, decided by torch's
seed, and installed by fit on a CPU without changing what the model computes otherwise or what it exports."""

import copy
import json

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from resumen.lightning_modules import cpu_dropout as cd
from resumen.lightning_modules.model_changes import set_dropout


def _t5(dropout: float = 0.1) -> T5ForConditionalGeneration:
    config = T5Config(
        vocab_size=120,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        dropout_rate=dropout,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    torch.manual_seed(0)
    return T5ForConditionalGeneration(config)


def _batch():
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(2, 120, (3, 19), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0  # padding, so the additive mask matters
    return ids, mask, torch.randint(2, 120, (3, 6), generator=generator)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.05])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_drops_the_asked_share_and_keeps_the_expectation(p, dtype):
    torch.manual_seed(0)
    out = cd.cpu_dropout(torch.ones(1001, 999, dtype=dtype), p)  # an element count that is not a multiple of 4
    assert out.dtype == dtype and out.shape == (1001, 999)
    dropped = round(p * cd.LEVELS) / cd.LEVELS
    assert abs(float((out == 0).float().mean()) - dropped) < 0.002  # 1M draws: 4 standard deviations is < 0.002
    kept = out[out != 0]
    assert torch.all(kept == torch.tensor(1 / (1 - dropped), dtype=dtype))  # one scale for every kept element
    assert abs(float(out.float().mean()) - 1.0) < 0.005


def test_masks_are_decided_by_torch_seed():
    x = torch.ones(64, 64)
    torch.manual_seed(7)
    first, second = cd.cpu_dropout(x, 0.3), cd.cpu_dropout(x, 0.3)
    torch.manual_seed(7)
    assert torch.equal(cd.cpu_dropout(x, 0.3), first) and torch.equal(cd.cpu_dropout(x, 0.3), second)
    assert not torch.equal(first, second)  # each call draws a new mask
    torch.manual_seed(8)
    assert not torch.equal(cd.cpu_dropout(x, 0.3), first)


def test_the_gradient_passes_through_the_same_mask_and_layouts_do_not_matter():
    torch.manual_seed(0)
    x = torch.randn(40, 30).t().requires_grad_()  # not contiguous
    out = cd.cpu_dropout(x, 0.2)
    out.backward(torch.ones_like(out))
    assert torch.equal(x.grad, torch.where(out != 0, 1 / (1 - round(0.2 * cd.LEVELS) / cd.LEVELS), 0.0))
    assert torch.allclose(out, x.detach() * x.grad)


def test_eval_mode_and_zero_rate_are_the_identity():
    layer = cd.CpuDropout(0.0)
    x = torch.randn(5, 7)
    assert torch.equal(layer.train()(x), x)
    assert torch.equal(cd.CpuDropout(0.4).eval()(x), x)


def test_the_attention_weights_are_dropped_while_training():
    module = torch.nn.Module().train()
    query, key, value = (torch.randn(2, 4, 128, 8) for _ in range(3))
    torch.manual_seed(0)
    _, weights = cd.cpu_dropout_attention(module, query, key, value, None, scaling=1.0, dropout=0.25)
    assert abs(float((weights == 0).float().mean()) - 0.25) < 0.01


def test_the_installed_model_computes_what_the_original_does_and_exports_the_same(tmp_path, monkeypatch):
    original = _t5()
    fast = copy.deepcopy(original)
    layers = sum(type(m) is torch.nn.Dropout for m in original.modules())
    assert cd.use_cpu_dropout(fast) == layers > 0
    assert not any(type(m) is torch.nn.Dropout for m in fast.modules())
    assert fast.config._attn_implementation == fast.encoder.config._attn_implementation == cd.ATTENTION
    assert cd.use_cpu_dropout(fast) == 0  # a second setup changes nothing
    ids, mask, labels = _batch()
    original.eval(), fast.eval()
    with torch.no_grad():  # eval: every path is torch's (SDPA, given the eager mask)
        assert torch.allclose(
            original(input_ids=ids, attention_mask=mask, labels=labels).logits, fast(input_ids=ids, attention_mask=mask, labels=labels).logits, atol=1e-6
        )
        assert torch.equal(
            original.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5), fast.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5)
        )
    # training with the masks taken out: our eager attention is transformers' T5 attention, number for number
    monkeypatch.setattr(cd, "cpu_dropout", lambda x, p: x)
    fast.train()
    with torch.no_grad():
        assert torch.allclose(
            original(input_ids=ids, attention_mask=mask, labels=labels).logits, fast(input_ids=ids, attention_mask=mask, labels=labels).logits, atol=1e-5
        )
    fast.save_pretrained(tmp_path)
    assert set(original.state_dict()) == set(fast.state_dict())
    assert not any("attn" in key for key in json.loads((tmp_path / "config.json").read_text()))


def test_training_draws_new_masks_reproducibly_and_learns():
    model = _t5()
    cd.use_cpu_dropout(model)
    ids, mask, labels = _batch()
    model.train()

    def losses():
        torch.manual_seed(5)
        with torch.no_grad():
            return [float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) for _ in range(2)]

    first = losses()
    assert first[0] != first[1] and losses() == first
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    start = None
    for _ in range(30):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        start = float(loss.detach()) if start is None else start
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert float(loss.detach()) < 0.5 * start


def test_a_model_without_dropout_is_left_alone():
    model = _t5()
    set_dropout(model, 0.0)
    assert cd.use_cpu_dropout(model) == 0
    assert model.config._attn_implementation == "sdpa"  # the demo (dropout 0) trains exactly as without it
    ids, mask, labels = _batch()
    model.train()
    with torch.no_grad():
        first, second = (float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) for _ in range(2))
    assert first == second


def test_fit_on_the_cpu_uses_it_unless_turned_off(tiny_t5, tmp_path):
    from cli_helpers import demo_args, in_root, run_train

    for fast, name in ((True, "on"), (False, "off")):
        cli = in_root(
            run_train,
            *demo_args(
                "fit",
                tiny_t5,
                tmp_path / name,
                f"--model.fast_cpu_dropout={str(fast).lower()}",
                "--model.dropout_rate=0.1",
                "--trainer.max_epochs=1",
                "--trainer.limit_train_batches=2",
                "--trainer.limit_val_batches=1",
                "--trainer.enable_progress_bar=false",
            ),
        )
        model = cli.model.model
        assert cli.trainer.global_step == 2 and torch.isfinite(cli.trainer.callback_metrics["train/loss_epoch"])
        assert any(isinstance(m, cd.CpuDropout) for m in model.modules()) is fast
        assert (model.config._attn_implementation == cd.ATTENTION) is fast
