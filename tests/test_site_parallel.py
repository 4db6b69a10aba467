"""A big build renders in worker processes: the same bytes as in-process, errors still reach
the caller, and nothing is left behind."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sqlite_utils

from policyfeed.config import Settings
from policyfeed.errors import ConfigError
from policyfeed.output import STAGING_DIR
from policyfeed.site import parallel
from policyfeed.site.build import build_site
from policyfeed.site.ownership import folder_key
from policyfeed.store import build_state
from site_support import NOW, day, save, tree, with_limit


def fill(db: sqlite_utils.Database, settings: Settings, count: int) -> None:
    for n in range(count):
        save(db, settings, f"post-{n:03d}", date=day(n % 29 + 1, n % 24), topics=[f"T{n % 4}"])


def test_workers_write_exactly_what_one_process_writes(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    settings = with_limit(settings, 4)
    fill(db, settings, 90)
    one = build_site(db, settings, tmp_path / "one", NOW, workers=1)
    two = build_site(db, settings, tmp_path / "two", NOW, workers=2)
    assert tree(tmp_path / "one") == tree(tmp_path / "two")
    rel = {p.relative_to(tmp_path / "one").as_posix() for p in one.written}
    assert rel == {p.relative_to(tmp_path / "two").as_posix() for p in two.written}
    assert len(rel) > 90
    assert not (tmp_path / "two" / STAGING_DIR).exists()

    for n in range(0, 90, 7):  # edits; the incremental build with workers equals a full one
        save(db, settings, f"post-{n:03d}", title=f"Edited {n}")
    build_site(db, settings, tmp_path / "two", NOW, workers=2)
    build_site(db, settings, tmp_path / "fresh", NOW, workers=1, full=True)
    assert tree(tmp_path / "two") == tree(tmp_path / "fresh")


def test_a_failing_page_in_a_worker_fails_the_build_and_saves_no_state(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    templates = tmp_path / "templates" / "site"
    templates.mkdir(parents=True)
    (templates / "post.html").write_text("{{ post.no_such_field }}\n", encoding="utf-8")
    broken = dataclasses.replace(with_limit(settings, 4), templates_dir=tmp_path / "templates")
    fill(db, broken, 40)
    with pytest.raises(ConfigError, match=r"post\.html"):
        build_site(db, broken, tmp_path / "out", NOW, workers=2)
    assert build_state.read(db, folder_key(tmp_path / "out"), "site") is None


def test_small_builds_stay_in_process() -> None:
    assert parallel.default_workers(parallel.PARALLEL_FROM - 1) == 1
    assert parallel.default_workers(10_000) == min(parallel.available_cores(), 8)
