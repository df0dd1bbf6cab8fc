"""datasets' progress bars, shown only for work long enough to watch: a few hundred rows finish before a bar says
anything, while tokenising the full MLSUM-es (266,367 articles) takes minutes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

SHOWN_FROM_ROWS = 10_000
SHOWN_FROM_BYTES = 20 * 2**20


@contextmanager
def progress_bars_for(rows: int | None = None, size_bytes: int | None = None) -> Iterator[None]:
    import datasets

    small = (rows is not None and rows < SHOWN_FROM_ROWS) or (size_bytes is not None and size_bytes < SHOWN_FROM_BYTES)
    if not small or not datasets.is_progress_bar_enabled():
        yield
        return
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets.enable_progress_bars()
