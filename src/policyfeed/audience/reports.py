"""Reading what the mail system sends back: delivery status notifications, feedback reports,
plain-text bounces and auto-replies, as one :class:`Report`.

Every message read here is hostile until proved otherwise: it is parsed leniently (the email
package's ``compat32`` policy never raises on a broken header), every part's text is capped, and
nothing in it is trusted to name a member: :mod:`policyfeed.audience.bounces` does that with
signed tokens only.

- ``multipart/report; report-type=delivery-status`` (RFC 3464, RFC 6522): the machine-readable
  ``message/delivery-status`` part gives each recipient's Action, Status and Diagnostic-Code.
- ``multipart/report; report-type=feedback-report`` (RFC 5965, ARF): a complaint, with its
  Feedback-Type (abuse, fraud, virus, other; not-spam and auth-failure are not complaints).
- A bounce without the report format (Yahoo's and qmail's "failure notice", Exim's plain text):
  recognised by its sender (MAILER-DAEMON, postmaster), ``X-Failed-Recipients`` or its subject,
  and read for the SMTP answer it quotes.
- An automatic reply (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``, "Out of office"…): ignored.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.policy
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header

#: A larger message is not read (no report of ours is near it).
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
#: How much decoded text of one part, and of a whole message, is looked at.
MAX_PART_TEXT = 256 * 1024
MAX_TEXT = 2 * 1024 * 1024

DSN, FEEDBACK, BOUNCE, AUTOREPLY, UNKNOWN = "dsn", "feedback", "bounce", "autoreply", "unknown"
#: Feedback types (RFC 5965 and its registry) that mean "this member does not want the mail".
COMPLAINT_TYPES = ("abuse", "fraud", "virus", "other")

_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_FEEDBACK_TYPES = ("message/feedback-report",)
_HEADER_TYPES = ("text/rfc822-headers", "message/rfc822-headers", "text/global-headers")

_BOUNCE_SENDER = re.compile(
    r"mailer[-_ ]?daemon|postmaster|mail ?delivery ?(system|subsystem|service)", re.IGNORECASE
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|not (be )?delivered|delivery (status notification|failure|failed|has failed|"
    r"problem|notification)|mail delivery failed|failure notice|returned (mail|to sender)|"
    r"non[- ]?delivery|nicht zustellbar|unzustellbar|non remis|no se pudo entregar",
    re.IGNORECASE,
)
_AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic|matische)?[ -]?(reply|response|antwort|answer)|auto:|out of (the )?office|"
    r"abwesen|absence|vacation|holiday|r[ée]ponse automatique|respuesta autom[áa]tica|"
    r"risposta automatica|away from)",
    re.IGNORECASE,
)
# Words of a bounce that gives up for now but keeps trying (not a failure yet).
_STILL_TRYING = re.compile(
    r"still being retried|will (continue|keep) (trying|to try)|will retry|"
    r"has not yet been delivered|delivery (attempts|attempt) will continue|message .* delayed",
    re.IGNORECASE,
)
_PERMANENT = re.compile(r"permanent(ly)? (error|failure|fatal)|permanent|given up", re.I)
# Where a plain-text bounce starts quoting the returned message.
_COPY_MARKER = re.compile(
    r"^\s*-*\s*(below this line is a copy of the message|this is a copy of the message|"
    r"original message (follows|headers? follow)|the original message was|"
    r"returned message follows|a copy of the original message|undelivered message follows)",
    re.IGNORECASE | re.MULTILINE,
)
_STATUS_LINE = re.compile(r"(?<![\d.])[245]\.\d{1,3}\.\d{1,3}(?![\d.])|^\s*[245]\d\d[ :-]", re.M)
_ADDRESS = re.compile(r"<?([A-Za-z0-9._%+!#$&'*/=?^`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?")
_MESSAGE_ID = re.compile(r"^[ \t]*(?:x-original-)?message-id:[ \t]*<([^<>\s]{3,250})>", re.I | re.M)


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient's line of a report: what happened and the mail system's own words."""

    recipient: str
    action: str  # failed, delayed, delivered, relayed, expanded ("" when not said)
    status: str  # an RFC 3463 code such as 5.1.1, or ""
    diagnostic: str  # e.g. "smtp; 550 5.1.1 user unknown", on one line


@dataclass
class Report:
    """What one returned message says, as far as it can be read."""

    kind: str  # dsn | feedback | bounce | autoreply | unknown
    subject: str = ""
    sender: str = ""
    recipients: list[RecipientStatus] = field(default_factory=list)
    feedback_type: str = ""
    reporter: str = ""  # the feedback report's User-Agent, or the reporting MTA
    #: Every header and decoded text part, for finding the tokens that name a delivery.
    text: str = ""
    #: Message-IDs the report quotes (its own left out), without angle brackets.
    message_ids: list[str] = field(default_factory=list)
    #: Why it was read as it was (for the operator's log).
    note: str = ""

    @property
    def failed(self) -> list[RecipientStatus]:
        """The recipients the mail system gave up on."""
        return [r for r in self.recipients if r.action == "failed"]

    @property
    def is_complaint(self) -> bool:
        return self.kind == FEEDBACK and self.feedback_type in COMPLAINT_TYPES


def _one_line(value: str, limit: int = 500) -> str:
    return " ".join(value.split())[:limit]


def _header(message: email.message.Message, name: str) -> str:
    """A header as readable text (encoded words decoded), or ""."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        return _one_line(str(make_header(decode_header(str(value)))))
    except (UnicodeError, LookupError, ValueError, TypeError):
        return _one_line(str(value))


def _payload_text(part: email.message.Message) -> str:
    """The decoded text of a leaf part (capped), or "" for a container."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return ""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return str(payload)[:MAX_PART_TEXT]
    charset = part.get_content_charset() or "utf-8"
    try:
        return data[:MAX_PART_TEXT].decode(charset, "replace")
    except LookupError:  # an unknown charset name
        return data[:MAX_PART_TEXT].decode("utf-8", "replace")


def _all_text(message: email.message.Message) -> str:
    """Headers and decoded text of every part, nested messages too, within MAX_TEXT."""
    pieces: list[str] = []
    size = 0
    for part in message.walk():
        chunk = "\n".join(f"{k}: {v}" for k, v in part.items()) + "\n\n" + _payload_text(part)
        pieces.append(chunk)
        size += len(chunk)
        if size > MAX_TEXT:
            break
    return "\n".join(pieces)[:MAX_TEXT]


def _field_blocks(part: email.message.Message) -> list[email.message.Message]:
    """The header blocks of a message/delivery-status (or feedback-report) part."""
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(p, email.message.Message) for p in payload):
        if part.get_content_type() in _DSN_TYPES:
            return list(payload)
        # message/feedback-report is parsed as one message whose headers are the fields
        return [p for p in payload[:1] if isinstance(p, email.message.Message)]
    text = _payload_text(part).replace("\r\n", "\n")
    parser = email.parser.HeaderParser(policy=email.policy.compat32)
    return [parser.parsestr(block + "\n") for block in re.split(r"\n[ \t]*\n", text) if block]


def _address(value: str) -> str:
    """The address of a ``rfc822; someone@example.org`` field."""
    _, _, address = value.rpartition(";")
    found = _ADDRESS.search(address or value)
    return found.group(1) if found else _one_line(address, 254)


def _read_dsn(part: email.message.Message) -> tuple[list[RecipientStatus], str]:
    blocks = _field_blocks(part)
    reporter = ""
    recipients = []
    for block in blocks:
        if block.get("Reporting-MTA") and not reporter:
            reporter = _address_or_name(_header(block, "Reporting-MTA"))
        if not (block.get("Final-Recipient") or block.get("Original-Recipient")):
            continue
        recipients.append(
            RecipientStatus(
                recipient=_address(
                    _header(block, "Final-Recipient") or _header(block, "Original-Recipient")
                ),
                action=_header(block, "Action").lower().split(" ")[0]
                if block.get("Action")
                else "",
                status=_status_code(_header(block, "Status")),
                diagnostic=_header(block, "Diagnostic-Code"),
            )
        )
    return recipients, reporter


def _address_or_name(value: str) -> str:
    _, _, name = value.rpartition(";")
    return name.strip()


def _status_code(text: str) -> str:
    found = re.search(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])", text)
    return found.group(1) if found else ""


def _read_plain_bounce(message: email.message.Message, subject: str) -> list[RecipientStatus]:
    """The failure a plain-text bounce describes, from its first text part up to the copy of
    the returned message: the line with the first SMTP answer, and whether it gave up."""
    body = ""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            body = _payload_text(part)
            break
    marker = _COPY_MARKER.search(body)
    human = body[: marker.start()] if marker else body[:8000]
    failed = message.get("X-Failed-Recipients", "")
    recipient = _address(str(failed)) if failed else ""
    if not recipient:
        found = re.search(r"^\s*<([^<>\s]+@[^<>\s]+)>\s*:?\s*$", human, re.M)
        recipient = found.group(1) if found else ""
    diagnostic = ""
    line = _STATUS_LINE.search(human)
    if line:
        start = human.rfind("\n", 0, line.start()) + 1
        end = human.find("\n\n", line.start())
        diagnostic = _one_line(human[start : end if end != -1 else None], 500)
    still_trying = _STILL_TRYING.search(subject) or _STILL_TRYING.search(human)
    action = "delayed" if still_trying else "failed"
    status = _status_code(diagnostic)
    if not diagnostic and _PERMANENT.search(human):
        diagnostic = "permanent error: " + _one_line(human, 300)
    return [RecipientStatus(recipient, action, status, diagnostic)]


def _is_autoreply(message: email.message.Message, subject: str) -> bool:
    auto = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto and not auto.startswith("no"):
        return True
    if any(message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return True
    if str(message.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    if message.get("X-Auto-Response-Suppress") and _AUTOREPLY_SUBJECT.search(subject):
        return True
    return bool(_AUTOREPLY_SUBJECT.search(subject))


def _quoted_message_ids(text: str, own: str) -> list[str]:
    found: list[str] = []
    for match in _MESSAGE_ID.finditer(text):
        value = match.group(1)
        if value != own and value not in found:
            found.append(value)
    return found


def parse_report(raw: bytes) -> Report:
    """Read one returned message (its bytes as stored) into a :class:`Report`."""
    if len(raw) > MAX_MESSAGE_BYTES:
        return Report(UNKNOWN, note=f"too large to read ({len(raw):,} bytes)")
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    subject = _header(message, "Subject")
    sender = _header(message, "From")
    own_id = (_header(message, "Message-ID").strip().strip("<>")).strip()
    text = _all_text(message)
    report = Report(
        UNKNOWN,
        subject=subject,
        sender=sender,
        text=text,
        message_ids=_quoted_message_ids(text, own_id),
    )
    kind = message.get_content_type()
    report_type = str(message.get_param("report-type", "") or "").lower()
    parts = list(message.walk())
    dsn_part = next((p for p in parts if p.get_content_type() in _DSN_TYPES), None)
    feedback_part = next((p for p in parts if p.get_content_type() in _FEEDBACK_TYPES), None)

    if feedback_part is not None and (
        report_type == "feedback-report" or kind != "multipart/report"
    ):
        fields = _field_blocks(feedback_part)
        block = fields[0] if fields else email.message.Message()
        report.kind = FEEDBACK
        report.feedback_type = _header(block, "Feedback-Type").lower() or "abuse"
        report.reporter = _header(block, "User-Agent") or sender
        report.note = f"feedback report ({report.feedback_type})"
        return report
    if dsn_part is not None:
        report.kind = DSN
        report.recipients, report.reporter = _read_dsn(dsn_part)
        report.note = "delivery status notification"
        return report
    bounce_like = (
        bool(message.get("X-Failed-Recipients"))
        or bool(_BOUNCE_SENDER.search(sender))
        or (bool(_BOUNCE_SUBJECT.search(subject)) and not _AUTOREPLY_SUBJECT.search(subject))
    )
    if bounce_like:
        report.kind = BOUNCE
        report.recipients = _read_plain_bounce(message, subject)
        report.reporter = sender
        report.note = "plain-text bounce"
        return report
    if _is_autoreply(message, subject):
        report.kind = AUTOREPLY
        report.note = "automatic reply (RFC 3834)"
        return report
    report.note = "not a bounce, complaint or automatic reply"
    return report
