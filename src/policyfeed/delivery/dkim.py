"""DKIM signatures (RFC 6376) on every message, made with dkimpy after personalisation.

``[dkim]`` names the signing domain (``d=``, the From domain or a parent of it, so that DMARC
aligns), the selector (``s=``) and the key file; the key itself may come from the environment
(POLICYFEED_DKIM_PRIVATE_KEY, PEM text) and never from the config file. The key is loaded and
tried once, before anything is sent: a signature it makes must verify against its own public
key, so a broken key stops the run instead of sending mail that fails DKIM.

Each recipient's message is signed on its own (its To, Message-ID, unsubscribe links and body
differ), with relaxed/relaxed canonicalisation (robust to relays that refold headers) over the
headers that matter to receivers and to one-click unsubscribe (RFC 8058 asks for
List-Unsubscribe and List-Unsubscribe-Post to be signed). From is signed twice, so that nobody
can add a second From below the signature. RSA with SHA-256; keys of 1024 bits at least
(RFC 8301), 2048 by default.
"""

from __future__ import annotations

import base64
import logging
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from policyfeed.errors import ConfigError

if TYPE_CHECKING:
    from policyfeed.config import Settings

log = logging.getLogger(__name__)

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"from",  # over-signed: a second From added later breaks the signature
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)
CANONICALIZE = (b"relaxed", b"relaxed")
MIN_BITS = 1024
DEFAULT_BITS = 2048

_PROBE = (
    b"From: probe@{domain}\r\nTo: probe@{domain}\r\nSubject: probe\r\n"
    b"Date: Mon, 30 Jul 2012 08:00:00 +0000\r\nMessage-ID: <probe@{domain}>\r\n"
    b"List-Unsubscribe: <https://{domain}/unsubscribe>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nprobe\r\n"
)


def read_key(private_pem: bytes) -> tuple[bytes, str, int]:
    """An RSA private key (PEM, PKCS#1 or PKCS#8, any line ends) as the PKCS#1 PEM dkimpy
    reads, its ``p=`` value (SubjectPublicKeyInfo, base64) and its size in bits."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:120]
        raise ConfigError(f"not an unencrypted PEM private key ({reason})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("the DKIM key must be an RSA key (rsa-sha256)")
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return pkcs1, base64.b64encode(der).decode("ascii"), key.key_size


def txt_value(public_b64: str) -> str:
    """The DNS TXT record's text for a public key."""
    return f"v=DKIM1; k=rsa; p={public_b64}"


def zone_record(selector: str, domain: str, public_b64: str) -> str:
    """A zone-file line to publish: the TXT text split into strings of at most 255 characters
    (one DNS character-string each), which resolvers join back."""
    chunks = ["v=DKIM1; k=rsa; ", *textwrap.wrap(f"p={public_b64}", 250)]
    strings = "\n    ".join(f'"{chunk}"' for chunk in chunks)
    return f"{selector}._domainkey.{domain}. 3600 IN TXT (\n    {strings} )"


class DkimSigner:
    """Signs messages for one domain and selector with one key."""

    def __init__(self, domain: str, selector: str, private_pem: bytes) -> None:
        self.domain = domain.rstrip(".").lower()
        self.selector = selector
        self._key, self.public_b64, self.bits = read_key(private_pem)
        if self.bits < MIN_BITS:
            raise ConfigError(
                f"the DKIM key has {self.bits} bits; receivers ignore keys under {MIN_BITS} "
                f"(RFC 8301): make a new one with `policyfeed dkim keygen`"
            )
        self._check()

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header on top."""
        import dkim

        signature = dkim.sign(
            message,
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self._key,
            canonicalize=CANONICALIZE,
            include_headers=list(SIGNED_HEADERS),
        )
        return bytes(signature) + message

    def verify(self, message: bytes) -> bool:
        """Whether the message's first signature verifies against this key (no DNS)."""
        import dkim

        record = txt_value(self.public_b64).encode("ascii")
        name = f"{self.dns_name}.".encode("ascii")

        def lookup(query: bytes, timeout: int = 5) -> bytes | None:
            return record if query.rstrip(b".") == name.rstrip(b".") else None

        return bool(dkim.verify(message, dnsfunc=lookup))

    def _check(self) -> None:
        probe = _PROBE.replace(b"{domain}", self.domain.encode("ascii"))
        try:
            ok = self.verify(self.sign(probe))
        except Exception as exc:  # dkimpy raises its own errors for a key it cannot use
            raise ConfigError(f"the DKIM key cannot sign: {exc}") from None
        if not ok:
            raise ConfigError("a signature made with the DKIM key does not verify against it")


def load_private_key(settings: Settings) -> bytes:
    """The key: POLICYFEED_DKIM_PRIVATE_KEY if set, else the file ``dkim.key_file``."""
    if settings.dkim_private_key:
        return settings.dkim_private_key.encode("utf-8")
    path = settings.dkim_key_file
    if path is None:
        raise ConfigError("dkim.key_file is not set and POLICYFEED_DKIM_PRIVATE_KEY is empty")
    try:
        data = Path(path).read_bytes()
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ConfigError(
            f"dkim.key_file {path}: no such file (`policyfeed dkim keygen` makes one)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"dkim.key_file {path}: cannot read it ({exc.strerror})") from None
    if mode & 0o077:
        log.warning("dkim.key_file %s can be read by other users; chmod 600 it", path)
    if not data.strip():
        raise ConfigError(f"dkim.key_file {path}: the file is empty")
    return data


def make_signer(settings: Settings) -> DkimSigner | None:
    """The signer ``[dkim]`` configures, or None when DKIM is off (no dkim.domain)."""
    if not settings.dkim_enabled:
        return None
    source = (
        "POLICYFEED_DKIM_PRIVATE_KEY" if settings.dkim_private_key else str(settings.dkim_key_file)
    )
    pem = load_private_key(settings)
    try:
        return DkimSigner(settings.dkim_domain, settings.dkim_selector, pem)
    except ConfigError as exc:
        raise ConfigError(f"DKIM key from {source}: {exc}") from None


def generate_key(bits: int = DEFAULT_BITS) -> bytes:
    """A new RSA private key as PEM (PKCS#1 ``RSA PRIVATE KEY``, unencrypted), the form
    OpenDKIM, rspamd and dkimpy all read."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if bits < MIN_BITS:
        raise ConfigError(f"a DKIM key needs at least {MIN_BITS} bits, not {bits}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
