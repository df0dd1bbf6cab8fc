"""Entry-point wrapper: a user error is one line on stderr and exit code 2, not a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from core.errors import is_rust_panic


def debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("RESUMEN_DEBUG", "") not in {"", "0"}


def main_guard(main: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> Any:
    """Run ``main(args)``; print ``ResumenError`` (and offline/loading errors) as one line unless debugging."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    if not debug:
        os.environ["RUST_BACKTRACE"] = "0"  # a Rust panic would print a 60-frame backtrace before our line
    args = [a for a in argv if a != "--debug"]
    if from_command_line:  # parsers read sys.argv themselves; only drop our own flag from it
        sys.argv = sys.argv[:1] + args
    try:
        return main(None if from_command_line else args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted (Ctrl-C) before anything was saved.", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - the point is to turn any failure into one readable line
        if debug:
            raise
        _report(error)
    except BaseException as error:  # Rust panics derive from BaseException; SystemExit passes through
        if debug or not is_rust_panic(error):
            raise
        _report(error)


def _report(error: BaseException) -> None:
    from core.errors import ResumenError, error_chain

    user_error = next((e for e in error_chain(error) if isinstance(e, ResumenError)), None)
    if user_error is None and type(error).__name__ == "ArgumentError":  # a config or option error (jsonargparse)
        detail = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"error: {detail} (--help lists the options)", file=sys.stderr)
        sys.exit(2)
    if user_error is None and is_rust_panic(error):
        message = f"a Rust library panicked ({first_line(error)}): a broken tokenizer.json (e.g. a regex that backtracks) or weights file"
    else:
        message = str(user_error) if user_error else f"{type(error).__name__}: {first_line(error)}"
    print(f"error: {message}", file=sys.stderr)
    if user_error is None:
        print("(set RESUMEN_DEBUG=1 or pass --debug for the full traceback)", file=sys.stderr)
    sys.exit(2)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
