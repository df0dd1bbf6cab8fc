"""Showing single tokens unambiguously: visible spaces, and raw bytes for a partial UTF-8 character."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


def token_bytes(tokenizer: Any, token_id: int) -> bytes | None:
    """The bytes a byte-level (GPT-2 style) or byte-fallback (``<0xE4>``) token stands for, else ``None``."""
    piece = tokenizer.convert_ids_to_tokens(int(token_id))
    if piece is None:
        return None
    if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
        return bytes([int(piece[3:5], 16)])
    decoder = _byte_decoder()
    if all(char in decoder for char in piece):
        return bytes(decoder[char] for char in piece)
    return None


def display_token(tokenizer: Any, token_id: int) -> str:
    """``' future'`` with quotes (leading spaces visible), or ``<bytes 0xC3>`` for part of a character."""
    text = tokenizer.decode([int(token_id)], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    if "\ufffd" in text:
        raw = token_bytes(tokenizer, token_id)
        if raw is not None:
            try:
                return repr(raw.decode("utf-8"))
            except UnicodeDecodeError:
                return "<bytes " + " ".join(f"0x{b:02X}" for b in raw) + ">"
    return repr(text)
