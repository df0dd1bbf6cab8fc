"""Entry-point wrapper: a user error is one line on stderr and exit code 2, not a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any


def debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("RESUMEN_DEBUG", "") not in {"", "0"}


def main_guard(main: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> Any:
    """Run ``main(args)``; print ``ResumenError`` (and offline/loading errors) as one line unless debugging."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    args = [a for a in argv if a != "--debug"]
    if from_command_line:  # parsers read sys.argv themselves; only drop our own flag from it
        sys.argv = sys.argv[:1] + args
    try:
        return main(None if from_command_line else args)
    except Exception as error:  # noqa: BLE001 - the point is to turn any failure into one readable line
        from core.errors import ResumenError, error_chain

        if debug:
            raise
        user_error = next((e for e in error_chain(error) if isinstance(e, ResumenError)), None)
        if user_error is None and type(error).__name__ == "ArgumentError":  # a config or option error (jsonargparse)
            detail = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
            print(f"error: {detail} (--help lists the options)", file=sys.stderr)
            sys.exit(2)
        message = str(user_error) if user_error else f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        print(f"error: {message}", file=sys.stderr)
        if user_error is None:
            print("(set RESUMEN_DEBUG=1 or pass --debug for the full traceback)", file=sys.stderr)
        sys.exit(2)
