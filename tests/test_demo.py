"""The demo site: posts.db holds the five July 2012 posts and is rebuilt the same from demo/."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils
from click.testing import CliRunner

from policyfeed.cli import cli
from policyfeed.store import open_db
from policyfeed.store import posts as store
from policyfeed.store.migrations import MIGRATIONS

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "policyfeed.toml"
ZURICH = ZoneInfo("Europe/Zurich")  # the demo site's time zone

# (slug, date on the page, topics by name): the Public Policy blog of July 2012.
FIVE_POSTS = [
    ("itu-council-refers-internet-issues-to-wtsa", "2012-07-25",
     ["Internet governance", "ITU / WCIT"]),
    ("public-policy-guests-at-ietf-84-vancouver", "2012-07-25", ["IETF"]),
    ("beijing-treaty-on-audiovisual-performances", "2012-07-23", ["Intellectual property"]),
    ("wcit-preparation-ask-your-government", "2012-07-11", ["Internet governance", "ITU / WCIT"]),
    ("acta-and-tppa-a-coincidence-worth-exploring", "2012-07-09",
     ["Intellectual property", "Trade agreements"]),
]  # fmt: skip


def table_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table but the full-text index (derived) and the migration log."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not name.startswith(("posts_fts", "sqlite_", "_sqlite_migrations"))
        ]
        rows = {}
        for table in sorted(tables):
            width = len(conn.execute(f"SELECT * FROM [{table}] LIMIT 0").description)
            order = ", ".join(str(i) for i in range(1, width + 1))
            rows[table] = conn.execute(f"SELECT * FROM [{table}] ORDER BY {order}").fetchall()
        return rows
    finally:
        conn.close()


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """posts.db made again from demo/ by the script, as `make demo-db` runs it."""
    target = tmp_path_factory.mktemp("demo") / "posts.db"
    done = subprocess.run(
        [sys.executable, str(ROOT / "demo" / "make_demo_db.py"), str(target)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return target


def test_the_demo_database_holds_the_five_posts_with_dates_and_topics(demo_db_path: Path) -> None:
    db = open_db(demo_db_path)
    posts = store.list_posts(db)
    found = [
        (p.slug, f"{p.published_at.astimezone(ZURICH):%Y-%m-%d}", [t.name for t in p.topics])
        for p in posts
        if p.published_at
    ]
    assert found == FIVE_POSTS
    assert [p.status for p in posts] == ["published"] * 5
    db.conn.close()


def test_every_demo_post_has_a_summary_a_body_and_a_url_on_the_demo_site(
    demo_db_path: Path,
) -> None:
    db = open_db(demo_db_path)
    for post in store.list_posts(db):
        assert post.summary and post.body_html.startswith("<p>"), post.slug
        # Their url is their own page on the demo site: not stored, their permalink says it.
        assert post.url is None
        assert post.permalink("https://policy.example.org/") == (
            f"https://policy.example.org/posts/{post.slug}/"
        )
        assert post.guid == (
            f"tag:policy.example.org,{post.published_at:%Y-%m-%d}:posts/{post.slug}"
            if post.published_at
            else None
        )
        assert 1 <= len(post.topics) <= 3
    db.conn.close()


def test_the_demo_source_is_the_committed_text(tmp_path: Path) -> None:
    records = json.loads((ROOT / "demo" / "posts.json").read_text(encoding="utf-8"))
    assert [r["slug"] for r in records] == [slug for slug, _, _ in FIVE_POSTS]
    for record in records:
        assert urlsplit(record["url"]).hostname == "policy.example.org"


def test_no_demo_post_ends_mid_sentence_and_each_links_to_the_rest(demo_db_path: Path) -> None:
    # The demo's source page shows only the start of each post: each ends at its last whole
    # sentence and then says where the rest is, with a link off the demo site.
    import lxml.html

    db = open_db(demo_db_path)
    for post in store.list_posts(db):
        body = lxml.html.fragment_fromstring(post.body_html, create_parent="div")
        paragraphs = body.findall("p")
        *text, last = paragraphs
        assert "…" not in post.body_text and "..." not in post.body_text, post.slug
        assert text[-1].text_content().rstrip().endswith((".", "?", "!")), post.slug
        links = last.findall("a")
        assert len(links) == 1 and links[0].text_content() == "Continue reading", post.slug
        target = urlsplit(links[0].get("href"))
        assert target.scheme == "https" and target.hostname == "www.internetsociety.org"
    db.conn.close()


@pytest.fixture
def committed_demo_db(tmp_path: Path) -> Path:
    """posts.db as committed (``git show HEAD:posts.db``), not as ``make run`` left it."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "show", "HEAD:posts.db"], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"not a git checkout with posts.db committed: {done.stderr.decode().strip()}")
    target = tmp_path / "committed.db"
    target.write_bytes(done.stdout)
    return target


def test_rebuilding_from_demo_gives_the_same_rows(rebuilt: Path, committed_demo_db: Path) -> None:
    committed = table_rows(committed_demo_db)
    assert committed["posts"]
    assert table_rows(rebuilt) == committed


def test_rebuilding_twice_gives_the_same_bytes(rebuilt: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.db"
    subprocess.run(
        [sys.executable, str(ROOT / "demo" / "make_demo_db.py"), str(again)],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert again.read_bytes() == rebuilt.read_bytes()


def test_the_committed_demo_database_is_fully_migrated(committed_demo_db: Path) -> None:
    # The committed file, not one made from demo/ (which is migrated by construction): a stale
    # one is changed by the first command that opens it, and `git status` shows it modified.
    conn = sqlite3.connect(f"file:{committed_demo_db}?mode=ro", uri=True)
    pending = [m.name for m in MIGRATIONS.pending(sqlite_utils.Database(conn))]
    conn.close()
    assert pending == [], "rebuild it: python demo/make_demo_db.py posts.db"


def test_reading_the_demo_database_leaves_its_bytes_alone(committed_demo_db: Path) -> None:
    # What keeps `git status` clean after `make run` reads posts.db.
    before = committed_demo_db.read_bytes()
    db = open_db(committed_demo_db)
    store.list_posts(db)
    db.conn.close()
    assert committed_demo_db.read_bytes() == before


def test_posts_list_on_the_demo_database_shows_the_five_posts(demo_db_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--db", str(demo_db_path), "--config", str(DEMO_CONFIG), "posts", "list"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "DATE        STATUS     SLUG                                         TITLE",
        "2012-07-25  published  itu-council-refers-internet-issues-to-wtsa   "
        "ITU Council sends OTT, domain names and ICANN questions to WTSA",
        "2012-07-25  published  public-policy-guests-at-ietf-84-vancouver    "
        "Five public policy guests join us at IETF 84 in Vancouver",
        "2012-07-23  published  beijing-treaty-on-audiovisual-performances   "
        "The Beijing Treaty gives audiovisual performers international protection",
        "2012-07-11  published  wcit-preparation-ask-your-government         "
        "Preparing for WCIT: ask your government how its submission will be made",
        "2012-07-09  published  acta-and-tppa-a-coincidence-worth-exploring  "
        "ACTA and the TPPA: a coincidence worth exploring",
    ]
