"""How an article becomes model input, defined once: the DataModule (training, test, predict) and the inference core
(summarize.py, the server, compare.py) both call :func:`encode_articles`, so the same text gives the same ids.

The article goes into the prompt template, is cut to ``max_source_length`` tokens (the template's own text
included), and each row says whether anything was cut.
"""

from __future__ import annotations

from typing import Any

from resumen.core.errors import ResumenError, is_rust_panic
from resumen.core.prompts import parse_template

# Characters kept per token of max_source_length before tokenising: bounds the cost of a 1 MB article while never
# cutting text the tokenizer would keep (a token is at least one character).
CHARS_PER_TOKEN_CAP = 16


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone surrogate (``"\\ud800"``: a valid JSON escape, but no character, which the tokenizer
    cannot take), or None when it is text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def check_template_fits(tokenizer: Any, template: str, max_source_length: int, source: str = "prompt template") -> int:
    """The template's own length in tokens; refused when it leaves no room for the article."""
    fixed = parse_template(template, source).fixed_text
    tokens = len(tokenize(tokenizer, fixed, add_special_tokens=True)["input_ids"])
    if tokens >= max_source_length:
        raise ResumenError(
            f"the {source}'s own text is {tokens} tokens, which leaves no room for the article within "
            f"max_source_length={max_source_length}: shorten the template or raise max_source_length."
        )
    return tokens


def encode_articles(tokenizer: Any, template: str, articles: list[str], max_source_length: int) -> dict[str, list]:
    """``input_ids``, ``attention_mask``, ``length`` (tokens) and ``truncated`` (bool) for each article."""
    filled = parse_template(template)
    cap = max_source_length * CHARS_PER_TOKEN_CAP
    prompts = [filled.fill(article[:cap]) for article in articles]
    encoded = tokenize(tokenizer, prompts, max_length=max_source_length, truncation=True)
    overflowed = [bool(e.overflowing) for e in encoded.encodings] if encoded.encodings else [False] * len(prompts)
    return {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "length": [len(ids) for ids in encoded["input_ids"]],
        "truncated": [cut or len(article) > cap for cut, article in zip(overflowed, articles)],
    }


def tokenize(tokenizer: Any, *args: Any, **kwargs: Any) -> Any:
    """``tokenizer(...)``, with a panic of the Rust tokenizer (a regex that backtracks without end, say) turned into
    one line that names the tokenizer instead of a BaseException no ``except Exception`` stops."""
    try:
        return tokenizer(*args, **kwargs)
    except BaseException as error:
        if not is_rust_panic(error):
            raise
        where = getattr(tokenizer, "name_or_path", "") or "the tokenizer"
        detail = str(error).strip().splitlines()[0] if str(error).strip() else "panic"
        raise ResumenError(
            f"the tokenizer of '{where}' (its tokenizer.json) failed on the input ({detail}): its normalizer or "
            "pre-tokenizer is broken; use the tokenizer files the model was published with."
        ) from None
