"""Redirect pages at the old slugs of renamed posts.

A post's page is public from its first publication, and sent digests, feed readers and other
sites link to it for good. When its slug changes, the build keeps a small page at every old
``posts/<old>/`` that sends browsers on (``<meta http-equiv="refresh">``, relative, so it works
on any host and in a preview) and tells search engines where the post is now
(``<link rel="canonical">``, absolute). The app's static server (:mod:`policyfeed.web.static`)
answers those paths with a real ``301`` and a ``Link: <…>; rel="canonical"`` header instead.

Redirect pages are no posts: no feed, index, topic or archive page lists them.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from policyfeed.config import Settings

#: The first bytes of every redirect page, naming where it points (relative to the site root).
_HEAD = "<!DOCTYPE html>\n<!-- moved: {target} -->\n"
_MOVED = re.compile(rb"\A<!DOCTYPE html>\n<!-- moved: (posts/[a-z0-9-]+/) -->\n")
_CANONICAL = re.compile(rb'<link rel="canonical" href="([^"]+)">')


def redirect_path(old_slug: str) -> str:
    return f"posts/{old_slug}/index.html"


def redirect_page(settings: Settings, new_slug: str) -> str:
    """The page left at an old slug of the post now at ``posts/<new_slug>/``, in the site's
    language (its catalog, as the templates use it)."""
    from policyfeed.model import N_
    from policyfeed.templating import text_direction, translations

    words = translations(settings.language, settings.templates_dir).gettext
    target = f"posts/{new_slug}/"
    canonical = html.escape(settings.absolute(target))
    relative = f"../{new_slug}/"
    title = html.escape(" ".join(settings.title.split()) or words(N_("This site")))
    language = html.escape(settings.language or "en")
    sentence = html.escape(words(N_("This post has moved:")))
    link = html.escape(words(N_("read it at its new address")))
    moved = html.escape(words(N_("Moved")))
    return (
        _HEAD.format(target=target)
        + f'<html lang="{language}" dir="{text_direction(settings.language or "en")}">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="robots" content="noindex">\n'
        f'<link rel="canonical" href="{canonical}">\n'
        f'<meta http-equiv="refresh" content="0; url={relative}">\n'
        f"<title>{moved} – {title}</title>\n"
        "</head>\n<body>\n"
        f'<p>{sentence} <a href="{relative}">{link}</a> (<bdi>{canonical}</bdi>).</p>\n'
        "</body>\n</html>\n"
    )


def is_redirect_file(path: Path) -> bool:
    """Whether the file at ``path`` is a redirect page (only its first line is read)."""
    try:
        with path.open("rb") as file:
            head = file.read(len(_HEAD) + 120)
    except OSError:
        return False
    return _MOVED.match(head) is not None


def read_redirect(data: bytes) -> tuple[str, str] | None:
    """(target relative to the site root, canonical URL) of a redirect page; None for any
    other file."""
    moved = _MOVED.match(data)
    if moved is None:
        return None
    canonical = _CANONICAL.search(data, moved.end(), moved.end() + 1000)
    if canonical is None:
        return None
    return moved.group(1).decode("ascii"), html.unescape(canonical.group(1).decode("utf-8"))
