"""Atomic write-if-changed: files change only when their bytes do, and never half-written."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

from policyfeed.output import write_if_changed, write_text_if_changed

OLD_MTIME = 1_343_203_200  # 2012-07-25


def test_a_new_file_is_written_with_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "public" / "topics" / "ietf.xml"
    assert write_if_changed(path, b"<rss/>") is True
    assert path.read_bytes() == b"<rss/>"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_the_same_bytes_leave_the_file_and_its_mtime_alone(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    write_if_changed(path, b"<rss/>")
    os.utime(path, (OLD_MTIME, OLD_MTIME))
    assert write_if_changed(path, b"<rss/>") is False
    assert path.stat().st_mtime == OLD_MTIME


def test_different_bytes_of_the_same_length_replace_the_file(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    write_if_changed(path, b"<rss/>")
    os.utime(path, (OLD_MTIME, OLD_MTIME))
    assert write_if_changed(path, b"<atm/>") is True
    assert path.read_bytes() == b"<atm/>"
    assert path.stat().st_mtime != OLD_MTIME


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    write_if_changed(tmp_path / "a.html", b"one")
    write_if_changed(tmp_path / "a.html", b"two")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html"]


def test_a_failed_write_keeps_the_old_file_whole_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "index.html"
    write_if_changed(path, b"old page")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        write_if_changed(path, b"new page that never lands")
    assert path.read_bytes() == b"old page"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]


def test_text_is_written_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "page.txt"
    assert write_text_if_changed(path, "Genève – 29 July\n") is True
    assert path.read_bytes() == "Genève – 29 July\n".encode()
    assert write_text_if_changed(path, "Genève – 29 July\n") is False


def test_a_batch_writer_writes_whole_files_and_only_changed_ones(tmp_path: Path) -> None:
    from policyfeed.output import STAGING_DIR, BatchWriter

    writer = BatchWriter(tmp_path)
    page = tmp_path / "posts" / "a" / "index.html"
    assert writer.write(page, b"<html>one</html>") is True
    os.utime(page, (OLD_MTIME, OLD_MTIME))
    assert writer.write(page, b"<html>one</html>") is False
    assert page.stat().st_mtime == OLD_MTIME
    assert writer.write(page, b"<html>two</html>") is True
    assert page.read_bytes() == b"<html>two</html>"
    assert stat.S_IMODE(page.stat().st_mode) == 0o644
    assert os.listdir(tmp_path / STAGING_DIR) == []  # every temporary file was renamed
    writer.sync()
    writer.clear_stale()
    assert not (tmp_path / STAGING_DIR).exists()


def test_a_batch_writer_clears_what_killed_writers_left_only(tmp_path: Path) -> None:
    import subprocess
    import sys

    from policyfeed.output import STAGING_DIR, BatchWriter

    staging = tmp_path / STAGING_DIR
    staging.mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    (staging / f"{gone.stdout.strip()}-0").write_bytes(b"half a pa")  # its writer was killed
    (staging / f"{os.getppid()}-3").write_bytes(b"in progress")  # a live writer's file
    BatchWriter(tmp_path).clear_stale()
    assert os.listdir(staging) == [f"{os.getppid()}-3"]


def test_a_killed_writer_not_yet_reaped_counts_as_gone(tmp_path: Path) -> None:
    """A build's worker killed with its build is a zombie until someone reaps it (in a
    container whose first process reaps nothing, for ever): its files are cleared too."""
    from policyfeed.output import STAGING_DIR, BatchWriter

    staging = tmp_path / STAGING_DIR
    staging.mkdir()
    pid = os.fork()
    if pid == 0:  # the child exits at once and is left unreaped
        os._exit(0)
    try:
        for _ in range(500):  # until it is a zombie (bounded: 5 s)
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.01)
        (staging / f"{pid}-0").write_bytes(b"half a pa")
        BatchWriter(tmp_path).clear_stale()
        assert not staging.exists()
    finally:
        os.waitpid(pid, 0)


def test_a_mark_lasts_until_removed_and_survives_clearing(tmp_path: Path) -> None:
    from policyfeed.output import BatchWriter, is_marked

    writer = BatchWriter(tmp_path)
    assert not is_marked(tmp_path, "site")
    writer.mark("site")
    writer.mark("site")
    assert is_marked(tmp_path, "site")
    BatchWriter(tmp_path).clear_stale()  # the next build's writer keeps it
    assert is_marked(tmp_path, "site")
    writer.unmark("site")
    writer.unmark("site")
    assert not is_marked(tmp_path, "site")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux's")
def test_a_flush_the_disk_refuses_is_an_error_not_a_silent_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """syncfs reports a disk's write errors (EIO, ENOSPC); sync() cannot. Falling back to it
    would say the files are safe when they are not: the error is raised instead. Only a
    kernel without syncfs (ENOSYS), or a sandbox that refuses it (EPERM), gets the plain
    sync."""
    import ctypes
    import errno as errnos

    import policyfeed.output as output

    synced: list[bool] = []
    monkeypatch.setattr(output.os, "sync", lambda: synced.append(True))

    def fake_libc(code: int) -> object:
        class Libc:
            @staticmethod
            def syncfs(fd: int) -> int:
                ctypes.set_errno(code)
                return -1

        return lambda *a, **k: Libc()

    monkeypatch.setattr(ctypes, "CDLL", fake_libc(errnos.EIO))
    with pytest.raises(OSError) as caught:
        output.sync_filesystem(tmp_path)
    assert caught.value.errno == errnos.EIO and synced == []
    for code in (errnos.ENOSYS, errnos.EPERM):
        monkeypatch.setattr(ctypes, "CDLL", fake_libc(code))
        output.sync_filesystem(tmp_path)
    assert synced == [True, True]
