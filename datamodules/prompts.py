"""Instruction templates. A template is plain text with exactly one ``{text}`` placeholder."""

from __future__ import annotations

import string

from lightning_modules.errors import ResumenError

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
