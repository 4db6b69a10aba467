"""Atomic write-if-changed: the only way policyfeed puts files on disk.

Every file is written whole to a temporary file, then renamed over its name, so a reader (or a
run killed at any moment) sees either the old bytes or the new ones, never part of a file.

Two ways to make it durable (on disk, not only in the page cache, should the machine lose
power):

- :func:`write_if_changed` flushes each file before renaming it: for a single file that matters
  on its own (a configuration, an email).
- :class:`BatchWriter` writes many files without a flush each, and :meth:`BatchWriter.sync`
  makes all of them durable with one flush of their filesystem. A build writes its pages that way
  and syncs once before it saves the state that says they are there. A mark it sets before its
  first change (:meth:`BatchWriter.mark`) tells the next build that a build was killed midway,
  so that one does not trust the old state: it builds in full (files whose bytes are already
  right are left alone).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Where a :class:`BatchWriter` stages its temporary files, inside the folder it writes to. Names
#: start with the writer's pid; a run that was killed leaves files there, which the next writer
#: removes (:meth:`BatchWriter.clear_stale`).
STAGING_DIR = ".policyfeed-tmp"


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically and durably unless the file already holds exactly
    these bytes.

    Returns True when the file was (re)written. Unchanged files keep their mtime, so it stays an
    honest Last-Modified for HTTP caches and feed readers.
    """
    if _unchanged(path, data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True


def write_text_if_changed(path: Path, text: str) -> bool:
    """UTF-8 variant of :func:`write_if_changed`."""
    return write_if_changed(path, text.encode("utf-8"))


def _unchanged(path: Path, data: bytes) -> bool:
    try:
        if os.stat(path).st_size != len(data):
            return False
        with open(path, "rb") as fh:
            return fh.read() == data
    except (FileNotFoundError, NotADirectoryError):
        return False


def fsync_dir(path: Path) -> None:
    """Make the entries of folder ``path`` (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: What syncfs answers when data did not reach the disk.
_WRITE_ERRORS = frozenset({errno.EIO, errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def sync_filesystem(path: Path) -> None:
    """Flush everything written to the filesystem that holds ``path``: Linux's ``syncfs``
    (one flush, whatever the number of files), or ``sync`` where there is none."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = getattr(libc, "syncfs", None)
        if syncfs is not None:
            fd = os.open(path, os.O_RDONLY)
            try:
                if syncfs(fd) == 0:
                    return
                code = ctypes.get_errno()
            finally:
                os.close(fd)
            # syncfs reports the disk's write errors; sync() would hide them. Anything else
            # (no syncfs in this kernel, a sandbox refusing it) falls back to sync().
            if code in _WRITE_ERRORS:
                raise OSError(code, os.strerror(code), str(path))
    os.sync()


class BatchWriter:
    """Atomic write-if-changed for many files under ``root``, made durable all at once by
    :meth:`sync` instead of a flush per file.

    Temporary files go into ``root/.policyfeed-tmp/`` (one folder to clean up after a run
    that was killed, and never inside a folder that is served), then are renamed into place.
    Several writers (processes) may write under the same root at once.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging = self.root / STAGING_DIR
        self._prefix = f"{os.getpid()}-"
        self._serial = itertools.count()
        self._folders: set[Path] = set()
        self.written = 0

    def _folder(self, folder: Path) -> None:
        if folder not in self._folders:
            folder.mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)

    def write(
        self, path: Path, data: bytes, *, before_change: Callable[[], object] | None = None
    ) -> bool:
        """Write ``data`` to ``path`` unless it already holds these bytes; True when written.
        ``before_change`` is called first when the file is to change."""
        if _unchanged(path, data):
            return False
        if before_change is not None:
            before_change()
        self._folder(self.staging)
        self._folder(path.parent)
        tmp = self.staging / f"{self._prefix}{next(self._serial)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fchmod(fd, 0o644)  # whatever the umask, as write_if_changed does
            finally:
                os.close(fd)
            try:
                os.replace(tmp, path)
            except FileNotFoundError:  # the folder was removed since: make it again
                self._folders.discard(path.parent)
                self._folder(path.parent)
                os.replace(tmp, path)
            except OSError as exc:
                if exc.errno != errno.EXDEV:  # a folder on another filesystem: stage beside it
                    raise
                os.unlink(tmp)
                return write_if_changed(path, data)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self.written += 1
        return True

    def sync(self) -> None:
        """Make every file written so far (by any writer under ``root``) durable."""
        if self.root.exists():
            sync_filesystem(self.root)

    # Marks: "the folder is changing", kept until the one who set it says otherwise. A build
    # sets one (durably) before its first change and removes it once its state is saved, so a
    # build that finds one knows the last build was killed midway.
    def mark(self, name: str) -> None:
        """Set mark ``name`` (durably) unless it is set."""
        path = marker_path(self.root, name)
        if path.exists():
            return
        if not self.staging.is_dir():
            self._folder(self.staging)
            fsync_dir(self.root)
        with open(path, "wb"):
            pass
        fsync_dir(self.staging)

    def unmark(self, name: str) -> None:
        """Remove mark ``name`` (a crash that loses this only costs a full build)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker_path(self.root, name))

    def clear_stale(self) -> None:
        """Remove what killed writers left in the staging folder (files of live ones, and the
        marks, stay)."""
        try:
            names = os.listdir(self.staging)
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            pid = name.split("-", 1)[0]
            if not pid.isdigit() or (int(pid) != os.getpid() and _alive(int(pid))):
                continue
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                os.unlink(self.staging / name)
        with contextlib.suppress(OSError):
            self.staging.rmdir()  # only when empty
            self._folders.discard(self.staging)


def marker_path(root: Path, name: str) -> Path:
    return Path(root) / STAGING_DIR / f"changing-{name}"


def is_marked(root: Path, name: str) -> bool:
    """Whether mark ``name`` is set under ``root`` (see :meth:`BatchWriter.mark`)."""
    return marker_path(root, name).exists()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs; a zombie (killed, not yet reaped: a killed build's
    worker in a container whose first process reaps nothing) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc here: it answered the signal, so it runs
        return True
    return state not in (b"Z", b"X")
