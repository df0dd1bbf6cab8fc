"""What ``scripts/train.py`` checks before anything heavy loads: options, data files, sizes, precision, positions."""

from __future__ import annotations

from typing import Any

from resumen.core.errors import ResumenError

DEFAULT_CHECKPOINT_NAME = "best-epoch{epoch:02d}-rougeL{val/rougeL:.2f}"
# --ckpt_path values that name no file: resolved by the CLI (last, auto, pretrained, best) or by Lightning (hpc).
CKPT_KEYWORDS = {"last", "auto", "pretrained", "best", "hpc"}
_EVALUATE_HELP = (
    "Checkpoint to evaluate: a .ckpt file or sharded directory; 'best' (the default) for the best-*.ckpt of the newest "
    "run under the logger's directory; 'pretrained' for the model as loaded, without fine-tuning. (type: str | None)"
)
CKPT_PATH_HELP = {
    "fit": (
        "Resume training: 'last' resumes the newest run's last.ckpt into that run's directory (refused when its "
        "configuration differs); 'auto' resumes the newest run of this configuration, or starts a new run when there "
        "is none; or a .ckpt file / sharded directory. Default: a new run. (type: str | None)"
    ),
    "validate": _EVALUATE_HELP,
    "test": _EVALUATE_HELP,
    "predict": _EVALUATE_HELP,
}


def refuse_optimizer_options(argv: Any) -> None:
    """The module builds its own optimizer and schedule: a swapped-in ``--optimizer`` would silently drop them."""
    if isinstance(argv, list) and any(str(a).split("=")[0] in ("--optimizer", "--lr_scheduler") for a in argv):
        raise ResumenError(
            "the model owns its optimizer (AdamW without decay on biases and norms, linear warm-up and decay): "
            "set --model.learning_rate, --model.weight_decay, --model.warmup_steps or --model.warmup_ratio, "
            "--model.adam_epsilon and --model.fused_adamw instead of --optimizer / --lr_scheduler."
        )


def refuse_moved_options(argv: Any) -> None:
    """0.1's decoding options of the module moved into one group, ``model.generation`` (resumen/core/generation.py):
    an old key on the command line is one line naming the new key (in a config file: resumen.app.recipes.checked)."""
    from resumen.core.generation import SUMMARY_OPTIONS

    if not isinstance(argv, list):
        return
    for arg in argv:
        key = str(arg).split("=", 1)[0]
        if key.startswith("--model.") and key[len("--model.") :] in SUMMARY_OPTIONS:
            raise ResumenError(f"{key} is now --model.generation.{key[len('--model.') :]} (the decoding options are one group since resumen 0.2.0).")


def check_before_loading(config: Any, subcommand: str | None) -> None:
    """Data first, then settings, then the model's config: all before any weights load or any tokenisation."""
    from lightning.pytorch.utilities import rank_zero_warn

    from resumen.core.loading import check_precision, load_config
    from resumen.core.prompts import validate_template
    from resumen.datamodules.sources import check_data_source
    from resumen.datamodules.summarization import check_data_settings

    check_data_settings(config.data)
    if config.data.prompt_template is not None:
        validate_template(config.data.prompt_template, "data.prompt_template")
    if subcommand in (None, "fit"):
        check_data_source(config.data, predicting=False)
        check_fit_settings(config, rank_zero_warn)
    elif subcommand == "predict":
        if config.data.predict_file:
            check_data_source(config.data, predicting=True)
        output = config.get("predictions", {}).get("output_path")
        if output:
            from pathlib import Path

            from resumen.lightning_modules.callbacks import check_prediction_output

            check_prediction_output(Path(output), config.data.predict_file)
    choose_precision_if_unset(config.trainer)
    name = config.model.model_name_or_path
    model_config = load_config(name, config.model.trust_remote_code)  # read once: the model reuses it
    trained = getattr(model_config, "prompt_template", None)
    if trained is not None:  # an export's own template: data, checked like a flag
        validate_template(trained, f"the prompt_template in {name}'s config.json")
    # The requested precision (on CPU Lightning would silently turn 16-mixed into bf16-mixed).
    check_precision(config.trainer.precision, model_config, name)
    positions = getattr(model_config, "max_position_embeddings", None)  # T5's relative positions have none
    if positions and config.data.max_source_length > positions:
        raise ResumenError(f"data.max_source_length={config.data.max_source_length} exceeds the {positions} positions of '{name}': use at most {positions}.")


def choose_precision_if_unset(trainer: Any) -> None:
    """No --trainer.precision: bf16-mixed where the hardware has native bf16, else 32-true; said once, at start."""
    from lightning.pytorch.utilities import rank_zero_info

    from resumen.core.precision import choose_precision

    if trainer.precision is not None:
        return
    trainer.precision, why = choose_precision(trainer.accelerator)
    rank_zero_info(f"Precision: {trainer.precision}, because {why}. --trainer.precision=32-true or bf16-mixed forces one.")


def check_fit_settings(config: Any, warn: Any) -> None:
    """Settings that would train nothing, or crash after a whole epoch, are refused or fixed up front."""
    for limit in ("max_epochs", "max_steps"):
        if config.trainer.get(limit) == 0:
            raise ResumenError(
                f"trainer.{limit}=0 trains nothing (and would export the base model as if fine-tuned): use at "
                "least 1, or evaluate the base model with `validate --ckpt_path pretrained`."
            )
    monitor = config.checkpoint.monitor or ""
    if config.model.val_generate_samples == 0 and monitor.startswith("val/rouge"):
        warn(
            f"model.val_generate_samples=0 generates no validation summaries, so there is no {monitor}: the "
            "best checkpoint is chosen by the lowest val/loss instead."
        )
        config.checkpoint.monitor, config.checkpoint.mode = "val/loss", "min"
        monitor = "val/loss"
    if monitor and monitor != "val/rougeL" and config.checkpoint.filename == DEFAULT_CHECKPOINT_NAME:
        # the file is named after what chose it: best-epoch03-loss2.314.ckpt for --checkpoint.monitor=val/loss
        digits = 3 if "loss" in monitor else 2
        config.checkpoint.filename = f"best-epoch{{epoch:02d}}-{monitor.split('/')[-1]}{{{monitor}:.{digits}f}}"
    early = config.get("early_stopping")
    if early is not None and early.patience is not None and config.model.val_generate_samples == 0 and early.monitor.startswith("val/rouge"):
        warn(f"model.val_generate_samples=0: there is no {early.monitor}, so early stopping watches val/loss instead.")
        early.monitor, early.mode = "val/loss", "min"
