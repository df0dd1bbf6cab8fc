"""What a request may ask for, checked in the HTTP process before it joins a batch.

LitServe runs a whole batch together: a request refused inside the worker would fail every request batched with
it, and an exception there is a 500. So bodies are validated here (pydantic, through FastAPI), and every problem
becomes a 4xx with a one-line JSON message: 400 for a malformed request, 404 for an unknown model, 413 for too much
text. The limits are the server's options (``Limits``), given to the APIs that check them; each server has its own.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, create_model, model_validator
from pydantic_core import PydanticCustomError

from resumen.core.encoding import lone_surrogate
from resumen.core.generation import SUMMARY_FIELDS, SUMMARY_OPTIONS, request_bounds, value_type


@dataclass(frozen=True)
class Limits:
    """The server's bounds (``serve.py`` options), given to the APIs and the request type they check; read when a
    request is validated, in the HTTP process."""

    models: tuple[str, ...]
    """The served models' names; the first is the default."""
    max_chars: int = 20_000
    """Characters per article (--max-chars)."""
    max_texts: int = 16
    """Articles per request (--max-texts)."""
    max_new_tokens: int = 512
    """The highest max_new_tokens a request may ask for (--max-new-tokens-limit)."""
    max_beams: int = 8
    """The highest num_beams a request may ask for (--max-beams)."""

    def as_dict(self) -> dict[str, Any]:
        """What ``GET /models`` shows."""
        return {"max_chars": self.max_chars, "max_texts": self.max_texts, "max_new_tokens": self.max_new_tokens, "max_beams": self.max_beams}

    def payload_bytes(self) -> int:
        """The largest body a request within these limits can be (UTF-8 and JSON escapes), refused before parsing."""
        return (self.max_chars * 4 + 2_000) * self.max_texts

    def check_overrides(self, values: dict[str, Any]) -> None:
        """Generation overrides inside the server's bounds (a 10^9 max_new_tokens or 1,000 beams would stall a
        worker): resumen/core/generation.py's, with the server's caps where it has none."""
        bounds = request_bounds({"max_new_tokens": self.max_new_tokens, "num_beams": self.max_beams})
        for name, (low, high) in bounds.items():
            value = values.get(name)
            if value is None:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                raise fail("out_of_bounds", f"{name} must be a finite number")
            if (low is not None and value < low) or (high is not None and value > high):
                raise fail("out_of_bounds", f"{name} must be between {low} and {high} on this server (got {value})")

    def check_model(self, name: str | None) -> None:
        if name is not None and name not in self.models:
            raise fail("unknown_model", f"unknown model '{name}': this server has {', '.join(self.models)} (GET /models)")

    def check_text(self, text: str, what: str) -> None:
        bad = lone_surrogate(text)  # the tokenizer would fail the whole batch
        if bad is not None:
            raise fail(
                "bad_text",
                f"{what} holds a lone surrogate (\\u{ord(text[bad]):04x} at character {bad}), which is not text: send the article as valid Unicode",
            )
        if not text.strip():
            raise fail("empty", f"{what} is empty: send the article's text")
        if len(text) > self.max_chars:
            raise fail(
                "too_large",
                f"{what} is {len(text):,} characters; this server takes at most {self.max_chars:,} (--max-chars): send the article's text only",
            )


# pydantic error types -> HTTP status (anything else a validation raises is a 400)
STATUS = {"too_large": 413, "unknown_model": 404}


def fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


class SummarizeBody(BaseModel):
    """``{"text": "..."}`` or ``{"texts": ["...", ...]}``, optionally a ``model`` and generation overrides (one field
    per summary option of resumen/core/generation.py, added by ``summarize_request``), checked against ``limits``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    limits: ClassVar[Limits] = Limits(models=())

    text: str | None = None
    texts: list[str] | None = None
    model: str | None = None

    @model_validator(mode="after")
    def within_limits(self) -> SummarizeBody:
        limits = self.limits
        if (self.text is None) == (self.texts is None):
            raise fail("bad_request", 'send either "text" (one article) or "texts" (a list of articles)')
        if self.texts is not None:
            if not self.texts:
                raise fail("empty", "texts is empty: send at least one article")
            if len(self.texts) > limits.max_texts:
                raise fail("too_large", f"texts holds {len(self.texts)} articles; this server takes at most {limits.max_texts} per request (--max-texts)")
        for i, text in enumerate([self.text] if self.text is not None else self.texts or []):
            limits.check_text(text, "text" if self.text is not None else f"texts[{i}]")
        limits.check_model(self.model)
        limits.check_overrides(self.overrides())
        return self

    def overrides(self) -> dict[str, Any]:
        values = {name: getattr(self, name, None) for name in SUMMARY_OPTIONS}
        return {k: v for k, v in values.items() if v is not None}

    def job(self) -> dict[str, Any]:
        """The plain dict a worker receives."""
        return {
            "texts": [self.text] if self.text is not None else list(self.texts or []),
            "single": self.text is not None,
            "model": self.model or self.limits.models[0],
            "overrides": self.overrides(),
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # LitServe queues the validated body for a worker process: it crosses as its job (a plain dict), so the
        # worker needs neither this server's request class nor its limits.
        return (dict, (self.job(),))


@functools.cache
def summarize_request(limits: Limits) -> type[SummarizeBody]:
    """The request body a server with these limits accepts: ``SummarizeBody`` with one optional field per summary
    option (their bounds are checked by ``Limits.check_overrides``). One class per ``Limits``, so two servers in one
    process keep their own bounds."""
    fields: dict[str, Any] = {name: (value_type(spec) | None, None) for name, spec in SUMMARY_FIELDS.items()}
    request = create_model("SummarizeRequest", __base__=SummarizeBody, **fields)
    request.limits = limits
    return request


def chat_job(request: Any, limits: Limits) -> dict[str, Any]:
    """An OpenAI chat request as a summarisation job: the last user message is the article; ``max_tokens`` (or
    ``max_completion_tokens``) bounds the summary. Raises ``HTTPException`` (4xx) for what does not fit."""
    from fastapi import HTTPException

    n = getattr(request, "n", 1)
    if n is not None and n != 1:  # LitServe would queue n generations (n = 0 streams forever): one is all we write
        raise HTTPException(
            400, f"n must be 1 (got {n}): this server writes one summary per request, and its decoding is deterministic, so more choices would repeat it"
        )
    messages = [m for m in (request.messages or []) if getattr(m, "role", None) == "user"]
    content = messages[-1].content if messages else None
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(part.get("text", "") if isinstance(part, dict) else getattr(part, "text", "") or "" for part in content)
    if not isinstance(content, str):
        raise HTTPException(400, 'send the article as the last message with role "user"')
    try:
        limits.check_text(content, "the user message")
        name = request.model if request.model in limits.models else None
        if name is None and request.model not in (None, "", "resumen"):
            limits.check_model(request.model)
        overrides = {"max_new_tokens": getattr(request, "max_completion_tokens", None) or request.max_tokens}
        overrides = {k: v for k, v in overrides.items() if v is not None}
        limits.check_overrides(overrides)
    except PydanticCustomError as error:
        raise HTTPException(STATUS.get(error.type, 400), str(error)) from None
    return {"texts": [content], "single": True, "model": name or limits.models[0], "overrides": overrides}


def validation_message(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """``(status, one line)`` for pydantic's errors on a request body."""
    first = errors[0] if errors else {"type": "bad_request", "msg": "bad request"}
    kind = first.get("type", "")
    if kind in ("json_invalid", "model_attributes_type", "dict_type", "model_type"):
        return 400, 'the body must be a JSON object such as {"text": "..."}'
    if kind == "missing" and tuple(first.get("loc", ())) == ("body",):
        return 400, 'the request has no body: send a JSON object such as {"text": "..."}'
    if kind == "extra_forbidden":
        field = first.get("loc", ["", "?"])[-1]
        return 400, f"unknown field '{field}': send text or texts, and optionally model, {', '.join(SUMMARY_OPTIONS)}"
    field = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = first.get("msg", "bad request").removeprefix("Value error, ")
    if kind in STATUS or kind in ("empty", "bad_request", "out_of_bounds", "bad_text"):
        return STATUS.get(kind, 400), message
    return 400, f"{field}: {message}" if field else message
