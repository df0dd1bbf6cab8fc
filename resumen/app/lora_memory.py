"""Estimate training memory of full fine-tuning vs LoRA from parameter counts (no weights, no GPU needed).

    python scripts/lora_memory.py                 # the README's table (r=16, all-linear)
    python scripts/lora_memory.py --r 64

Models are built on the ``meta`` device from their published shapes, so the counts are exact; the memory is an
estimate of the model states only (weights, gradients, AdamW moments) under ``bf16-mixed``, where Lightning keeps
fp32 master weights: 16 bytes per trained parameter, 4 per frozen one. Activations come on top and depend on the
batch size and lengths.
"""

from __future__ import annotations

import argparse


# Published shapes (config.json on the hub): d_model, d_ff, layers (encoder = decoder), heads, d_kv, vocabulary.
SHAPES = {
    "google/flan-t5-small": (512, 1024, 8, 6, 64, 32128),
    "google/flan-t5-base": (768, 2048, 12, 12, 64, 32128),
    "google/flan-t5-large": (1024, 2816, 24, 16, 64, 32128),
    "google/flan-t5-xl": (2048, 5120, 24, 32, 64, 32128),
    "google/mt5-base": (768, 2048, 12, 12, 64, 250112),
    "google/mt5-large": (1024, 2816, 24, 16, 64, 250112),
}
FULL_BYTES, FROZEN_BYTES = 16, 4  # fp32 weight + fp32 grad + two fp32 AdamW moments; a frozen fp32 weight


def counts(name: str, r: int, target: str) -> tuple[int, int]:
    """(total parameters, LoRA parameters) of ``name`` with LoRA rank ``r`` on ``target`` modules."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import T5Config, T5ForConditionalGeneration

    d_model, d_ff, layers, heads, d_kv, vocab = SHAPES[name]
    config = T5Config(
        d_model=d_model,
        d_ff=d_ff,
        num_layers=layers,
        num_decoder_layers=layers,
        num_heads=heads,
        d_kv=d_kv,
        vocab_size=vocab,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    )
    with torch.device("meta"):
        model = T5ForConditionalGeneration(config)
        if model.lm_head.weight is model.shared.weight:  # transformers 5 ties T5 configs built in code; T5 v1.1 is untied
            model.lm_head.weight = torch.nn.Parameter(torch.empty_like(model.shared.weight))
        total = sum(p.numel() for p in model.parameters())
        peft_model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM, r=r, target_modules=target))
        lora = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    return total, lora


def table(r: int, target: str) -> str:
    lines = [
        f"| model | parameters | full fine-tuning (est.) | LoRA r={r} trainable | LoRA (est.) |",
        "|---|---|---|---|---|",
    ]
    for name in SHAPES:
        total, lora = counts(name, r, target)
        full = total * FULL_BYTES / 2**30
        low = (total * FROZEN_BYTES + lora * FULL_BYTES) / 2**30
        lines.append(f"| {name} | {total / 1e6:,.0f}M | {full:.1f} GiB | {lora / 1e6:.1f}M ({lora / total:.1%}) | {low:.1f} GiB |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--r", type=int, default=16, help="LoRA rank (default: 16)")
    parser.add_argument("--target-modules", default="all-linear", help="LoRA target modules (default: all-linear)")
    args = parser.parse_args(argv)
    text = table(args.r, args.target_modules)
    print(text)
    return text


def cli() -> None:
    """Console entry point."""
    main()


if __name__ == "__main__":
    cli()
