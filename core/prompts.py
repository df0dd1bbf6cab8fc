"""Instruction templates. A template is plain text with exactly one ``{text}`` placeholder."""

from __future__ import annotations

import string

from core.errors import ResumenError

SUMMARY_TEMPLATE = "Resume el siguiente articulo:\n\n{text}"


def validate_template(template: str) -> str:
    """Return ``template`` if it has exactly the ``{text}`` placeholder, else raise with the fix."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as error:
        raise ResumenError(
            f"prompt template {template!r} is not a valid template ({error}): write literal braces as {{{{ and }}}}."
        ) from error
    unknown = sorted({field for field in fields if field != "text"})
    if unknown:
        raise ResumenError(
            f"prompt template has unknown placeholder(s) {unknown}: only {{text}} is filled in "
            "(write literal braces as {{ and }})."
        )
    if "text" not in fields:
        raise ResumenError(f"prompt template {template!r} has no {{text}} placeholder: add it where the article goes.")
    return template


def format_prompt(template: str, text: str) -> str:
    return template.format(text=text)


# GemmaX2-28's translation prompt and languages (ModelSpace/GemmaX2-28-2B-v0.1 model card).
GEMMAX2_LANGUAGES = {
    "ar": "Arabic", "bn": "Bengali", "cs": "Czech", "de": "German", "en": "English", "es": "Spanish",
    "fa": "Persian", "fr": "French", "he": "Hebrew", "hi": "Hindi", "id": "Indonesian", "it": "Italian",
    "ja": "Japanese", "km": "Khmer", "ko": "Korean", "lo": "Lao", "ms": "Malay", "my": "Burmese", "nl": "Dutch",
    "pl": "Polish", "pt": "Portuguese", "ru": "Russian", "th": "Thai", "tl": "Tagalog", "tr": "Turkish",
    "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
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
