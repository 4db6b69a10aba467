"""Golden files: the demo site's feeds and OPML, byte for byte.

After an intended change, regenerate them with ``POLICYFEED_REGEN_GOLDEN=1 pytest
tests/test_feeds_golden.py`` and review the diff like any other change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlite_utils

from policyfeed.config import Settings
from policyfeed.site.build import build_site
from site_support import NOW

GOLDEN = Path(__file__).resolve().parent / "golden" / "feeds"
# Read at import: the shared autouse fixture clears POLICYFEED_* variables before each test.
REGENERATE = os.environ.get("POLICYFEED_REGEN_GOLDEN") == "1"
FEED_NAMES = ("feed.xml", "atom.xml", "feed.json")


def demo_feeds(site: Path) -> dict[str, bytes]:
    files = {"feeds.opml": (site / "feeds.opml").read_bytes()}
    for path in sorted(site.rglob("*")):
        rel = path.relative_to(site).as_posix()
        if path.name in FEED_NAMES and not rel.startswith("issues/"):
            files[rel] = path.read_bytes()
    return files


def test_the_demo_feeds_match_the_golden_files(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    build_site(demo_db, settings, tmp_path / "site", NOW)
    built = demo_feeds(tmp_path / "site")
    if REGENERATE:
        for stale in GOLDEN.rglob("*"):
            if stale.is_file() and stale.relative_to(GOLDEN).as_posix() not in built:
                stale.unlink()
        for rel, data in built.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_bytes(data)
        pytest.skip("golden files regenerated; review and commit them")
    golden = {
        p.relative_to(GOLDEN).as_posix(): p.read_bytes()
        for p in sorted(GOLDEN.rglob("*"))
        if p.is_file()
    }
    assert sorted(built) == sorted(golden)
    for rel, data in built.items():
        assert data.decode() == golden[rel].decode(), rel
