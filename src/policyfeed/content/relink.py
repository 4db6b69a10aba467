"""Stored links to the site's own pages, kept relative to the base URL.

Posts are saved with their links to the site's own pages relative to ``site.base_url``
(``./posts/x/``, see :func:`policyfeed.content.posts.site_relative_links`), and feeds, pages
and mail make them absolute against the base URL of the build. Bodies saved before that were
made absolute against the base URL of the time; :func:`adopt_base_url` converts them once, when
the settings are first known (a migration cannot know them).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from policyfeed.content.posts import site_relative_links
from policyfeed.content.urls import SITE_RELATIVE, site_relative
from policyfeed.store import posts as store

#: What ``policyfeed init`` wrote as the base URL before it asked for the real one: links
#: saved against it are the site's own, wherever the site lives now.
FORMER_INIT_BASE_URL = "http://127.0.0.1:8000/"


@dataclass(frozen=True)
class Relinked:
    base_url: str
    posts: int  # posts whose stored body or url changed


def _relative(body: str, url: str | None, slug: str, bases: list[str]) -> tuple[str, str | None]:
    for base in bases:
        body = site_relative_links(body, base)
        if url and not url.startswith(SITE_RELATIVE):
            own = site_relative(url, base)
            if own == f"{SITE_RELATIVE}posts/{slug}/":
                url = None
            elif own is not None:
                url = own
    return body, url


def adopt_base_url(db: Database, base_url: str) -> Relinked | None:
    """Make the stored links to ``base_url`` and to the base URL ``init`` once wrote relative
    to the site, when migration 19 left that to do; None when there is nothing to do. One
    transaction."""
    if not store.relink_pending(db):
        return None
    bases = [base_url]
    if base_url != FORMER_INIT_BASE_URL:
        bases.append(FORMER_INIT_BASE_URL)
    needles = [host for host in (_host(b) for b in bases) if host]
    changes = []
    for post_id, slug, body, url in store.posts_mentioning(db, needles):
        new_body, new_url = _relative(body, url, slug, bases)
        if (new_body, new_url) != (body, url):
            changes.append((post_id, new_body, new_url))
    store.relink_posts(db, changes)
    return Relinked(base_url, len(changes))


def _host(base_url: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(base_url).hostname or "").lower()
