"""A build killed at any moment leaves every file whole, and the next build is correct.

Pages are written without a flush each (one sync before the build state is saved), by worker
processes on a big build; so real ``policyfeed build`` processes are SIGKILLed at random moments
while the database changes between runs. After each kill every file of the site must be a whole
document (HTML that ends, feeds and JSON that parse) and no worker may live on; at the end, a
build that is let finish must give exactly the site a full build gives in a fresh folder.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import pytest

from policyfeed.config import load_settings
from policyfeed.output import STAGING_DIR
from policyfeed.store import open_db, transaction
from policyfeed.store import posts as post_store
from site_support import day, save

KILLS = 8
CONFIG = """\
[site]
title = "Crash test"
base_url = "https://crash.example.org/"
timezone = "UTC"
[build]
output_dir = "public"
feed_limit = 4
"""
SKIP = {".policyfeed", STAGING_DIR}


def build_command(folder: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "policyfeed", "--db", str(folder / "posts.db"),
        "--config", str(folder / "policyfeed.toml"), "build", *args,
    ]  # fmt: skip


def site_files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not SKIP.intersection(p.relative_to(out).parts)
    }


def assert_whole(out: Path) -> None:
    """Every file is a complete document: what a reader could fetch after the kill."""
    for rel, data in site_files(out).items():
        assert data, f"{rel} is empty"
        if rel.endswith(".html"):
            assert data.rstrip().endswith(b"</html>"), f"{rel} is cut short"
        elif rel.endswith(".json"):
            json.loads(data)
        elif rel.endswith((".xml", ".opml")):
            parsed = feedparser.parse(data)
            assert not parsed.bozo, f"{rel}: {parsed.bozo_exception}"


def live_children(pid: int) -> list[int]:
    """Processes whose parent is (was) ``pid`` or that still sit in its process group."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, ppid, pgrp = fields[0], int(fields[1]), int(fields[2])
        if state != "Z" and (ppid == pid or pgrp == pid) and int(entry.name) != pid:
            found.append(int(entry.name))
    return found


def change(db_path: Path, settings_folder: Path, rng: random.Random, serial: int) -> None:
    """A few edits of every kind the build must follow: new, edited, unpublished, deleted."""
    settings = load_settings(settings_folder / "policyfeed.toml", environ={})
    db = open_db(db_path)
    try:
        slugs = sorted(p.slug for p in post_store.list_posts(db))
        for n in range(rng.randint(1, 4)):
            slug = f"new-{serial}-{n}"
            save(db, settings, slug, date=day(rng.randint(1, 29)), body=f"<p>{n}</p>")
        for slug in rng.sample(slugs, 3):
            save(db, settings, slug, title=f"Edited {serial} {slug}")
        victim = rng.choice(slugs)
        if rng.random() < 0.5:
            save(db, settings, victim, status="draft")
        else:
            with transaction(db):
                post_store.delete_post(db, victim)
    finally:
        db.conn.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_build_killed_at_any_moment_leaves_whole_files_and_the_next_build_is_right(
    tmp_path: Path,
) -> None:
    (tmp_path / "policyfeed.toml").write_text(CONFIG, encoding="utf-8")
    settings = load_settings(tmp_path / "policyfeed.toml", environ={})
    db = open_db(tmp_path / "posts.db")
    for n in range(150):  # enough pages for the build to use its worker processes
        save(db, settings, f"post-{n:03d}", date=day(n % 29 + 1, n % 24), topics=[f"T{n % 5}"])
    db.conn.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYFEED_")}
    out = tmp_path / "public"

    started = time.perf_counter()
    subprocess.run(build_command(tmp_path, "--full"), check=True, env=env, capture_output=True)
    duration = time.perf_counter() - started
    rng = random.Random(20121203)
    for serial in range(KILLS):
        change(tmp_path / "posts.db", tmp_path, rng, serial)
        full = serial % 3 == 0  # some kills interrupt a full build, the others incremental ones
        child = subprocess.Popen(
            build_command(tmp_path, *(["--full"] if full else [])),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(0.05, duration))
        child.send_signal(signal.SIGKILL)  # the build alone: its workers must follow it
        child.wait(timeout=30)
        deadline = time.monotonic() + 10
        while live_children(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live_children(child.pid) == [], "a worker outlived its build"
        assert_whole(out)

    subprocess.run(build_command(tmp_path), check=True, env=env, capture_output=True)
    fresh = tmp_path / "fresh"
    subprocess.run(
        build_command(tmp_path, "--full", "--out", str(fresh)),
        check=True,
        env=env,
        capture_output=True,
    )
    assert site_files(out) == site_files(fresh)
    assert not (out / STAGING_DIR).exists()  # the finished build cleared what the kills left
