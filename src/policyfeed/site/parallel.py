"""Rendering on every core: a build hands its pages out as jobs to worker processes.

The builder reads the database (in one snapshot) and decides what each job renders; a job gets
everything it needs as arguments (posts, links), renders its pages and writes them through the
worker's own :class:`~policyfeed.output.BatchWriter`, and returns the paths it wrote (relative
to the output folder). Workers never touch the database, so what they render is exactly what the
builder read.

Workers are forked (they inherit the loaded templates and settings, so they start in
milliseconds); where ``fork`` is not available, or for a small build, jobs run in-process one
after the other. Results come back in the order the jobs were given, so a build's list of written
files does not depend on which worker was faster.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyfeed.output import BatchWriter
from policyfeed.processes import available_cores, can_fork, die_with_parent, parent_gone

if TYPE_CHECKING:
    from policyfeed.config import Settings

#: Jobs in flight per worker before the builder waits for the oldest: bounds the posts held in
#: memory (and in pipes) on a big build.
IN_FLIGHT_PER_WORKER = 4
#: A build that writes fewer files than this renders in-process: forking costs more than it saves.
PARALLEL_FROM = 200

#: Where the digest's web archive lives in the output (site.issue_archive.ISSUES_DIR).
ARCHIVE_PREFIX = "issues/"
#: A job: ``fn(context, *args)`` returns the paths it wrote, relative to the output folder.
Job = Callable[..., list[str]]


class Context:
    """What a job works with: the settings and a writer into the output folder.

    Before the first change to a part of the output (the digest's archive under ``issues/``,
    or the rest of the site) the writer marks that part as changing, durably; the build
    removes the mark once it has saved that part's state. A build that finds the mark does not
    trust the saved state (it builds that part in full): the state describes the folder as it
    was before a killed build rewrote some of it, and an incremental build could skip pages
    that now hold what the killed build read.
    """

    def __init__(self, settings: Settings, writer: BatchWriter) -> None:
        self.settings = settings
        self.writer = writer
        self._marked: set[str] = set()

    def write(self, rel: str, data: bytes | str, written: list[str]) -> None:
        """Write ``rel`` (relative to the output folder) if its bytes changed; then it goes
        into ``written``."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if self.writer.write(self.writer.root / rel, raw, before_change=lambda: self.changing(rel)):
            written.append(rel)

    def changing(self, rel: str) -> None:
        """``rel`` is about to change or go: mark its part of the output as changing (once)."""
        part = "archive" if rel.startswith(ARCHIVE_PREFIX) else "site"
        if part not in self._marked:
            self.writer.mark(part)
            self._marked.add(part)


_worker_context: Any = None


def default_workers(expected_files: int) -> int:
    """Workers for a build that writes about ``expected_files`` files (1: in-process)."""
    if expected_files < PARALLEL_FROM or not can_fork():
        return 1
    return min(available_cores(), 8)


def _start_worker(parent: int, make_context: Callable[[], Any]) -> None:
    global _worker_context
    die_with_parent(parent)
    _worker_context = make_context()


def _in_worker(parent: int, fn: Job, args: tuple[Any, ...]) -> list[str]:
    if parent_gone(parent):
        os._exit(1)
    return fn(_worker_context, *args)


class Jobs:
    """Runs jobs in ``workers`` forked processes (1: in-process, at once).

    ``make_context`` builds what a job's first argument is (a renderer and a writer); each
    worker calls it once when it starts, and the in-process mode uses ``local`` instead.
    """

    def __init__(self, workers: int, make_context: Callable[[], Context], local: Context) -> None:
        self.workers = workers
        self.local = local
        self._done: list[str] = []
        self._pending: deque[Future[list[str]]] = deque()
        self._pool: ProcessPoolExecutor | None = None
        self.wrote_any = False
        if workers > 1:
            self._pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_start_worker,
                initargs=(os.getpid(), make_context),
            )

    @property
    def parallel(self) -> bool:
        return self._pool is not None

    def submit(self, fn: Job, *args: Any) -> None:
        """Run ``fn(context, *args)``: in a worker, or here and now."""
        if self._pool is None:
            self._done.extend(fn(self.local, *args))
            return
        while len(self._pending) >= self.workers * IN_FLIGHT_PER_WORKER:
            self._done.extend(self._pending.popleft().result())
        self._pending.append(self._pool.submit(_in_worker, os.getpid(), fn, args))

    def finish(self) -> list[str]:
        """Wait for every job so far; the paths they wrote, in the order the jobs were
        submitted. A job that failed raises its error here (the others are cancelled)."""
        try:
            while self._pending:
                self._done.extend(self._pending.popleft().result())
        except BaseException:
            self.close()
            raise
        done, self._done = self._done, []
        self.wrote_any = self.wrote_any or bool(done)
        return done

    def sync(self) -> None:
        """One flush of the output's filesystem, if this run wrote anything (see output.py)."""
        writer = self.local.writer
        if self.wrote_any or writer.written:
            writer.sync()

    def close(self) -> None:
        if self._pool is not None:
            for future in self._pending:
                future.cancel()
            self._pending.clear()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serial(settings: Settings, out_dir: Path) -> Jobs:
    """Jobs that run in-process, writing under ``out_dir``."""
    local = Context(settings, BatchWriter(out_dir))
    return Jobs(1, lambda: local, local)
