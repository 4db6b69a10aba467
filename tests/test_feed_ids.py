"""Imported ids that are no absolute URI (``42``, ``not a uri <at> all``) became the Atom id (W3C
InvalidFullLink, InvalidUriChar). They are kept to match re-imports; the published id is the
post's ``tag:`` URI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import feedparser
import pytest
import sqlite_utils
from click.testing import CliRunner

from policyfeed.cli import cli
from policyfeed.model import is_absolute_uri
from policyfeed.store import open_db
from policyfeed.store import posts as store
from policyfeed.store.migrations import MIGRATIONS

ROOT = Path(__file__).resolve().parent.parent
RECORDS = [
    {"title": "Numbered", "id": "42", "date": "2012-07-20 12:00"},
    {"title": "Spaced", "id": "not a uri <at> all", "date": "2012-07-21 12:00"},
    {
        "title": "Proper",
        "id": "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "date": "2012-07-22",
    },
]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("tag:policy.example.org,2012-07-25:posts/acta", True),
        ("https://example.org/?p=1", True),
        ("urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427", True),
        ("42", False),
        ("not a uri <at> all", False),
        ("https://example.org/a b", False),
        ("https://example.org/100%", False),
        ("C:\\posts\\1", False),
        ("", False),
    ],
)
def test_is_absolute_uri(value: str, ok: bool) -> None:
    assert is_absolute_uri(value) is ok


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    (tmp_path / "posts.json").write_text(json.dumps(RECORDS), encoding="utf-8")
    result = CliRunner().invoke(cli, ["posts", "import", "posts.json"])
    assert result.exit_code == 0, result.output
    return tmp_path


def test_feeds_publish_tag_uris_for_ids_that_are_no_uri(site: Path) -> None:
    assert CliRunner().invoke(cli, ["build"]).exit_code == 0
    for name in ("atom.xml", "feed.xml"):
        parsed = feedparser.parse((site / "public" / name).read_bytes())
        assert not parsed.bozo
        ids = sorted(entry.id for entry in parsed.entries)
        assert ids == [
            "tag:policy.example.org,2012-07-20:posts/numbered",
            "tag:policy.example.org,2012-07-21:posts/spaced",
            "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        ], name
    items = json.loads((site / "public" / "feed.json").read_text())["items"]
    assert all(is_absolute_uri(item["id"]) for item in items)


def test_a_reimport_still_matches_posts_by_the_ids_they_came_with(site: Path) -> None:
    renamed = [{**record, "slug": f"moved-{n}"} for n, record in enumerate(RECORDS)]
    (site / "posts.json").write_text(json.dumps(renamed), encoding="utf-8")
    result = CliRunner().invoke(cli, ["posts", "import", "posts.json"])
    assert result.stdout == "Imported 3 posts from posts.json (0 new, 3 updated, 0 unchanged)\n"
    db = open_db(site / "posts.db")
    assert store.get_post(db, "moved-0").guid == "tag:policy.example.org,2012-07-20:posts/numbered"


def test_the_migration_moves_ids_that_are_no_uri_aside(tmp_path: Path) -> None:
    db = sqlite_utils.Database(tmp_path / "old.db")
    MIGRATIONS.apply(db, stop_before="m014_source_ids")
    with db.conn:
        for n, guid in enumerate(("42", "tag:x.example,2012:posts/ok")):
            db.execute(
                "INSERT INTO posts (slug, title, guid, status, published_at, updated_at, "
                "created_at) VALUES (?, 'T', ?, 'published', '2012-07-20T09:00:00Z', "
                "'2012-07-20T09:00:00Z', '2012-07-20T09:00:00Z')",
                [f"p{n}", guid],
            )
    db.conn.close()
    db = open_db(tmp_path / "old.db")
    rows = db.execute("SELECT slug, guid, source_id FROM posts ORDER BY slug").fetchall()
    assert rows == [("p0", None, "42"), ("p1", "tag:x.example,2012:posts/ok", None)]
    assert store.find_post_id(db, slug="other", guid="42") is not None
