"""A build that renders only what changed gives exactly the site a full build gives.

Random edits (new, edited, retitled, re-topiced, renamed, renamed back to an old slug, backdated,
scheduled, unpublished, republished and deleted posts, and a clock going forward and back) are
applied one by one; after each, the incremental build must equal a full build from scratch, byte
for byte (the redirect pages at renamed posts' old slugs included).
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
import sqlite_utils
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from policyfeed.config import Settings
from policyfeed.site.build import build_site
from policyfeed.site.redirects import read_redirect
from policyfeed.store import memory_db
from policyfeed.store import posts as post_store
from policyfeed.store import site as site_store
from site_support import NOW, day, save, tree, with_limit

TOPICS = ["IETF", "ITU", "Trade"]
KINDS = ["add"] * 5 + [
    "edit", "topics", "rename", "rename", "restore", "redate", "unpublish", "republish",
    "delete", "clock",
]  # fmt: skip
OPS = st.tuples(
    st.sampled_from(KINDS),
    st.integers(-12, 40),
    st.sets(st.sampled_from(TOPICS), max_size=2),
)


def normalise(op: tuple[str, int, set[str]]) -> tuple[str, int, object]:
    """An op with its argument in range: a day for add/redate, an offset for the clock."""
    kind, number, topics = op
    if kind in ("add", "redate"):
        number = max(1, number)
    if kind == "add":
        return kind, number, topics
    if kind == "topics":
        return kind, abs(number), topics
    if kind == "redate":
        return kind, abs(number), abs(number) * 7 % 40 + 1
    if kind == "edit":
        return kind, abs(number), f"v{number}"
    if kind in ("rename", "restore"):
        return kind, abs(number), abs(number) % 7
    if kind == "clock":
        return kind, max(-12, min(12, number)), None
    return kind, abs(number), None


class Site:
    """A database and an output folder that is only ever built incrementally."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.db: sqlite_utils.Database = memory_db()
        self.settings = settings
        self.folder = folder
        self.now = NOW
        self.made = 0
        self.redirects_seen = 0  # redirect pages found after the builds, all counted

    def slugs(self) -> list[str]:
        return [p.slug for p in post_store.list_posts(self.db)]

    def pick(self, index: int) -> str | None:
        slugs = sorted(self.slugs())
        return slugs[index % len(slugs)] if slugs else None

    def apply(self, op: tuple[str, int, object]) -> None:
        kind, number, extra = op
        if kind == "add":
            self.made += 1
            # Days 31-40 are after NOW (30 July): scheduled posts.
            save(self.db, self.settings, f"p{self.made}", date=day(number), topics=sorted(extra))  # type: ignore[arg-type]
            return
        if kind == "clock":
            self.now = NOW + timedelta(days=number)
            return
        slug = self.pick(number)
        if slug is None:
            return
        post = post_store.get_post(self.db, slug)
        keep = {"date": post.published_at, "topics": [t.name for t in post.topics],
                "title": post.title, "status": post.status, "body": post.body_html}  # fmt: skip
        if kind == "edit":
            keep["body"] = f"<p>{extra}</p>"
            keep["title"] = f"{post.title} {extra}"
        elif kind == "topics":
            keep["topics"] = sorted(extra)  # type: ignore[arg-type]
        elif kind == "redate":
            keep["date"] = day(int(extra))  # type: ignore[call-overload]
        elif kind in ("rename", "restore"):
            new = f"r{extra}"
            if kind == "restore":  # back to one of its old slugs, when another post has none
                olds = sorted(set(site_store.old_slugs(self.db, post.id or 0)) - set(self.slugs()))
                if not olds:
                    return
                new = olds[int(extra) % len(olds)]  # type: ignore[call-overload]
            if new in self.slugs():
                return
            save(self.db, self.settings, new, post_id=post.id, now=self.now, **keep)
            return
        elif kind == "unpublish":
            post_store.set_status(self.db, slug, "draft", now=self.now, domain=self.settings.domain)
            return
        elif kind == "republish":
            post_store.set_status(
                self.db, slug, "published", now=self.now, domain=self.settings.domain
            )
            return
        elif kind == "delete":
            post_store.delete_post(self.db, slug)
            return
        save(self.db, self.settings, slug, post_id=post.id, now=self.now, **keep)

    def build(self) -> None:
        build_site(self.db, self.settings, self.folder, self.now)


def check_after_each(site: Site, ops: list[tuple[str, int, object]], root: Path) -> None:
    # Durability is output.py's business, not this test's: skip fsync to keep the test quick.
    with mock.patch("os.fsync"):
        _check_after_each(site, ops, root)


def _check_after_each(site: Site, ops: list[tuple[str, int, object]], root: Path) -> None:
    site.build()
    for number, op in enumerate(ops):
        site.apply(op)
        site.build()
        fresh = root / f"fresh-{number}"
        build_site(site.db, site.settings, fresh, site.now)
        assert tree(site.folder) == tree(fresh), (number, op)
        shutil.rmtree(fresh)
        pages = (p.read_bytes() for p in (site.folder / "posts").glob("*/index.html"))
        site.redirects_seen += sum(1 for page in pages if read_redirect(page))


@hsettings(max_examples=30, deadline=None, derandomize=True)
@given(ops=st.lists(OPS, min_size=1, max_size=12), limit=st.integers(1, 3))
def test_incremental_builds_equal_full_builds_after_any_sequence_of_changes(
    ops: list[tuple[str, int, set[str]]], limit: int
) -> None:
    from policyfeed.config import load_settings

    settings = with_limit(load_settings(None, environ={}, cwd=Path.cwd()), limit)
    root = Path(tempfile.mkdtemp(prefix="incremental-"))
    try:
        check_after_each(Site(settings, root / "site"), [normalise(op) for op in ops], root)
    finally:
        shutil.rmtree(root)


@pytest.mark.parametrize("limit", [2, 5])
def test_a_long_random_history_keeps_incremental_and_full_builds_equal(
    settings: Settings, tmp_path: Path, limit: int
) -> None:
    import random

    rng = random.Random(limit)
    ops = [
        normalise(
            (rng.choice(KINDS), rng.randint(-12, 40), set(rng.sample(TOPICS, rng.randint(0, 2))))
        )
        for _ in range(50)
    ]
    site = Site(with_limit(settings, limit), tmp_path / "site")
    check_after_each(site, ops, tmp_path)
    assert len(list((tmp_path / "site" / "posts").glob("*"))) > 0
    assert site.redirects_seen > 0  # renamed posts left redirect pages on the way
