"""One exception type for problems the user can fix; entry points print it as one line."""

from __future__ import annotations


class ResumenError(ValueError):
    """A bad input or setting, with a message that names the problem and the fix."""


class StopRequested(BaseException):
    """A stop signal (SIGTERM, SIGUSR1) that arrived before training or evaluation started (loading the model,
    preparing the data): there is nothing to save, so the process stops at once with ``exit_code`` (143). A
    BaseException, so no ``except Exception`` on the way swallows it."""

    def __init__(self, name: str, exit_code: int) -> None:
        super().__init__(f"stopped by {name} before training or evaluation started: nothing was trained or written; rerun the same command.")
        self.exit_code = exit_code


def first_line(error: BaseException, limit: int | None = None) -> str:
    """An error's first line (its type's name when it says nothing), cut to ``limit`` characters when given: what a
    one-line message quotes of a library's error."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:limit] if limit is not None else line


def error_chain(error: BaseException | None):
    """The error, then its causes and contexts, each once."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def is_rust_panic(error: BaseException) -> bool:
    """A panic inside a Rust library (the tokenizers' regexes, safetensors): a BaseException, not an Exception."""
    return type(error).__name__ == "PanicException"
