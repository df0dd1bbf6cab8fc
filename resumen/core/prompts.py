"""Instruction templates are data, not code: plain text with exactly one ``{text}`` field where the article goes.

A template is never handed to ``str.format`` (which evaluates ``{text.__class__}`` and ``{text:>99999999}``): it is
parsed once into the text before and after the field, and filling it is concatenation. Literal braces are written
doubled (``{{`` and ``}}``), as in a format string. Anything else between braces is refused with the reason.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache

from resumen.core.errors import ResumenError

SUMMARY_TEMPLATE = "Resume el siguiente articulo:\n\n{text}"
# The longest template accepted: an instruction, not a document (its tokens come out of every article's budget).
MAX_TEMPLATE_CHARS = 2000


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed template: the fixed text before and after the article."""

    prefix: str
    suffix: str

    def fill(self, text: str) -> str:
        return self.prefix + text + self.suffix

    @property
    def fixed_text(self) -> str:
        """The template without the article (what every prompt spends before the article's own tokens)."""
        return self.prefix + self.suffix


def parse_template(template: object, source: str = "prompt template") -> PromptTemplate:
    """The template's prefix and suffix, or a :class:`ResumenError` naming what is wrong and the fix.

    ``source`` says where the template came from (a flag, an export's config.json, an adapter) for the message.
    """
    if not isinstance(template, str):
        raise ResumenError(f"{source} must be text with one {{text}} field, not {type(template).__name__}.")
    return _parse(template, source)


@lru_cache(maxsize=64)
def _parse(template: str, source: str) -> PromptTemplate:
    shown = template if len(template) <= 80 else template[:77] + "..."
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ResumenError(
            f"{source} is {len(template):,} characters long; at most {MAX_TEMPLATE_CHARS:,} are accepted (it is an "
            "instruction: its tokens are taken from every article's max_source_length)."
        )
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ResumenError(f"{source} {shown!r} is not a valid template ({error}): write literal braces as {{{{ and }}}}.") from None
    fields = [(name, spec, conversion) for _, name, spec, conversion in parts if name is not None]
    for name, spec, conversion in fields:
        if name != "text":
            raise ResumenError(
                f"{source} {shown!r} has the placeholder {{{name}}}: only {{text}} is filled in (no other names, "
                "positions, attributes or indexes); write literal braces as {{ and }}."
            )
        if spec or conversion:
            written = "{text" + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ResumenError(
                f"{source} {shown!r} writes {written}: a template takes the article as it is, with no conversion or format spec: write {{text}}."
            )
    if not fields:
        raise ResumenError(f"{source} {shown!r} has no {{text}} field: add it where the article goes.")
    if len(fields) > 1:
        raise ResumenError(f"{source} {shown!r} has {len(fields)} {{text}} fields: the article goes in exactly one place.")
    position = next(i for i, part in enumerate(parts) if part[1] is not None)
    prefix = "".join(literal for literal, *_ in parts[: position + 1])
    suffix = "".join(literal for literal, *_ in parts[position + 1 :])
    return PromptTemplate(prefix, suffix)


def validate_template(template: object, source: str = "prompt template") -> str:
    """Return ``template`` if it is a valid template (see :func:`parse_template`), else raise with the fix."""
    parse_template(template, source)
    return template  # type: ignore[return-value]


def format_prompt(template: str, text: str) -> str:
    """The prompt for one article: the template's prefix, the article, its suffix (no ``str.format``)."""
    return parse_template(template).fill(text)


# GemmaX2-28's translation prompt and languages (ModelSpace/GemmaX2-28-2B-v0.1 model card).
GEMMAX2_LANGUAGES = {
    "ar": "Arabic",
    "bn": "Bengali",
    "cs": "Czech",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fa": "Persian",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "km": "Khmer",
    "ko": "Korean",
    "lo": "Lao",
    "ms": "Malay",
    "my": "Burmese",
    "nl": "Dutch",
    "pl": "Polish",
    "pt": "Portuguese",
    "ru": "Russian",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "zh": "Chinese",
}


def language_name(language: str) -> str:
    """'es' or 'spanish' -> 'Spanish'; anything outside the 28 languages is refused with the list."""
    key = language.strip().lower()
    if key in GEMMAX2_LANGUAGES:
        return GEMMAX2_LANGUAGES[key]
    for name in GEMMAX2_LANGUAGES.values():
        if key == name.lower():
            return name
    supported = ", ".join(f"{code} ({name})" for code, name in sorted(GEMMAX2_LANGUAGES.items()))
    raise ResumenError(f"language '{language}' is not one of GemmaX2's 28: use one of {supported}.")


def gemmax2_prompt(text: str, source: str, target: str) -> str:
    """``Translate this from <Source> to <Target>:\\n<Source>: <text>\\n<Target>:``"""
    source, target = language_name(source), language_name(target)
    return f"Translate this from {source} to {target}:\n{source}: {text}\n{target}:"
