"""The digest as MIME messages: built once per variant, personalised per recipient by bytes.

A variant of an issue (its subject, HTML with CSS inlined, plain text) becomes one
:class:`MessageTemplate`: the finished message bytes cut at the places that differ per recipient
(To, Message-ID, the unsubscribe links). Personalising is then a ``b"".join`` of those literal
pieces with each recipient's values, already encoded for where they go: nothing is rendered,
inlined or encoded again per recipient.

Quoted-printable soft line breaks could split a substitution token, so the bodies are encoded
here, piece by piece between the tokens: each token starts a line of its own (after a soft line
break) and is followed by one, and each recipient's value is quoted-printable encoded on its own
into lines of at most 76 characters. Every line of a message stays within RFC 2045's 76 characters
in the bodies and well under SMTP's 998 octets in the headers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.charset import BASE64, Charset
from email.header import Header
from email.utils import format_datetime, formataddr
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from policyfeed.audience.tokens import make_preferences_token, make_token
from policyfeed.config import parse_address_list
from policyfeed.errors import ConfigError

if TYPE_CHECKING:
    from policyfeed.config import Settings

CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
QP_LINE = 76

# Fields a body placeholder may stand for, and the per-recipient header fields.
BODY_FIELDS = ("unsubscribe_url", "preferences_url", "email", "name")
_HEADER, _TEXT, _HTML = "header", "text", "html"
# Printable ASCII but "=", plus space and tab: quoted-printable keeps them as they are.
_QP_SAFE_BYTES = bytes(range(33, 127)).replace(b"=", b"") + b" \t"
_QP_SAFE = frozenset(_QP_SAFE_BYTES)
_QP_SAFE_OR_EQUALS = _QP_SAFE_BYTES + b"="
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
# UTF-8 encoded words in base64, as the Subject's are (the email package would pick either).
_UTF8_BASE64 = Charset("utf-8")
_UTF8_BASE64.header_encoding = BASE64


class Digest(Protocol):
    """One rendered variant of an issue (render.RenderedDigest has this shape)."""

    @property
    def subject(self) -> str: ...

    @property
    def html(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str
    name: str
    message_id: str  # without angle brackets


def make_message_id(
    settings: Settings, *, period: str, issue_number: int, subscriber_id: int, made: datetime
) -> str:
    """``issue-N.sub-ID.HASH@domain``: the same for a given (issue, subscriber) on every run; the
    hash keeps ids of different lists or periods on one domain apart, and, with the time the
    issue was made (``made``), the issue N of a database made again apart from the old one's
    (mail programs drop a message whose id they have seen)."""
    return message_ids(settings, period=period, issue_number=issue_number, made=made)(subscriber_id)


def message_ids(
    settings: Settings, *, period: str, issue_number: int, made: datetime
) -> Callable[[int], str]:
    """:func:`make_message_id` for every member of one issue: subscriber id → Message-ID, with
    the settings read and the hash of what all the ids share made once."""
    shared = hashlib.sha256(f"{settings.list_identifier}\0{period}\0{issue_number}\0".encode())
    stamp = made.isoformat(timespec="microseconds")
    domain = settings.domain

    def one(subscriber_id: int) -> str:
        seed = shared.copy()
        seed.update(f"{subscriber_id}\0{stamp}".encode())
        return f"issue-{issue_number}.sub-{subscriber_id}.{seed.hexdigest()[:12]}@{domain}"

    return one


# --- encoding helpers ------------------------------------------------------------------------


def _fold(name: str, value: str) -> bytes:
    """An unstructured header (Subject), folded at spaces, as RFC 2047 encoded words when not
    plain ASCII or when it holds ``=?`` (a client would decode text shaped like an encoded word,
    so an author could make the Subject show anything); ends in CRLF. (The email package's
    folder may start the value on a line of its own, which some programs show as a leading
    space.)"""
    words = " ".join(value.split()).split(" ")
    if _needs_encoding(value) or any(len(word) > 900 for word in words):
        return f"{name}: {_encoded_words(' '.join(words))}\r\n".encode("ascii")
    lines = [f"{name}:"]
    for word in words:
        if len(lines[-1]) + 1 + len(word) > 78 and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + word
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def subject_header(subject: str) -> bytes:
    """The whole ``Subject:`` line (folded, encoded as needed), ending in CRLF."""
    return _fold("Subject", subject)


def _needs_encoding(text: str) -> bool:
    """Text a header cannot carry as it is: anything but printable ASCII, or ``=?``, which
    mail clients read as the start of an RFC 2047 encoded word even where the RFC says not to
    (inside quotes, in unstructured text that is not one)."""
    return not _PRINTABLE_ASCII.fullmatch(text) or "=?" in text


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded words of at most 75 characters, folded between them."""
    data = text.encode("utf-8")
    words, start = [], 0
    while start < len(data):
        end = min(start + 45, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # never split a character
            end -= 1
        words.append("=?utf-8?b?" + base64.b64encode(data[start:end]).decode("ascii") + "?=")
        start = end
    return "\r\n ".join(words)


def format_address(name: str, address: str, header: str = "To") -> bytes:
    """``Name <address>`` for From, To, Reply-To and List-Id (``address`` is then the list id),
    or the bare address without a name; ``header`` is the field it goes in (for folding).

    The email package writes the name: :func:`email.utils.formataddr` quotes printable ASCII
    (specials, backslashes and quotes escaped), and :class:`email.header.Header` encodes
    anything else, including ASCII that holds ``=?``, as encoded words within 76 characters, so
    every client shows the name as given. (Its ``Address`` class cannot be used alone: it turns
    such a name back into the text it encodes.)"""
    if not name:
        return address.encode("ascii")
    if _needs_encoding(name):
        encoded = Header(name, _UTF8_BASE64, header_name=header).encode(linesep="\r\n")
        return f"{encoded}\r\n <{address}>".encode("ascii")
    return formataddr((name, address)).encode("ascii")


def qp_value(text: str) -> bytes:
    """A short value quoted-printable encoded as whole lines (soft-broken, no final break).

    The value is always followed by a soft line break in the template, so spaces at its end
    are safe as they are.
    """
    data = text.encode("utf-8")
    if data.translate(None, _QP_SAFE_OR_EQUALS):  # beyond printable ASCII: byte by byte
        encoded = b"".join(bytes((b,)) if b in _QP_SAFE else b"=%02X" % b for b in data)
    else:
        encoded = data.replace(b"=", b"=3D")
    width = QP_LINE - 1  # room for the "=" of a soft line break
    if len(encoded) <= width:
        return encoded
    lines, start = [], 0
    while len(encoded) - start > width:
        end = start + width
        cut = encoded.rfind(b"=", end - 2, end)  # never split an "=XX" escape
        end = cut if cut > start else end
        lines.append(encoded[start:end])
        start = end
    lines.append(encoded[start:])
    return SOFT_BREAK.join(lines)


def _qp_text(text: str) -> bytes:
    """Quoted-printable for a body piece, CRLF line ends."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", CRLF)


def _with_soft_break(encoded: bytes) -> bytes:
    """Quoted-printable text ended by a soft line break, so what follows starts a line; a last
    line too long to take the "=" is cut first (never inside an "=XX" escape)."""
    if not encoded or encoded.endswith(CRLF):
        return encoded
    start = encoded.rfind(CRLF) + 2 if CRLF in encoded else 0
    head, last = encoded[:start], encoded[start:]
    if len(last) > QP_LINE - 1:
        cut = QP_LINE - 1
        escape = last.rfind(b"=", cut - 2, cut)
        cut = escape if escape > 0 else cut
        last = last[:cut] + SOFT_BREAK + last[cut:]
    return head + last + SOFT_BREAK


# --- the template ------------------------------------------------------------------------------


@dataclass
class MessageTemplate:
    """A finished message cut at its per-recipient slots; see :meth:`personalise`."""

    pieces: tuple[bytes, ...]  # literal bytes; one more than slots
    slots: tuple[tuple[str, str], ...]  # (field, context)
    boundary: str

    def personalise(self, values: Mapping[tuple[str, str], bytes]) -> bytes:
        """The message for one recipient: the pieces joined with that recipient's values."""
        pieces = self.pieces
        out = [pieces[0]]
        for index, slot in enumerate(self.slots, 1):
            out.append(values[slot])
            out.append(pieces[index])
        return b"".join(out)

    @cached_property
    def distinct_slots(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.slots)


class _Builder:
    def __init__(self) -> None:
        self.pieces: list[bytes] = [b""]
        self.slots: list[tuple[str, str]] = []

    def literal(self, data: bytes) -> None:
        self.pieces[-1] += data

    def slot(self, field: str, context: str) -> None:
        self.slots.append((field, context))
        self.pieces.append(b"")

    def body(self, text: str, placeholders: Mapping[str, str], context: str) -> None:
        """A quoted-printable body with each placeholder turned into a slot on a line of its own."""
        if not placeholders:
            self.literal(_qp_text(text))
            return
        pattern = re.compile(
            "|".join(re.escape(p) for p in sorted(placeholders.values(), key=len, reverse=True))
        )
        field_of = {placeholder: field for field, placeholder in placeholders.items()}
        position = 0
        for match in pattern.finditer(text):
            self.literal(_with_soft_break(_qp_text(text[position : match.start()])))
            self.slot(field_of[match.group(0)], context)
            self.literal(SOFT_BREAK)
            position = match.end()
        self.literal(_qp_text(text[position:]))


def build_template(
    digest: Digest,
    settings: Settings,
    *,
    issue_number: int,
    variant: str,
    now: datetime,
    placeholders: Mapping[str, str] | None = None,
) -> MessageTemplate:
    """Build the message of one variant once. ``placeholders`` maps body fields
    (``unsubscribe_url``, ``email``, ``name``) to the text that stands for them in
    ``digest.html`` and ``digest.text``."""
    placeholders = dict(placeholders or {})
    unknown = set(placeholders) - set(BODY_FIELDS)
    if unknown:
        raise ValueError(f"unknown placeholder field(s): {', '.join(sorted(unknown))}")
    if not settings.unsubscribe_endpoint.isascii():
        raise ConfigError(
            f"digest.unsubscribe_url must be ASCII: {settings.unsubscribe_endpoint!r}"
        )
    seed = f"{settings.list_identifier}\0{issue_number}\0{variant}\0{digest.subject}"
    # "=_" never occurs in quoted-printable text, so the boundary cannot collide with a body.
    boundary = "=_pf_" + hashlib.sha256(seed.encode()).hexdigest()[:28]
    list_name = settings.mail_from_name or settings.title

    b = _Builder()
    b.literal(b"From: " + format_address(settings.mail_from_name, settings.sender, "From") + CRLF)
    b.literal(b"To: ")
    b.slot("to", _HEADER)
    b.literal(CRLF)
    if settings.reply_to:
        reply_to = b",\r\n ".join(
            format_address(name, address, "Reply-To")
            for name, address in parse_address_list(settings.reply_to, "digest.reply_to")
        )
        b.literal(b"Reply-To: " + reply_to + CRLF)
    b.literal(subject_header(digest.subject))
    b.literal(f"Date: {format_datetime(now.astimezone(settings.tz))}".encode("ascii") + CRLF)
    b.literal(b"Message-ID: <")
    b.slot("message_id", _HEADER)
    b.literal(b">" + CRLF)
    list_id = f"<{settings.list_identifier}>".encode("ascii")
    if list_name:
        list_id = format_address(list_name, settings.list_identifier, "List-Id")
    b.literal(b"List-Id: " + list_id + CRLF)
    b.literal(b"List-Unsubscribe: <")
    b.slot("unsubscribe_url", _HEADER)
    b.literal(b">," + CRLF + b" <")
    b.slot("unsubscribe_mailto", _HEADER)
    b.literal(b">" + CRLF)
    b.literal(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF)
    b.literal(b"MIME-Version: 1.0" + CRLF)
    b.literal(f'Content-Type: multipart/alternative; boundary="{boundary}"'.encode() + CRLF)
    b.literal(CRLF)
    for subtype, text, context in (("plain", digest.text, _TEXT), ("html", digest.html, _HTML)):
        b.literal(f"--{boundary}".encode() + CRLF)
        b.literal(f'Content-Type: text/{subtype}; charset="utf-8"'.encode() + CRLF)
        b.literal(b"Content-Transfer-Encoding: quoted-printable" + CRLF + CRLF)
        b.body(text, placeholders, context)
        # The CRLF before a boundary belongs to the boundary: always one more, so a body that
        # ends with a line break keeps it.
        b.literal(CRLF)
    b.literal(f"--{boundary}--".encode() + CRLF)
    return MessageTemplate(tuple(b.pieces), tuple(b.slots), boundary)


# --- personalisation ---------------------------------------------------------------------------


class Personaliser:
    """Turns a template into each recipient's message: their token, links and headers."""

    def __init__(self, settings: Settings, secret: str) -> None:
        from policyfeed.audience.subscribers import preferences_url, unsubscribe_url

        self._secret = secret
        self._preferences_url = preferences_url
        self._list_id = settings.list_identifier
        self._settings = settings
        self._unsubscribe_url = unsubscribe_url
        self._mailto = settings.editor_email or settings.sender

    def values(
        self, recipient: Recipient, slots: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], bytes]:
        """The encoded value of each slot for one recipient."""
        # Each token and link is made once per recipient, however many slots show it (the
        # links are in a header and in both bodies): an HMAC and a URL each.
        token = ""
        texts: dict[str, str] = {"email": recipient.email, "name": recipient.name}
        values: dict[tuple[str, str], bytes] = {}
        for slot in slots:
            field, context = slot
            if field == "to":
                values[slot] = format_address(recipient.name, recipient.email)
            elif field == "message_id":
                values[slot] = recipient.message_id.encode("ascii")
            else:
                if field in ("unsubscribe_mailto", "unsubscribe_url") and not token:
                    token = make_token(self._secret, recipient.subscriber_id, self._list_id)
                if field == "unsubscribe_mailto":
                    values[slot] = f"mailto:{self._mailto}?subject=unsubscribe%20{token}".encode()
                    continue
                text = texts.get(field)
                if text is None:
                    if field == "preferences_url":
                        text = self._preferences_url(
                            self._settings,
                            make_preferences_token(
                                self._secret, recipient.subscriber_id, self._list_id
                            ),
                        )
                    elif field == "unsubscribe_url":
                        text = self._unsubscribe_url(self._settings, token)
                    else:
                        raise KeyError(field)
                    texts[field] = text
                if context == _HEADER:
                    values[slot] = text.encode("ascii")
                else:
                    values[slot] = qp_value(html.escape(text) if context == _HTML else text)
        return values

    def message(self, template: MessageTemplate, recipient: Recipient) -> bytes:
        """The finished message for one recipient."""
        return template.personalise(self.values(recipient, template.distinct_slots))
