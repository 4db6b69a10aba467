"""The subscribe box that every page of the site and of the issue archive carries: a form that
posts to the web app's ``/subscribe``, with the chapters to choose from and the text a reader
agrees to.

With ``site.app_url`` (the app on another host) the form's action is that absolute URL. Without
it the app answers on the site's own host, and the action is the path from the host's root
(``/subscribe``, or ``/blog/subscribe`` for a site under ``/blog/``), like every link between the
pages: it then works from ``policyfeed serve`` on a laptop as well as on the public site."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlite_utils import Database

from policyfeed.store.subscribers import list_chapters

if TYPE_CHECKING:
    from policyfeed.config import Settings


def signup_box(db: Database, settings: Settings) -> dict[str, Any] | None:
    """What the box shows, or None when the sign-up is off (``signup.enabled = false``)."""
    if not settings.signup_enabled:
        return None
    return {
        "action": _endpoint(settings, "subscribe"),
        "link_page": _endpoint(settings, "preferences/link"),
        "archive_url": _site_path(settings, "issues/"),
        "chapters": [{"slug": c.slug, "name": c.name} for c in list_chapters(db)],
        "consent_text": settings.consent_text,
    }


def _endpoint(settings: Settings, path: str) -> str:
    if settings.app_url:
        return settings.app_endpoint(path)
    return _site_path(settings, path)


def _site_path(settings: Settings, path: str) -> str:
    """``path`` in the site, from the host's root: the same on every page of the site."""
    return (urlsplit(settings.base_url).path or "/") + path


def box_fingerprint(box: dict[str, Any] | None) -> str:
    """The box as text for a build's fingerprint: a new chapter, or a changed endpoint or
    consent text, makes every page be written again."""
    return json.dumps(box, sort_keys=True, ensure_ascii=False)
