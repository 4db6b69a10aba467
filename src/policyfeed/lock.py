"""One run at a time: an exclusive ``flock`` on a lock file next to the database.

The kernel releases the lock when the holder exits, however it exits (even SIGKILL), so a crashed
run never leaves a stale lock behind. The file itself stays; it only carries the holder's pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from policyfeed.errors import BusyError


def lock_path_for(db_path: Path) -> Path:
    """``posts.db`` → ``posts.db.lock`` in the same folder."""
    return db_path.with_name(db_path.name + ".lock")


@contextlib.contextmanager
def exclusive_lock(path: Path, *, wait: bool = False) -> Iterator[None]:
    """Hold the lock for the ``with`` block; BusyError at once if another process holds it,
    or block until it is free when ``wait``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise BusyError(
                f"another run holds {path}{f' (pid {holder})' if holder else ''}; "
                "try again later, or use --wait"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
