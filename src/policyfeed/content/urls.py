"""URLs on the way in and out: :func:`to_uri` makes a URI of an IRI or a sloppy URL (IDNA
host, percent-encoded path, query and fragment), once; :func:`site_url` resolves a URL from the
settings (``site.icon``, ``site.logo``) against ``base_url`` the one way every feed and page
does."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

if TYPE_CHECKING:
    from policyfeed.config import Settings

# What RFC 3986 allows unencoded in each part ("%" too: existing escapes are kept).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _encode(part: str, safe: str) -> str:
    return quote(_BARE_PERCENT.sub("%25", part), safe=safe)


def to_uri(url: str) -> str:
    """``url`` as a URI: the host in IDNA (lower case), everything else percent-encoded where
    RFC 3986 wants it. A URI stays as it is."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc
    if parts.hostname:
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            host = quote(parts.hostname, safe="")
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        userinfo = netloc.rpartition("@")[0]
        netloc = (f"{_encode(userinfo, ':%')}@" if userinfo else "") + host
        if parts.port is not None:
            netloc += f":{parts.port}"
    return urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            _encode(parts.path, _PATH_SAFE),
            _encode(parts.query, _QUERY_SAFE),
            _encode(parts.fragment, _QUERY_SAFE),
        )
    )


def site_url(settings: Settings, url: str) -> str:
    """A URL from the settings, absolute: resolved against ``base_url`` as a link on the home
    page would be (``icon.png`` under it, ``/icon.png`` at the host's root), made a URI. ""
    stays ""."""
    return to_uri(urljoin(settings.base_url, url)) if url else ""


#: How a link to one of the site's own pages is stored: relative to ``base_url``, marked by
#: this prefix (every other stored URL is absolute), so a new base URL takes effect at the
#: next build. ``urljoin(base_url, stored)`` is the absolute URL again.
SITE_RELATIVE = "./"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(scheme: str, host: str | None, port: int | None) -> tuple[str, int | None]:
    """Host and port, the scheme's default port as None (http://h/ and https://h/ match)."""
    return (host or "").lower(), None if port in (None, _DEFAULT_PORTS[scheme]) else port


def site_relative(url: str, base_url: str) -> str | None:
    """``url`` as stored when it is one of the site's own: ``./`` and the rest after
    ``base_url`` (``https://example.org/policy/posts/x/`` under ``https://example.org/policy/``
    is ``./posts/x/``); None for any other URL. http and https of the same host count as the
    site (a site moving to https keeps its own links)."""
    try:
        parts, base = urlsplit(url), urlsplit(base_url)
        if parts.scheme not in _DEFAULT_PORTS or base.scheme not in _DEFAULT_PORTS:
            return None
        if _origin(parts.scheme, parts.hostname, parts.port) != _origin(
            base.scheme, base.hostname, base.port
        ):
            return None
    except ValueError:  # a port that is no number
        return None
    if parts.username or parts.password:
        return None
    root = base.path or "/"
    path = parts.path or "/"
    if not path.startswith(root):
        return None
    rest = path[len(root) :]
    if parts.query:
        rest += "?" + parts.query
    if parts.fragment:
        rest += "#" + parts.fragment
    return SITE_RELATIVE + rest


def absolute(url: str, base_url: str) -> str:
    """A stored URL as it goes out: a site-relative one (:data:`SITE_RELATIVE`) resolved
    against ``base_url``; any other as it is."""
    if url.startswith(SITE_RELATIVE):
        return (
            base_url + url[len(SITE_RELATIVE) :]
            if base_url.endswith("/")
            else urljoin(base_url, url)
        )
    return url
