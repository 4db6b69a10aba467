"""The digest's web archive builds incrementally: a build re-renders only the issues that changed,
and gives exactly the files a full build gives, byte for byte."""

from __future__ import annotations

import dataclasses
import random
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import sqlite_utils
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from digest_support import NOW, add_post, approved_issue, make_post, parse
from policyfeed.config import Settings
from policyfeed.digest.issues import get_issue, issue_posts, mark_issue_status
from policyfeed.digest.render import post_views
from policyfeed.site.build import build_site
from policyfeed.site.issue_archive import (
    LazyPostView,
    build_issue_archive,
    write_issue_archive,
)
from policyfeed.store import memory_db, to_db_time
from policyfeed.store import posts as post_store
from site_support import tree

DAY = timedelta(days=1)
WEEK = 7 * DAY


@pytest.fixture
def no_fsync() -> Iterator[None]:
    # Durability is output.py's business: skip fsync so that the many small files are quick.
    with mock.patch("os.fsync"):
        yield


def weekly_issues(db: sqlite_utils.Database, settings: Settings, weeks: int, posts: int = 2):
    """``weeks`` issues, one a week before NOW, each with ``posts`` new posts."""
    start = NOW - weeks * WEEK
    for week in range(weeks):
        for n in range(posts):
            add_post(
                db,
                settings,
                f"w{week}-p{n}",
                title=f"Week {week} post {n}",
                body=f"<p>Body {week}.{n}</p>",
                topics=["IETF"] if n % 2 else [],
                date=start + week * WEEK + n * timedelta(hours=1),
            )
        approved_issue(db, settings, period=f"week-{week}", now=start + week * WEEK + DAY)


def bulk_issues(settings: Settings, issues: int, per_issue: int = 3) -> sqlite_utils.Database:
    """A database with ``issues`` issues of ``per_issue`` posts each, inserted in bulk."""
    db = memory_db()
    posts, issue_rows, links = [], [], []
    for number in range(1, issues + 1):
        created = to_db_time(NOW - (issues - number + 1) * WEEK)
        issue_rows.append(
            {"id": number, "number": number, "period": f"p{number}", "subject": f"Issue {number}",
             "note": "", "status": "sent", "created_at": created, "updated_at": created,
             "sent_at": created}
        )  # fmt: skip
        for position in range(1, per_issue + 1):
            post_id = (number - 1) * per_issue + position
            posts.append(
                {"id": post_id, "guid": f"tag:x,2012:{post_id}", "slug": f"post-{post_id}",
                 "title": f"Post {post_id}", "summary": "", "body_html": f"<p>Body {post_id}</p>",
                 "body_text": f"Body {post_id}", "author": "", "url": None, "status": "published",
                 "published_at": created, "updated_at": created, "created_at": created}
            )  # fmt: skip
            links.append({"issue_id": number, "post_id": post_id, "position": position})
    with db.conn:
        db["posts"].insert_all(posts)
        db["issues"].insert_all(issue_rows)
        db["issue_posts"].insert_all(links)
    return db


def fresh_tree(db: sqlite_utils.Database, settings: Settings, folder: Path) -> dict[str, bytes]:
    build_site(db, settings, folder, NOW)
    return tree(folder)


def article_titles(page: Path) -> list[str]:
    return [h.text_content() for h in parse(page.read_text()).cssselect("article h2")]


def issue_files(paths: list[Path], out: Path) -> list[str]:
    """The files of the digest's archive among ``paths``, relative to ``out``."""
    names = (p.relative_to(out).as_posix() for p in paths)
    return sorted(name for name in names if name.startswith("issues/"))


@pytest.fixture
def small(settings: Settings, db: sqlite_utils.Database) -> tuple[sqlite_utils.Database, Settings]:
    """Five weekly issues; the feeds show the newest two."""
    settings = dataclasses.replace(settings, feed_limit=2)
    weekly_issues(db, settings, 5)
    return db, settings


def test_a_build_with_nothing_new_writes_nothing_and_equals_a_full_build(
    small, tmp_path: Path
) -> None:
    db, settings = small
    out = tmp_path / "site"
    build_site(db, settings, out, NOW)

    again = build_site(db, settings, out, NOW)

    assert again.written == [] and again.removed == []
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh")


def test_a_new_issue_is_added_and_the_one_before_links_to_it(small, tmp_path: Path) -> None:
    db, settings = small
    out = tmp_path / "site"
    build_site(db, settings, out, NOW)
    add_post(db, settings, "fresh-news", title="Fresh news", date=NOW - DAY)
    approved_issue(db, settings, period="week-5", now=NOW)

    result = build_site(db, settings, out, NOW)

    written = issue_files(result.written, out)
    assert "issues/6/index.html" in written
    assert "issues/5/index.html" in written  # its "next issue" link
    assert "issues/4/index.html" not in written
    assert {"issues/index.html", "issues/atom.xml"} <= set(written)
    pager = parse((out / "issues/5/index.html").read_text()).cssselect("nav.pager a")
    assert [a.get("href") for a in pager][-1] == "../6/"
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh")


def test_editing_a_post_of_an_old_issue_re_renders_only_that_issue(small, tmp_path: Path) -> None:
    db, settings = small
    out = tmp_path / "site"
    build_site(db, settings, out, NOW)
    add_post(db, settings, "w0-p1", title="Week 0, revised", body="<p>New words</p>", now=NOW)

    result = build_site(db, settings, out, NOW)

    assert issue_files(result.written, out) == ["issues/1/index.html"]
    assert "Week 0, revised" in (out / "issues/1/index.html").read_text()
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh")


def test_editing_a_post_of_a_recent_issue_also_updates_the_feeds(small, tmp_path: Path) -> None:
    db, settings = small
    out = tmp_path / "site"
    build_site(db, settings, out, NOW)
    add_post(db, settings, "w4-p0", title="Week 4, revised", now=NOW)

    result = build_site(db, settings, out, NOW)

    written = issue_files(result.written, out)
    assert "issues/5/index.html" in written and "issues/atom.xml" in written
    assert "Week 4, revised" in (out / "issues/feed.json").read_text()
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh")


def test_a_status_change_rewrites_nothing_and_a_new_subject_shows_everywhere(
    small, tmp_path: Path
) -> None:
    db, settings = small
    out = tmp_path / "site"
    build_site(db, settings, out, NOW)
    mark_issue_status(db, get_issue(db, 5), "sent", NOW)

    assert build_site(db, settings, out, NOW).written == []

    with db.conn:
        db.execute("UPDATE issues SET subject = 'A better subject' WHERE number = 4")
    result = build_site(db, settings, out, NOW)

    written = issue_files(result.written, out)
    assert "issues/4/index.html" in written and "issues/index.html" in written
    assert "A better subject" in (out / "issues/atom.xml").read_text()
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh")


def test_an_unpublished_post_leaves_its_issue_page_and_the_count_in_the_index(
    small, tmp_path: Path
) -> None:
    db, settings = small
    out = tmp_path / "site"
    build_site(db, settings, out, NOW)
    post_store.set_status(db, "w1-p0", "draft", now=NOW, domain=settings.domain)

    result = build_site(db, settings, out, NOW)

    assert {"issues/2/index.html", "issues/index.html"} <= set(issue_files(result.written, out))
    assert article_titles(out / "issues/2/index.html") == ["Week 1 post 1"]
    assert "1 post<" in (out / "issues/index.html").read_text()
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh")

    post_store.set_status(db, "w1-p0", "published", now=NOW, domain=settings.domain)
    build_site(db, settings, out, NOW)
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh-again")


def test_a_deleted_issue_loses_its_page_and_its_neighbours_link_past_it(
    small, tmp_path: Path
) -> None:
    db, settings = small
    out = tmp_path / "site"
    build_site(db, settings, out, NOW)
    with db.conn:
        db.execute("DELETE FROM issues WHERE number = 3")

    result = build_site(db, settings, out, NOW)

    assert out / "issues/3/index.html" in result.removed
    assert not (out / "issues/3").exists()
    assert {"issues/2/index.html", "issues/4/index.html"} <= set(issue_files(result.written, out))
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh")


def test_a_full_build_removes_pages_of_issues_that_no_longer_exist(small, tmp_path: Path) -> None:
    db, settings = small
    out = tmp_path / "site"
    build_site(db, settings, out, NOW)
    stale = out / "issues" / "99" / "index.html"
    stale.parent.mkdir()
    stale.write_text("an issue from another database")

    result = build_issue_archive(db, settings, out, full=True)

    assert result.full and result.removed == [stale] and not stale.parent.exists()
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh")


def test_other_settings_or_templates_rebuild_every_page(small, tmp_path: Path) -> None:
    db, settings = small
    out = tmp_path / "site"
    build_site(db, settings, out, NOW)
    templates = tmp_path / "templates" / "archive"
    templates.mkdir(parents=True)
    source = resources.files("policyfeed.templates").joinpath("archive/issue.html").read_text()
    (templates / "issue.html").write_text(source.replace("Read it on the site", "Read more"))
    changed = dataclasses.replace(settings, templates_dir=tmp_path / "templates")

    result = build_issue_archive(db, changed, out)

    assert result.full
    assert {f"issues/{n}/index.html" for n in range(1, 6)} <= set(issue_files(result.written, out))
    assert tree(out) == fresh_tree(db, changed, tmp_path / "fresh")


def test_a_state_from_another_database_gives_a_full_build(small, tmp_path: Path) -> None:
    db, settings = small
    out = tmp_path / "site"
    build_issue_archive(db, settings, out)
    other = memory_db()
    weekly_issues(other, settings, 2, posts=3)

    result = build_issue_archive(other, settings, out)

    assert result.full
    assert not (out / "issues" / "5").exists()
    fresh = tmp_path / "fresh"
    build_issue_archive(other, settings, fresh)
    assert tree(out) == tree(fresh)


def test_a_warm_build_loads_the_posts_of_changed_issues_only(small, tmp_path: Path) -> None:
    db, settings = small
    out = tmp_path / "site"
    build_issue_archive(db, settings, out)
    loaded: list[int] = []

    def counting(db: sqlite_utils.Database, issue: Any) -> Any:
        loaded.append(issue.number)
        return issue_posts(db, issue)

    with mock.patch("policyfeed.site.issue_archive.issue_posts", counting):
        build_issue_archive(db, settings, out)
        assert loaded == []
        add_post(db, settings, "w2-p0", title="Week 2, revised", now=NOW)
        build_issue_archive(db, settings, out)
        assert loaded == [3]
        loaded.clear()
        add_post(db, settings, "late", date=NOW - DAY)
        approved_issue(db, settings, period="week-5", now=NOW)
        build_issue_archive(db, settings, out)
        assert sorted(loaded) == [5, 6]  # the new one and the one before it, also in the feeds
        loaded.clear()
        mark_issue_status(db, get_issue(db, 6), "sent", NOW)
        build_issue_archive(db, settings, out)
        assert loaded == []  # no page shows the status


def test_a_warm_build_does_the_same_database_work_on_ten_times_the_issues(
    settings: Settings, tmp_path: Path, no_fsync: None
) -> None:
    """Counted in SQLite virtual-machine steps, which do not depend on the machine's speed."""
    steps = {}
    for count in (20, 200):
        db = bulk_issues(settings, count)
        out = tmp_path / str(count)
        build_site(db, settings, out, NOW)
        counter = [0]

        def tick(counter: list[int] = counter) -> int:
            counter[0] += 1
            return 0

        db.conn.set_progress_handler(tick, 10)
        result = build_site(db, settings, out, NOW)
        db.conn.set_progress_handler(None, 0)
        assert result.written == []
        steps[count] = counter[0]
    assert steps[200] <= 1.5 * steps[20], steps


def test_the_lazy_view_shows_what_the_full_view_shows(settings: Settings) -> None:
    for post in (
        make_post("with-summary", summary="  A   summary\nover lines. "),
        make_post("no-summary", summary="", body_html="<p>" + "Many words here. " * 40 + "</p>"),
        make_post("own-url", url="https://elsewhere.example.net/a"),
    ):
        full = post_views([post], settings, with_text=False)[0]
        lazy = LazyPostView(post, settings)
        for name in ("title", "url", "summary", "date", "date_iso", "topics", "body_html"):
            assert getattr(lazy, name) == getattr(full, name), (post.slug, name)


# --- any sequence of changes ------------------------------------------------------------------

KINDS = ["issue", "issue", "edit", "unpublish", "republish", "subject", "status", "delete"]


def apply(db: sqlite_utils.Database, settings: Settings, kind: str, n: int, made: int) -> None:
    numbers = [row[0] for row in db.execute("SELECT number FROM issues ORDER BY number")]
    slugs = [row[0] for row in db.execute("SELECT slug FROM posts ORDER BY slug")]
    if kind == "issue" or not numbers:
        for k in range(n % 3 + 1):
            add_post(db, settings, f"new-{made}-{k}", date=NOW - timedelta(hours=made + k))
        approved_issue(db, settings, period=f"made-{made}", now=NOW + made * DAY)
        return
    number = numbers[n % len(numbers)]
    slug = slugs[n % len(slugs)]
    if kind == "edit":
        add_post(db, settings, slug, title=f"Edited {made}", now=NOW + made * DAY)
    elif kind in ("unpublish", "republish"):
        status = "draft" if kind == "unpublish" else "published"
        post_store.set_status(db, slug, status, now=NOW + made * DAY, domain=settings.domain)
    elif kind == "subject":
        with db.conn:
            db.execute("UPDATE issues SET subject = ? WHERE number = ?", [f"S{made}", number])
    elif kind == "status":
        mark_issue_status(db, get_issue(db, number), "sent", NOW + made * DAY)
    elif kind == "delete":
        with db.conn:
            db.execute("DELETE FROM issues WHERE number = ?", [number])


def check_sequence(ops: list[tuple[str, int]], limit: int, settings: Settings, root: Path) -> None:
    settings = dataclasses.replace(settings, feed_limit=limit)
    db = memory_db()
    weekly_issues(db, settings, 3)
    out = root / "site"
    write_issue_archive(db, settings, out)
    for made, (kind, n) in enumerate(ops):
        apply(db, settings, kind, n, made)
        write_issue_archive(db, settings, out)
        fresh = root / f"fresh-{made}"
        write_issue_archive(db, settings, fresh)
        assert tree(out) == tree(fresh), (made, kind, n)
        shutil.rmtree(fresh)


@hsettings(max_examples=25, deadline=None, derandomize=True)
@given(
    ops=st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 20)), min_size=1, max_size=8),
    limit=st.integers(1, 3),
)
def test_incremental_archives_equal_full_ones_after_any_sequence_of_changes(
    ops: list[tuple[str, int]], limit: int
) -> None:
    from policyfeed.config import load_settings

    # A public address: no issue is made on the loopback default (#15).
    public = {"POLICYFEED_BASE_URL": "https://policy.example.org/"}
    settings = load_settings(None, environ=public, cwd=Path.cwd())
    root = Path(tempfile.mkdtemp(prefix="archive-"))
    try:
        with mock.patch("os.fsync"):
            check_sequence(ops, limit, settings, root)
    finally:
        shutil.rmtree(root)


def test_a_long_random_history_keeps_incremental_and_full_archives_equal(
    settings: Settings, tmp_path: Path, no_fsync: None
) -> None:
    rng = random.Random(7)
    ops = [(rng.choice(KINDS), rng.randint(0, 20)) for _ in range(30)]
    check_sequence(ops, 2, settings, tmp_path)
    assert (tmp_path / "site" / "issues" / "index.html").exists()


# --- drafts and discarded issues are not archived ------------------------------------------


def test_a_draft_has_no_page_nor_once_approved_until_its_delivery_begins(
    small, tmp_path: Path
) -> None:
    from policyfeed.digest.editing import approve_issue
    from policyfeed.digest.issues import create_issue, get_issue, mark_issue_status

    db, settings = small
    out = tmp_path / "site"
    build_site(db, settings, out, NOW)
    add_post(db, settings, "fresh-news", title="Fresh news", date=NOW - DAY)
    create_issue(db, settings, period="week-5", now=NOW)

    drafted = build_site(db, settings, out, NOW)

    assert not (out / "issues" / "6").exists()
    assert issue_files(drafted.written, out) == []
    assert "Issue 6" not in (out / "issues" / "5" / "index.html").read_text()
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh-draft")

    approve_issue(db, settings, 6, now=NOW)
    approved = build_site(db, settings, out, NOW)  # the check may still refuse it

    assert not (out / "issues" / "6").exists()
    assert issue_files(approved.written, out) == []
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh-approved")

    mark_issue_status(db, get_issue(db, 6), "sending", NOW)
    sending = build_site(db, settings, out, NOW)

    assert article_titles(out / "issues" / "6" / "index.html") == ["Fresh news"]
    assert "Issue 6" in (out / "issues" / "5" / "index.html").read_text()
    assert "issues/6/index.html" in issue_files(sending.written, out)
    assert tree(out) == fresh_tree(db, settings, tmp_path / "fresh-sending")


def test_discarding_an_approved_issue_leaves_the_archive_without_it(small, tmp_path) -> None:
    from policyfeed.digest.editing import approve_issue, discard_issue
    from policyfeed.digest.issues import create_issue, list_issues

    db, settings = small
    out = tmp_path / "site"
    add_post(db, settings, "fresh-news", title="Fresh news", date=NOW - DAY)
    create_issue(db, settings, period="week-5", now=NOW)
    approve_issue(db, settings, 6, now=NOW)
    build_site(db, settings, out, NOW)
    assert not (out / "issues" / "6").exists()
    before = tree(out)

    discard_issue(db, 6, now=NOW)
    result = build_site(db, settings, out, NOW)

    assert not (out / "issues" / "6").exists()
    assert issue_files(result.written, out) == [] and issue_files(result.removed, out) == []
    assert "Issue 6" not in (out / "issues" / "5" / "index.html").read_text()
    index = (out / "issues" / "index.html").read_text()
    assert "Fresh news" not in index and "/issues/6/" not in index and 'href="6/"' not in index
    assert list_issues(db)[0].status == "discarded"
    assert tree(out) == before == fresh_tree(db, settings, tmp_path / "fresh")


def test_editing_a_draft_rewrites_no_archive_file(small, tmp_path: Path) -> None:
    from policyfeed.digest.editing import edit_issue
    from policyfeed.digest.issues import create_issue

    db, settings = small
    out = tmp_path / "site"
    add_post(db, settings, "fresh-news", title="Fresh news", date=NOW - DAY)
    create_issue(db, settings, period="week-5", now=NOW)
    build_site(db, settings, out, NOW)

    edit_issue(db, settings, 6, now=NOW, note="A new note", subject="Mine")
    result = build_site(db, settings, out, NOW)

    assert issue_files(result.written, out) == [] and result.removed == []
