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
