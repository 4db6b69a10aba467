"""A progress bar on stderr for long sends: only on a terminal, never with --json."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

import click

if TYPE_CHECKING:
    from policyfeed.delivery.ledger import Progress


@contextlib.contextmanager
def sending_progress(
    *, enabled: bool = True, stream: TextIO | None = None
) -> Iterator[Progress | None]:
    """Yield a ``progress(done, total)`` callback drawing a bar on ``stream`` (stderr), or None
    when disabled or when the stream is not a terminal (cron, pipes, logs stay clean)."""
    out: TextIO = stream if stream is not None else sys.stderr
    if not enabled or not out.isatty():
        yield None
        return
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="Sending", file=out, show_pos=True)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
