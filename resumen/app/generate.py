"""Generate continuations with a causal LM; every decoding option goes to generate(), where it takes effect.

    python scripts/generate.py                                    # gpt2, greedy, "The future of AI is"
    python scripts/generate.py --do-sample --temperature 0.8 --top-p 0.9 --seed 1 "Había una vez"
    python scripts/generate.py --num-beams 4 --no-repeat-ngram-size 2 --max-new-tokens 40 "El tiempo mañana"
    python scripts/generate.py --pipeline "The future of AI is"  # the same request via transformers' pipeline

Prompts in a batch are left-padded so each continuation follows its own last token. ``--seed`` makes sampling
reproducible: the same seed gives the same text.
"""

from __future__ import annotations


from resumen.app.common import base_parser, emit, make_trainer, predict_rows, read_inputs

DEFAULT_TEXT = "The future of AI is"


def add_decoding_args(parser) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=50, help="tokens to generate (default: 50)")
    parser.add_argument("--do-sample", action="store_true", help="sample instead of greedy / beam search")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: 1.0)")
    parser.add_argument("--top-k", type=int, default=50, help="sample among the k most likely tokens (default: 50)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass in (0, 1] (default: 1.0)")
    parser.add_argument("--num-beams", type=int, default=1, help="beam search width (default: 1)")
    parser.add_argument("--repetition-penalty", type=float, default=1.0, help=">1 discourages repeats (default: 1.0)")
    parser.add_argument("--no-repeat-ngram-size", type=int, default=0, help="forbid repeated n-grams (default: off)")
    parser.add_argument("--num-return-sequences", type=int, default=1, help="continuations per prompt (default: 1)")
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling (same seed, same text)")


def format_report(rows: list[dict]) -> str:
    blocks = []
    for row in rows:
        lines = [f"Prompt: {row['prompt']!r}"]
        for number, output in enumerate(row["outputs"], start=1):
            prefix = f"[{number}] " if len(row["outputs"]) > 1 else ""
            lines.append(f"{prefix}{row['prompt']}{output}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def decoding_settings(args):
    """The command line's decoding options as the one settings object the module and the pipeline both take."""
    from resumen.core.generation import GenerationSettings

    return GenerationSettings(
        max_new_tokens=args.max_new_tokens,
        do_sample=args.do_sample,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        num_beams=args.num_beams,
        repetition_penalty=args.repetition_penalty,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        num_return_sequences=args.num_return_sequences,
    )


def run_pipeline(args, settings, texts: list[str]) -> list[dict]:
    """The same request through transformers' ``text-generation`` pipeline, for comparison."""
    from transformers import pipeline

    from resumen.core.loading import load_causal_model, load_tokenizer

    tokenizer = load_tokenizer(args.model, trust_remote_code=args.trust_remote_code)
    model = load_causal_model(args.model, trust_remote_code=args.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    results = generator(
        texts,
        batch_size=args.batch_size,
        return_full_text=False,
        pad_token_id=tokenizer.pad_token_id,
        **settings.generate_kwargs(),
    )
    return [
        {"id": str(i), "index": i, "prompt": text, "outputs": [r["generated_text"] for r in result]} for i, (text, result) in enumerate(zip(texts, results))
    ]


def main(argv: list[str] | None = None) -> list[dict]:
    from dataclasses import asdict

    parser = base_parser(__doc__, "gpt2")
    add_decoding_args(parser)
    parser.add_argument("--pipeline", action="store_true", help="run through transformers' text-generation pipeline")
    args = parser.parse_args(argv)
    import lightning as L

    from resumen.datamodules.text_prompts import prompt_loader
    from resumen.lightning_modules.causal_lm import CausalLMModule

    settings = decoding_settings(args)  # checked here, before any model loads
    texts = read_inputs(args, default=[DEFAULT_TEXT])
    if args.seed is not None:
        L.seed_everything(args.seed, verbose=False)
    if args.pipeline:
        rows = run_pipeline(args, settings, texts)
    else:
        decoding = {k: v for k, v in asdict(settings).items() if k != "length_penalty"}
        module = CausalLMModule(args.model, task="generate", trust_remote_code=args.trust_remote_code, **decoding)
        rows = predict_rows(make_trainer(args), module, prompt_loader(texts, module.tokenizer, args.batch_size))
    emit(rows, args, format_report)
    return rows


def cli() -> None:
    """Console entry point: one-line errors, exit code 2."""
    from resumen.app.cli_support import main_guard

    main_guard(main)


if __name__ == "__main__":
    cli()
