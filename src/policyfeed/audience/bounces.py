"""Bounces and complaints keep the list clean: each is tied to its delivery, classified, recorded
once, and acted on.

Classification (RFC 3463 enhanced status codes; the same rules for a relay's answer at SMTP time
and for a bounce that comes back later):

- **hard**: the address does not work: ``5.1.x`` (no such mailbox, bad domain), ``5.2.0``/
  ``5.2.1`` (mailbox disabled), ``5.4.x`` (no route to the domain, but ``5.4.7``), ``5.0.0``, a
  ``5xx`` reply without an enhanced code at RCPT, or words that say the mailbox is gone. The
  member is suspended at once (``bounced``).
- **soft**: it may work later, or the refusal is about the message rather than the address:
  every ``4.x.x``; ``5.2.2`` (mailbox full) and other ``5.2.x``; ``5.3.x`` (system, message too
  big), ``5.5.x``, ``5.6.x`` (content) and ``5.7.x`` (policy: a blocklisted sender, DMARC) the
  way Amazon SES counts its "transient" bounces. ``bounces.soft_limit`` soft bounces on the
  member's latest messages in a row suspend them.
- A complaint (a feedback report, or the provider's) unsubscribes the member.

Only a signed token names a member: the return path of the delivery (see
:mod:`policyfeed.audience.verp`), or, for a report that lost it, a quoted Message-ID of one of
our deliveries together with that member's own unsubscribe token. Anything else is unmatched and
changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlite_utils import Database

from policyfeed.audience.reports import Report
from policyfeed.audience.tokens import read_token
from policyfeed.audience.verp import find_return_tokens
from policyfeed.errors import ConflictError
from policyfeed.model import Delivery
from policyfeed.store import bounces as store
from policyfeed.store import subscribers as subscriber_store
from policyfeed.store import transaction

if TYPE_CHECKING:
    from policyfeed.config import Settings

HARD, SOFT = "hard", "soft"

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY = re.compile(r"(?:^|;|\s)([245])(\d)(\d)(?=[\s:-]|$)")
_MAILBOX_GONE = re.compile(
    r"user unknown|unknown (user|recipient|mailbox)|no such (user|mailbox|recipient|address|"
    r"account)|does ?n[o']t exist|doesn't have an? [\w.-]+ account|(recipient|user|mailbox|"
    r"address) not found|invalid (recipient|mailbox|address)|not a valid (recipient|mailbox|"
    r"user)|mailbox (is )?(unavailable|disabled|inactive)|account (has been |is )?(disabled|"
    r"discontinued|closed|deactivated|terminated)|recipnotfound|unrouteable|no longer accepts",
    re.IGNORECASE,
)
_MAILBOX_FULL = re.compile(
    r"over ?quota|quota (exceeded|full)|mailbox (is )?full|exceeded (storage|its storage)|"
    r"insufficient (disk )?space|out of storage",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Verdict:
    """What a failure means for the address."""

    kind: str  # hard | soft
    status: str  # the enhanced code (5.1.1) or the reply code (550); "" when none was given
    reason: str


def _enhanced(status: str, diagnostic: str) -> tuple[int, int, int] | None:
    """The most specific enhanced code: the Status field's, unless it is only ``X.0.0`` and the
    diagnostic gives a detailed one of the same class (Exim says 5.0.0 for every failure)."""
    codes = [
        (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        for m in _ENHANCED.finditer(f"{status} {diagnostic}")
    ]
    if not codes:
        return None
    first = codes[0]
    if first[1:] == (0, 0):
        detailed = next((c for c in codes[1:] if c[0] == first[0] and c[1:] != (0, 0)), None)
        if detailed:
            return detailed
    return first


def classify(status: str, diagnostic: str, *, phase: str = "") -> Verdict | None:
    """The verdict on one failure (a report's Status and Diagnostic-Code, or a relay's answer);
    None when it is no failure (2.x.x) or says nothing at all. ``phase`` is the SMTP command a
    refusal answered (``RCPT``, ``DATA``, ``end of data``), when known."""
    code = _enhanced(status, diagnostic)
    reply = _REPLY.search(diagnostic)
    klass = code[0] if code else (int(reply.group(1)) if reply else 0)
    shown = ".".join(map(str, code)) if code else ("".join(reply.groups()) if reply else "")
    if klass == 2:
        return None
    if _MAILBOX_FULL.search(diagnostic):
        return Verdict(SOFT, shown, "mailbox full")
    if klass == 4:
        return Verdict(SOFT, shown, "temporary failure")
    if klass == 5 and code is None and _MAILBOX_GONE.search(diagnostic):
        return Verdict(HARD, shown, "no such mailbox")
    if code is not None:
        subject, detail = code[1], code[2]
        if subject == 1 or (subject == 2 and detail in (0, 1)) or subject == 0:
            return Verdict(HARD, shown, "the address does not work")
        if subject == 4 and detail != 7:
            return Verdict(HARD, shown, "no route to the recipient's domain")
        if _MAILBOX_GONE.search(diagnostic):
            return Verdict(HARD, shown, "no such mailbox")
        return Verdict(SOFT, shown, "refused for the message or the sender, not the address")
    if klass == 5:
        if reply is not None and "".join(reply.groups()) == "552":
            return Verdict(SOFT, shown, "mailbox full")
        if phase in ("DATA", "end of data"):
            return Verdict(SOFT, shown, "the message was refused")
        return Verdict(HARD, shown, "permanent failure")
    if klass == 0 and _MAILBOX_GONE.search(diagnostic):
        return Verdict(HARD, "", "no such mailbox")
    return None


def report_key(raw: bytes) -> str:
    """The key of one returned message: reading the same message again records nothing."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# --- matching ---------------------------------------------------------------------------------

_UNSUBSCRIBE_TOKEN = re.compile(
    r"(?:[?&;]t=|unsubscribe(?:%20|\+|\s))([0-9]{1,12}\.[A-Za-z0-9_-]{8,40})"
)


@dataclass(frozen=True)
class Match:
    subscriber_id: int
    delivery: Delivery | None
    how: str  # "return path" or "message-id and unsubscribe token"


def match_report(db: Database, settings: Settings, secret: str, report: Report) -> Match | None:
    """The member (and delivery) a report is about, named by a signed token, or None."""
    for delivery_id, subscriber_id in find_return_tokens(settings, secret, report.text):
        delivery = store.delivery_by_id(db, delivery_id)
        if delivery is not None and delivery.subscriber_id == subscriber_id:
            return Match(subscriber_id, delivery, "return path")
        if subscriber_store.subscriber_by_id(db, subscriber_id) is not None:
            return Match(subscriber_id, None, "return path")  # the delivery row is gone
    members = {
        member
        for token in _UNSUBSCRIBE_TOKEN.findall(report.text)
        if (member := read_token(secret, token, settings.list_identifier)) is not None
    }
    for message_id in report.message_ids:
        delivery = store.delivery_by_message_id(db, message_id)
        if delivery is not None and delivery.subscriber_id in members:
            return Match(delivery.subscriber_id, delivery, "message-id and unsubscribe token")
    if len(members) == 1:
        (member,) = members
        if subscriber_store.subscriber_by_id(db, member) is not None:
            return Match(member, None, "unsubscribe token")
    return None


# --- recording --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What recording one bounce or complaint did."""

    recorded: bool  # False: this report was recorded before; nothing changed
    suspended: bool = False  # the member became ``bounced`` now
    unsubscribed: bool = False  # the member became ``unsubscribed`` now (a complaint)
    streak: int = 0  # soft bounces in a row, after this one


def record_bounce(
    db: Database,
    *,
    subscriber_id: int,
    delivery: Delivery | None,
    verdict: Verdict,
    diagnostic: str,
    source: str,
    source_key: str,
    now: datetime,
    soft_limit: int,
) -> Outcome:
    """Record one bounce, and suspend the member when it is hard or the soft ones add up."""
    with transaction(db):
        if not store.insert_bounce(
            db,
            subscriber_id=subscriber_id,
            delivery_id=delivery.id if delivery else None,
            kind=verdict.kind,
            status=verdict.status,
            diagnostic=" ".join(diagnostic.split())[:500],
            source=source,
            source_key=source_key,
            now=now,
        ):
            return Outcome(recorded=False)
        if verdict.kind == HARD:
            return Outcome(True, suspended=store.suspend(db, subscriber_id, now=now))
        streak = store.soft_streak(db, subscriber_id)
        suspended = streak >= soft_limit and store.suspend(db, subscriber_id, now=now)
        return Outcome(True, suspended=suspended, streak=streak)


def record_complaint(
    db: Database,
    *,
    subscriber_id: int,
    delivery: Delivery | None,
    feedback_type: str,
    reporter: str,
    source: str,
    source_key: str,
    now: datetime,
) -> Outcome:
    """Record one complaint and unsubscribe the member: they are never mailed again unless
    they sign up again themselves."""
    with transaction(db):
        if not store.insert_complaint(
            db,
            subscriber_id=subscriber_id,
            delivery_id=delivery.id if delivery else None,
            feedback_type=feedback_type[:40] or "abuse",
            reporter=" ".join(reporter.split())[:200],
            source=source,
            source_key=source_key,
            now=now,
        ):
            return Outcome(recorded=False)
        changed = subscriber_store.unsubscribe(db, subscriber_id, now=now)
        return Outcome(True, unsubscribed=changed)


def record_refusal(
    db: Database,
    delivery: Delivery,
    answer: str,
    *,
    phase: str,
    now: datetime,
    soft_limit: int,
) -> Outcome | None:
    """A relay's permanent answer at SMTP time, as a bounce of that delivery (None when the
    answer carries no SMTP code to judge, e.g. a relay without SMTPUTF8)."""
    verdict = classify("", answer, phase=phase)
    if verdict is None or not re.match(r"\s*5\d\d", answer):
        return None
    return record_bounce(
        db,
        subscriber_id=delivery.subscriber_id,
        delivery=delivery,
        verdict=verdict,
        diagnostic=answer,
        source="smtp",
        source_key=f"smtp:{delivery.id}",
        now=now,
        soft_limit=soft_limit,
    )


@dataclass(frozen=True)
class Reactivated:
    email: str
    changed: bool  # False: they were active already
    cleared: int  # bounces that no longer count


def reactivate(db: Database, email: str, *, now: datetime) -> Reactivated:
    """Bring back a member suspended by bounces (an editor knows the address works again).
    Someone who unsubscribed or complained is not brought back this way."""
    subscriber = subscriber_store.get_subscriber(db, email.strip())
    subscriber_id = subscriber.id or 0
    if subscriber.status == "active":
        return Reactivated(subscriber.email, False, 0)
    if subscriber.status != "bounced":
        complained = store.complaint_count(db, subscriber_id)
        why = "reported the digest as spam" if complained else "asked to leave"
        raise ConflictError(
            f"{subscriber.email} is {subscriber.status} (they {why}), not bounced; only they "
            "can come back: `subscribers add --resubscribe` at their own request"
        )
    with transaction(db):
        cleared = store.reactivate(db, subscriber_id, now=now)
    return Reactivated(subscriber.email, True, cleared)
