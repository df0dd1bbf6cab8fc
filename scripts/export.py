"""Export a training checkpoint as a Hugging Face model directory (what ``fit`` does with its best checkpoint).

    python scripts/export.py runs/mlsum_flan_t5_small/version_0/checkpoints/best-epoch03-rougeL21.40.ckpt --output my-model
    python scripts/export.py runs/.../checkpoints/best-epoch03-rougeL21.40.ckpt/ --output my-model   # FSDP/DeepSpeed shards

Sharded checkpoints (FSDP ``state_dict_type: sharded``, DeepSpeed) are consolidated on the CPU first. The base
model named in the checkpoint's hyper-parameters is loaded for its config and tokenizer; ``--model`` overrides it
(e.g. when the checkpoint was trained on another machine).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.cli_support import main_guard  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a .ckpt file, or a sharded checkpoint directory (FSDP, DeepSpeed)")
    parser.add_argument("--output", required=True, help="model directory to write (must be empty or absent)")
    parser.add_argument("--model", help="base model hub id or directory (default: the one in the checkpoint)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model export in --output")
    parser.add_argument(
        "--trust-remote-code", action="store_true",
        help="let the base model's repository run its own code (never taken from the checkpoint)",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    import inspect

    from core.errors import ResumenError
    from core.prompts import SUMMARY_TEMPLATE, validate_template
    from lightning_modules.callbacks import check_export_target, export_model
    from lightning_modules.checkpoints import load_full_checkpoint, model_state_dict, saved_module_settings
    from lightning_modules.seq2seq import Seq2SeqSummarizer

    output = Path(args.output)
    check_export_target(output, args.overwrite, option="--output")
    checkpoint = load_full_checkpoint(args.checkpoint)
    # What the checkpoint says about the module, minus what could choose code: trust_remote_code is this command's.
    settings = saved_module_settings(checkpoint)
    accepted = set(inspect.signature(Seq2SeqSummarizer.__init__).parameters) - {"self"}
    settings = {k: v for k, v in settings.items() if k in accepted}
    settings["trust_remote_code"] = args.trust_remote_code
    if args.model:
        settings["model_name_or_path"] = args.model
    if "model_name_or_path" not in settings:
        raise ResumenError("the checkpoint does not name its base model: pass --model.")
    template = checkpoint.get("prompt_template")
    if template is not None:  # checked before any weights load
        validate_template(template, f"the prompt_template saved in {args.checkpoint}")
    module = Seq2SeqSummarizer(**settings)
    module.on_load_checkpoint(checkpoint)  # extended vocabulary (resizes the embeddings), validation metrics
    module.apply_lora()  # a LoRA checkpoint's weights are named as in the PEFT-wrapped model
    module.model.load_state_dict(model_state_dict(checkpoint))
    template = template or module.trained_prompt_template or SUMMARY_TEMPLATE
    data = dict(checkpoint.get("datamodule_hyper_parameters") or {})  # for the card: the dataset and lengths
    target = export_model(module, output, None, int(checkpoint.get("epoch", 0)), str(args.checkpoint), template, data)
    print(f"Exported {args.checkpoint} to {target}")
    return target


if __name__ == "__main__":
    main_guard(main)
