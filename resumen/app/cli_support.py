"""Entry-point wrapper: a user error is one line on stderr and exit code 2, not a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from resumen.core.errors import StopRequested, first_line, is_rust_panic


def debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("RESUMEN_DEBUG", "") not in {"", "0"}


# Lines libraries print that tell a user nothing about their run (each measured in make demo's output).
QUIET_LOG_LINES = (
    "💡 Tip:",  # Lightning's advertisement for its cloud logger, on every command
    "TPU available:",
    "HPU available:",  # hardware no user of this tool has
    "Loading `train_dataloader` to estimate number of stepping batches.",  # Lightning's note to itself
    "Seed set to",  # the seed is in the run's config.yaml
    # our own line already names the checkpoint a command uses ("Test: run ... ; best-....ckpt", "Resuming ...")
    "Restoring states from the checkpoint path at",
    "Loaded model weights from the checkpoint at",
)


class _DropLines:
    """A logging filter dropping the records that start with one of ``QUIET_LOG_LINES``."""

    def filter(self, record: Any) -> bool:
        return not str(record.getMessage()).startswith(QUIET_LOG_LINES)


def quiet_libraries() -> None:
    """Silence, at their source, the library output that is noise on every command (not warnings about the run)."""
    import logging
    import warnings

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero", "lightning.pytorch", "lightning.fabric.utilities.seed"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in logger.filters):
            logger.addFilter(_DropLines())
    # torch 2.13 deprecates the LeafSpec check Lightning 2.6's pytree helper makes on every run
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # main_guard hands the CLI its arguments on purpose (without --debug, or a run's own config on top)
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended")
    # pyarrow 25 deprecates an argument datasets' sort still passes (datasets' to fix, nothing for a user to do)
    warnings.filterwarnings("ignore", message=r"Specifying null_placement in SortOptions is deprecated", category=FutureWarning)
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # "Loading weights 100%" for a model that loads in a second
    except ImportError:
        pass


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
    if not debug:
        quiet_libraries()
    try:
        return main(None if from_command_line else args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted (Ctrl-C) before anything was saved.", file=sys.stderr)
        sys.exit(130)
    except StopRequested as stop:
        print(f"error: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)
    except Exception as error:  # noqa: BLE001 - the point is to turn any failure into one readable line
        if debug:
            raise
        _report(error)
    except BaseException as error:  # Rust panics derive from BaseException; SystemExit passes through
        if debug or not is_rust_panic(error):
            raise
        _report(error)


def _report(error: BaseException) -> None:
    from resumen.core.errors import ResumenError, error_chain

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
