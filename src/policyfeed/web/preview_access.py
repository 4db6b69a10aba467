"""Who may open the editors' preview (:mod:`policyfeed.web.preview`).

- **This machine**, without a password, only when all of these hold: the app was made by
  ``policyfeed serve`` listening on a loopback address (``--host 127.0.0.1``, ``::1`` or
  ``localhost``, the default); no proxy is configured (``web.trusted_proxies`` is 0); the
  connection comes from a loopback address; the request names the host as a loopback one
  (``Host: 127.0.0.1:8000``, ``localhost``, ``[::1]``: a page elsewhere that rebinds its own
  name to 127.0.0.1 is not let in); and it carries no header a proxy adds (``Forwarded``,
  ``X-Forwarded-*``, ``X-Real-IP``, ``Via``…). A proxy on the same machine connects from
  127.0.0.1 too: the last three rules keep it from opening the preview to the internet, even
  when ``web.trusted_proxies`` was forgotten (``serve`` keeps waitress from dropping the
  ``X-Forwarded-*`` headers for this, see :mod:`policyfeed.web.server`). A proxy that adds no
  header at all and passes ``Host: 127.0.0.1`` cannot be told from a browser here.
- **Anyone with the password** (``POLICYFEED_PREVIEW_PASSWORD``, from the environment only):
  HTTP Basic authentication, any user name, the password compared in constant time. A wrong or
  missing one is answered 401 with a challenge; nothing of an issue is shown.
- **Nobody else**: without a password the preview does not exist for them. Its paths are
  answered as the site answers a path of no file (404), byte for byte, so nothing tells that
  there is a preview at all.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import ipaddress
import logging
from dataclasses import dataclass, field

from werkzeug.wrappers import Request

log = logging.getLogger(__name__)

#: Headers that a proxy (or a CDN) adds to what it passes on: a request with any of them did
#: not come from a person on this machine.
PROXY_HEADERS = (
    "Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Server",
    "X-Real-IP",
    "X-Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "Via",
)
REALM = "policyfeed preview"


class Decision(enum.Enum):
    GRANTED = "granted"
    #: Ask for the password (401).
    CHALLENGE = "challenge"
    #: Answer as if there were no preview (404 like any missing path).
    HIDDEN = "hidden"


def is_loopback_address(text: str) -> bool:
    """Whether ``text`` is a loopback IP address (an IPv4-mapped one included)."""
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_loopback_host(host: str) -> bool:
    """Whether a listening address or a Host header's name (port aside) is this machine's."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name in ("localhost", "localhost.") or is_loopback_address(name)


def _basic_password(header: str) -> str | None:
    """The password of an ``Authorization: Basic`` header, None when it is not one."""
    scheme, _, data = header.strip().partition(" ")
    if scheme.lower() != "basic" or not data.strip():
        return None
    try:
        decoded = base64.b64decode(data.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    _user, colon, password = decoded.partition(":")  # any user name
    return password if colon else None


@dataclass(frozen=True)
class PreviewAccess:
    """The rule for one app (see the module docstring)."""

    password: str = field(repr=False)
    #: Made by ``policyfeed serve`` listening on a loopback address.
    loopback: bool
    trusted_proxies: int

    def from_this_machine(self, request: Request) -> bool:
        if not self.loopback or self.trusted_proxies:
            return False
        # No ProxyFix without trusted proxies: REMOTE_ADDR is the socket's peer.
        if not is_loopback_address(request.environ.get("REMOTE_ADDR") or ""):
            return False
        if any(name in request.headers for name in PROXY_HEADERS):
            return False
        return is_loopback_host(request.headers.get("Host", ""))

    def password_given(self, request: Request) -> bool | None:
        """True for the right password, False for a wrong one, None when none was given."""
        header = request.headers.get("Authorization")
        if not header:
            return None
        given = _basic_password(header)
        if given is None:
            return False
        return hmac.compare_digest(
            given.encode("utf-8", "surrogatepass"), self.password.encode("utf-8")
        )

    def decide(self, request: Request) -> Decision:
        if self.from_this_machine(request):
            return Decision.GRANTED
        if not self.password:
            return Decision.HIDDEN
        given = self.password_given(request)
        if given:
            return Decision.GRANTED
        if given is False:
            log.warning("preview: a wrong password from %s", request.remote_addr)
        return Decision.CHALLENGE
