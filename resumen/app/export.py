"""Export a training checkpoint as a Hugging Face model directory (what ``fit`` does with its best checkpoint), and
convert an export for CTranslate2.

    python scripts/export.py runs/mlsum_flan_t5_small/version_0/checkpoints/best-epoch03-rougeL21.40.ckpt --output my-model
    python scripts/export.py runs/.../checkpoints/best-epoch03-rougeL21.40.ckpt/ --output my-model   # FSDP/DeepSpeed shards
    python scripts/export.py runs/.../best.ckpt --output my-model --ctranslate2      # export, then convert it
    python scripts/export.py --ctranslate2 runs/mlsum_flan_t5_small/version_0/export # convert an existing export

Sharded checkpoints (FSDP ``state_dict_type: sharded``, DeepSpeed) are consolidated on the CPU first. The base
model named in the checkpoint's hyper-parameters is loaded for its config and tokenizer; ``--model`` overrides it
(e.g. when the checkpoint was trained on another machine). The CTranslate2 conversion goes into the export's
``ctranslate2/`` subdirectory (atomically); ``--backend ctranslate2`` of summarize.py, serve.py and compare.py
uses it, and converts on first use when it is missing or older than the export's weights.
"""

from __future__ import annotations

import argparse
from pathlib import Path


from resumen.app.cli_support import main_guard


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", help="a .ckpt file, or a sharded checkpoint directory (FSDP, DeepSpeed)")
    parser.add_argument("--output", help="model directory to write (must be empty, absent or a previous export)")
    parser.add_argument("--model", help="base model hub id or directory (default: the one in the checkpoint)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model export in --output")
    parser.add_argument(
        "--ctranslate2", nargs="?", const="", metavar="EXPORT_DIR", help="also convert the export for CTranslate2 (alone: convert the export EXPORT_DIR)"
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let the base model's repository run its own code (never taken from the checkpoint)",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(argv)
    if args.checkpoint is None and not args.ctranslate2:
        parser.error("give a checkpoint (with --output), or --ctranslate2 EXPORT_DIR to convert an export")
    if args.checkpoint is not None and not args.output:
        parser.error("--output is required with a checkpoint")
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    from resumen.core.ctranslate2_backend import ensure_conversion

    if args.checkpoint is None:  # convert an existing export
        converted = ensure_conversion(args.ctranslate2)
        print(f"CTranslate2 conversion of {args.ctranslate2}: {converted}")
        return converted
    from resumen.lightning_modules.callbacks import check_export_target, export_model
    from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer

    output = Path(args.output)
    check_export_target(output, args.overwrite, option="--output")
    module, record, checkpoint = Seq2SeqSummarizer.from_checkpoint(args.checkpoint, args.model, args.trust_remote_code)
    data = dict(checkpoint.get("datamodule_hyper_parameters") or {})  # for the card: the dataset and lengths
    target = export_model(module, output, None, int(checkpoint.get("epoch", 0)), str(args.checkpoint), record, data)
    print(f"Exported {args.checkpoint} to {target}")
    if args.ctranslate2 is not None:
        print(f"CTranslate2 conversion: {ensure_conversion(str(target))}")
    return target


def cli() -> None:
    """Console entry point: one-line errors, exit code 2."""
    main_guard(main)


if __name__ == "__main__":
    cli()
