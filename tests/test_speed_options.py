"""The speed options a user can turn: dropout off (--model.dropout_rate) and torch.compile (--model.compile); and
denormal floats flushed on the CPU."""

import pytest
import torch

from resumen.core.errors import ResumenError
from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer


def _train_mode_losses(module: Seq2SeqSummarizer, times: int = 2) -> list[float]:
    ids = torch.randint(3, 100, (2, 24))
    labels = torch.randint(3, 100, (2, 8))
    module.train()
    with torch.no_grad():
        return [float(module(ids, torch.ones_like(ids), labels).loss) for _ in range(times)]


def test_dropout_rate_zero_turns_every_dropout_off_and_keeps_the_config(tiny_t5):
    default = Seq2SeqSummarizer(tiny_t5)
    first, second = _train_mode_losses(default)
    assert first != second  # dropout draws new masks every forward in train mode

    module = Seq2SeqSummarizer(tiny_t5, dropout_rate=0.0)
    layers = [m for m in module.model.modules() if isinstance(m, torch.nn.Dropout)]
    attention = [m for m in module.model.modules() if isinstance(getattr(m, "dropout", None), float)]
    assert layers and attention  # T5 has both kinds: layers, and a float on each attention module
    assert all(m.p == 0.0 for m in layers) and all(m.dropout == 0.0 for m in attention)
    first, second = _train_mode_losses(module)
    assert first == second  # nothing random is left in the forward
    assert module.model.config.dropout_rate == default.model.config.dropout_rate  # exports keep the model's own
    assert module.hparams.dropout_rate == 0.0  # saved with the checkpoint: a resumed run keeps it


def test_a_dropout_rate_out_of_range_is_refused_before_loading_anything():
    with pytest.raises(ResumenError, match=r"dropout_rate must be in \[0, 1\) \(got 1.5\)"):
        Seq2SeqSummarizer("/nonexistent/model", dropout_rate=1.5)


def test_compile_trains_and_keeps_the_parameter_names(tiny_t5, tmp_path):
    """--model.compile: fit runs the compiled model (in place), checkpoints and exports keep the usual names."""
    from safetensors.torch import load_file

    from cli_helpers import demo_args, in_root, run_train

    cli = in_root(
        run_train,
        *demo_args(  # one batch shape (padded to the maximum): one compilation
            "fit",
            tiny_t5,
            tmp_path / "runs",
            "--model.compile=true",
            "--data.padding=max_length",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false",
        ),
    )
    model = cli.model.model
    assert model._compiled_call_impl is not None  # nn.Module.compile(): the module itself, not a wrapper
    assert cli.trainer.global_step == 2 and torch.isfinite(cli.trainer.callback_metrics["train/loss_epoch"])
    assert "val/rougeL" in cli.trainer.callback_metrics  # validation ran (eager: generation would recompile)
    checkpoint = torch.load(cli.trainer.checkpoint_callback.best_model_path, weights_only=True)
    assert not any("_orig_mod" in key for key in checkpoint["state_dict"])
    exported = load_file(str(tmp_path / "runs" / "demo" / "version_0" / "export" / "model.safetensors"))
    assert set(exported) <= {name for name, _ in model.named_parameters()} | {"lm_head.weight"}


def test_every_command_on_the_cpu_flushes_denormal_floats(tiny_t5, tmp_path):
    """Denormals cost x86 microcode assists (the fp32 LM-head backward: 2.4 s instead of 0.08 s): the CLI flushes
    them (resumen/core/torch_settings.py) before any command runs, and the inference core when it loads a model."""
    from cli_helpers import demo_args, in_root, run_train

    from resumen.core.inference import Summarizer

    try:
        torch.set_flush_denormal(False)
        assert float(torch.tensor([1e-39]) * 1.0) != 0.0
        in_root(
            run_train,
            *demo_args(
                "validate", tiny_t5, tmp_path / "runs", "--ckpt_path=pretrained", "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false"
            ),
        )
        assert float(torch.tensor([1e-39]) * 1.0) == 0.0
        torch.set_flush_denormal(False)
        Summarizer.load(tiny_t5, device="cpu", announce=lambda line: None)
        assert float(torch.tensor([1e-39]) * 1.0) == 0.0
    finally:
        torch.set_flush_denormal(False)  # the rest of the suite runs as before


def test_compile_with_bf16_on_the_cpu_is_refused_before_training(tiny_t5):
    """The compiled T5 forward under CPU bf16 autocast returned a NaN loss (torch 2.13): refused with the fix."""
    import lightning as L

    module = Seq2SeqSummarizer(tiny_t5, compile=True)
    module.trainer = L.Trainer(accelerator="cpu", precision="bf16-mixed", logger=False)
    with pytest.raises(ResumenError, match=r"model.compile with bf16-mixed on the CPU.*--trainer.precision=32-true"):
        module.setup("fit")
    assert module.model._compiled_call_impl is None  # nothing was compiled
