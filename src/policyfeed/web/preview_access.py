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
  missing one is answered 401 with a challenge; nothing of an issue is shown. Guessing is held
  up (:class:`Guesses`): after 10 wrong passwords from one address in 15 minutes, or 100 from
  anywhere, passwords are not looked at for the rest of the window (429, ``Retry-After``);
  this machine under loopback ``serve`` is not held up.
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
import threading
from collections import deque
from dataclasses import dataclass, field
from time import monotonic

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
    #: Too many wrong passwords: 429, passwords not looked at until ``retry_after``.
    HELD = "held"


WINDOW = 15 * 60  # seconds
PER_ADDRESS = 10  # wrong passwords from one address in a window
IN_ALL = 100  # wrong passwords from anywhere in a window


class Guesses:
    """Wrong passwords of the last ``WINDOW`` seconds, per client address and in all.

    Memory is bounded: an address is remembered only for a wrong password, and no more than
    ``IN_ALL`` of them count at once (after that every password waits)."""

    def __init__(self) -> None:
        self._all: deque[float] = deque()
        self._by_address: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # waitress answers in threads

    def _forget_old(self, now: float) -> None:
        while self._all and self._all[0] <= now - WINDOW:
            self._all.popleft()
        for address in [a for a, times in self._by_address.items() if times[-1] <= now - WINDOW]:
            del self._by_address[address]

    def held_for(self, address: str) -> int:
        """Seconds until ``address`` may try a password again; 0 when it may now."""
        with self._lock:
            return self._held_for(address, monotonic())

    def _held_for(self, address: str, now: float) -> int:
        self._forget_old(now)
        times = self._by_address.get(address)
        waits = []
        if times is not None:
            while times[0] <= now - WINDOW:
                times.popleft()
            if len(times) >= PER_ADDRESS:
                waits.append(times[-PER_ADDRESS] + WINDOW - now)
        if len(self._all) >= IN_ALL:
            waits.append(self._all[-IN_ALL] + WINDOW - now)
        return max(1, int(max(waits)) + 1) if waits else 0

    def wrong(self, address: str) -> None:
        with self._lock:
            now = monotonic()
            self._all.append(now)
            self._by_address.setdefault(address, deque()).append(now)


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
    guesses: Guesses = field(default_factory=Guesses, compare=False, repr=False)

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
        address = request.remote_addr or ""
        if self.guesses.held_for(address):
            return Decision.HELD
        given = self.password_given(request)
        if given:
            return Decision.GRANTED
        if given is False:
            log.warning("preview: a wrong password from %s", address)
            self.guesses.wrong(address)
        return Decision.CHALLENGE

    def retry_after(self, request: Request) -> int:
        """For a HELD request: seconds until its address may try again."""
        return max(1, self.guesses.held_for(request.remote_addr or ""))
