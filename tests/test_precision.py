"""The precision a run uses when none is given: bf16-mixed where the hardware computes bf16 natively, else fp32."""

import pytest

from resumen.core import precision as chooser


@pytest.mark.parametrize(
    "flags,expected",
    [({"avx512f", "amx_bf16", "amx_tile"}, "bf16-mixed"), ({"avx512f", "avx512_bf16"}, "bf16-mixed"), ({"avx2", "fma"}, "32-true")],
    ids=["amx", "avx512_bf16", "no native bf16"],
)
def test_cpu_choice_follows_the_cpu_flags(monkeypatch, flags, expected):
    monkeypatch.setattr(chooser, "cpu_flags", lambda: flags)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    choice, why = chooser.choose_precision("auto")
    assert choice == expected and ("natively" in why or "no native bf16" in why)


def test_cuda_choice_follows_bf16_support(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.get_device_name", lambda index=0: "Some GPU")
    monkeypatch.setattr("torch.cuda.is_bf16_supported", lambda: True)
    assert chooser.choose_precision("gpu")[0] == "bf16-mixed"
    monkeypatch.setattr("torch.cuda.is_bf16_supported", lambda: False)
    assert chooser.choose_precision("auto") == ("32-true", "Some GPU has no native bf16 (and fp16 overflows T5)")
    monkeypatch.setattr("torch.cuda.is_bf16_supported", lambda: True)
    monkeypatch.setattr(chooser, "cpu_flags", lambda: {"avx2"})
    assert chooser.choose_precision("cpu")[0] == "32-true"  # the CPU was asked for, not the bf16 GPU


def test_the_cli_chooses_when_unset_says_so_and_a_flag_forces(tiny_t5, tmp_path, monkeypatch, caplog):
    from cli_helpers import demo_args, in_root
    from resumen.app.train import cli_main

    monkeypatch.setattr(chooser, "cpu_flags", lambda: {"avx512_bf16"})
    args = demo_args("fit", tiny_t5, tmp_path / "runs", "--trainer.precision=null")
    cli = in_root(cli_main, args[1:], False)
    assert cli.trainer.precision == "bf16-mixed"
    assert "Precision: bf16-mixed, because the CPU computes bf16 natively (avx512_bf16)" in caplog.text
    forced = in_root(cli_main, [*args[1:], "--trainer.precision=32-true"], False)
    assert forced.trainer.precision == "32-true"


def test_the_recipe_leaves_precision_to_the_automatic_choice():
    import yaml

    from conftest import ROOT

    recipe = yaml.safe_load((ROOT / "configs" / "mlsum_flan_t5_small.yaml").read_text())
    assert "precision" not in recipe["trainer"]


def test_gradient_clipping_trains_under_bf16_mixed(tiny_t5, tmp_path, caplog):
    """The course's --trainer.gradient_clip_val=1.0 raised under the project's defaults, bf16-mixed with fused AdamW
    (Lightning 2.6.6 refuses clipping for any fused optimizer under mixed precision): the module now steps with the
    non-fused AdamW there, and says so."""
    from cli_helpers import demo_args, in_root
    from resumen.app.train import cli_main

    args = demo_args(
        "fit",
        tiny_t5,
        tmp_path / "runs",
        "--trainer.precision=bf16-mixed",
        "--trainer.gradient_clip_val=1.0",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
    )
    cli = in_root(cli_main, args)
    optimizer = cli.trainer.optimizers[0]
    assert cli.trainer.global_step == 5 and not optimizer.defaults["fused"]
    assert "AdamW without the fused kernel: --trainer.gradient_clip_val with bf16-mixed" in caplog.text
