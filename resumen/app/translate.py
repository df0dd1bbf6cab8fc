"""Translate with a causal LLM (GemmaX2 prompt) or a seq2seq translation model, through the same command.

    python scripts/translate.py --source es --target en "El niño juega en el parque."
    python scripts/translate.py --source Chinese --target Spanish --file frases_zh.txt --json
    python scripts/translate.py --model Helsinki-NLP/opus-mt-zh-en "我爱你"     # a seq2seq (Marian) model

For a causal model the prompt is GemmaX2's ``Translate this from <Source> to <Target>:\\n<Source>: <text>\\n<Target>:``
(languages as English names or ISO codes, 28 in all); the output is the translation alone (prompt removed, cut at
the first newline). A seq2seq model gets the bare text. On a GPU the default precision is bf16-mixed.
"""

from __future__ import annotations


from resumen.app.common import base_parser, emit, make_trainer, predict_rows, read_inputs

DEFAULT_MODEL = "ModelSpace/GemmaX2-28-2B-v0.1"


def format_report(rows: list[dict]) -> str:
    return "\n".join(f"{row['text']}\n  -> {row['translation']}" for row in rows)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = base_parser(__doc__, DEFAULT_MODEL)
    parser.add_argument("--source", default="es", help="source language, name or ISO code (default: es)")
    parser.add_argument("--target", default="en", help="target language, name or ISO code (default: en)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="translation length limit (default: 256)")
    parser.add_argument("--num-beams", type=int, default=1, help="beam search width (default: 1, greedy)")
    args = parser.parse_args(argv)
    from resumen.core.loading import load_config
    from resumen.core.prompts import gemmax2_prompt, language_name
    from resumen.datamodules.text_prompts import prompt_loader
    from resumen.core.generation import GenerationSettings

    GenerationSettings(max_new_tokens=args.max_new_tokens, num_beams=args.num_beams)  # checked before any model loads
    source, target = language_name(args.source), language_name(args.target)  # refuse before loading anything
    texts = read_inputs(args)
    config = load_config(args.model, trust_remote_code=args.trust_remote_code)
    if args.precision is None:
        import torch

        args.precision = "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"
    trainer = make_trainer(args)
    if config.is_encoder_decoder:
        from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer

        module = Seq2SeqSummarizer(
            args.model,
            generation=GenerationSettings(max_new_tokens=args.max_new_tokens, num_beams=args.num_beams),
            trust_remote_code=args.trust_remote_code,
        )
        rows = predict_rows(trainer, module, prompt_loader(texts, module.tokenizer, args.batch_size, "right"))
        rows = [{"id": r["id"], "index": r["index"], "text": t, "translation": r["summary"]} for r, t in zip(rows, texts)]
    else:
        from resumen.lightning_modules.causal_lm import CausalLMModule

        prompts = [gemmax2_prompt(text, source, target) for text in texts]
        module = CausalLMModule(
            args.model,
            task="translate",
            max_new_tokens=args.max_new_tokens,
            num_beams=args.num_beams,
            trust_remote_code=args.trust_remote_code,
        )
        rows = predict_rows(trainer, module, prompt_loader(prompts, module.tokenizer, args.batch_size))
        rows = [{"id": r["id"], "index": r["index"], "text": t, "prompt": r["prompt"], "translation": r["outputs"][0]} for r, t in zip(rows, texts)]
    emit(rows, args, format_report)
    return rows


def cli() -> None:
    """Console entry point: one-line errors, exit code 2."""
    from resumen.app.cli_support import main_guard

    main_guard(main)


if __name__ == "__main__":
    cli()
