"""Joining by oneself: a sign-up form's request, its confirmation, and the limits that keep the
forms from being turned against anyone.

Every outcome of a request looks the same from outside (the web page says "check your inbox"
whether the address is new, known, forgotten or throttled); what differs is which message, if
any, is queued for the address:

- a new address, one that is waiting to confirm, one that unsubscribed or bounced: a
  confirmation message (double opt-in: only following its link makes the member active);
- an active or paused member: a message with their preferences link (nothing changes);
- a forgotten address, or one that had a message from a form within the hour: nothing.

The functions here write to the database and return what to send; the caller queues the message
(:mod:`policyfeed.delivery.notices`) inside the same transaction.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlite_utils import Database

from policyfeed.audience.subscribers import address_hash, clean_name, normalize_email
from policyfeed.errors import InputError
from policyfeed.model import N_
from policyfeed.store import signups as signup_store
from policyfeed.store import subscribers as store

if TYPE_CHECKING:
    from policyfeed.config import Settings

log = logging.getLogger(__name__)

#: Requests a form accepts from one IP address: (window, at most). Above them the form answers
#: "too many requests" (which says nothing about any address).
IP_LIMITS = ((timedelta(minutes=10), 20), (timedelta(days=1), 200))
#: At most one message that a form asks for goes to one address within this window: a flood of
#: sign-ups for a victim's address sends them one confirmation an hour, no more.
ADDRESS_WINDOW = timedelta(hours=1)
#: How long request counters are kept.
THROTTLE_KEPT = timedelta(days=1)
MAX_FIELD = 500  # characters of a name or user agent kept


@dataclass(frozen=True)
class Client:
    """Who sent a form: the client's address (as the trusted proxies tell it) and user agent."""

    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class SignupForm:
    email: str
    name: str = ""
    chapter: str = ""  # a chapter's slug; "" for every post
    page: str = ""  # where the form was (its Referer, or the sign-up page)


@dataclass(frozen=True)
class NoticeRequest:
    """A message to queue: ``confirm`` (with its consent), ``welcome`` or ``preferences``
    (``reason``: "signup" when they signed up again, "request" when they asked for a link)."""

    kind: str
    subscriber_id: int
    consent_id: int | None = None
    reason: str = ""


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"policyfeed-{kind}:{value}".encode()).hexdigest()[:32]


def _clip(text: str) -> str:
    return " ".join(text.split())[:MAX_FIELD]


# --- rate limits ----------------------------------------------------------------------------


def allow_client(db: Database, client: Client, *, now: datetime) -> bool:
    """Count one form request from this client; False when it is over a limit (then it is not
    counted, so waiting is enough to be let in again). Call inside a transaction."""
    key = _key("ip", client.ip or "unknown")
    for window, most in IP_LIMITS:
        if signup_store.count_requests(db, "ip", key, since=now - window) >= most:
            return False
    signup_store.record_request(db, "ip", key, now=now)
    return True


def _allow_address(db: Database, address: str, *, now: datetime) -> bool:
    key = _key("address", address.lower())
    if signup_store.count_requests(db, "address", key, since=now - ADDRESS_WINDOW):
        return False
    signup_store.record_request(db, "address", key, now=now)
    return True


def tidy(db: Database, settings: Settings, *, now: datetime) -> int:
    """Purge sign-ups nobody confirmed in time and old request counters; returns the pending
    subscribers removed. Call inside a transaction."""
    signup_store.purge_requests(db, before=now - THROTTLE_KEPT)
    removed = signup_store.purge_unconfirmed(db, before=now - settings.confirm_within)
    if removed:
        log.info("purged %d sign-up(s) that were never confirmed", removed)
    return removed


# --- sign-up ----------------------------------------------------------------------------------


def check_form(db: Database, form: SignupForm) -> tuple[str, str, int | None]:
    """The normalised address, cleaned name and chapter id of a form; InputError (a message for
    the reader, about their input only) otherwise."""
    try:
        address = normalize_email(form.email)
    except ValueError:
        raise InputError(N_("Please enter one email address, like name@example.org.")) from None
    chapter_id = None
    if form.chapter:
        ids = store.chapter_ids(db)
        if form.chapter not in ids:
            raise InputError(N_("Please choose one of the chapters in the list."))
        chapter_id = ids[form.chapter]
    return address, clean_name(form.name)[:200], chapter_id


def request_signup(
    db: Database,
    settings: Settings,
    form: SignupForm,
    client: Client,
    *,
    now: datetime,
    member_asked: bool = False,
) -> NoticeRequest | None:
    """Record a sign-up and say which message to queue (see the module docstring). The IP
    limit is the caller's (:func:`allow_client`). ``member_asked``: the request comes from the
    member's own preferences page (their signed link), so the hourly limit per address, which
    protects an address from strangers, does not apply. Call inside a transaction."""
    address, name, chapter_id = check_form(db, form)
    tidy(db, settings, now=now)
    if signup_store.is_forgotten(db, address_hash(address)):
        log.info("sign-up for a forgotten address: nothing sent")
        return None
    if not member_asked and not _allow_address(db, address, now=now):
        log.info("sign-up for an address that had a message within the hour: nothing sent")
        return None
    existing = store.find_subscriber(db, address)
    if existing is not None and existing.status in ("active", "paused"):
        return NoticeRequest("preferences", existing.id or 0, reason="signup")
    if existing is None:
        subscriber_id = store.insert_subscriber(
            db, email=address, name=name, chapter_id=chapter_id, now=now, status="pending"
        )
    else:
        subscriber_id = existing.id or 0
    consent_id = signup_store.insert_consent(
        db,
        subscriber_id=subscriber_id,
        method="form",
        source=_clip(form.page),
        consent_text=settings.consent_text,
        name=name,
        chapter_id=chapter_id,
        now=now,
        ip=_clip(client.ip),
        user_agent=_clip(client.user_agent),
    )
    return NoticeRequest("confirm", subscriber_id, consent_id)


def request_preferences_link(
    db: Database, settings: Settings, email: str, *, now: datetime
) -> NoticeRequest | None:
    """A member who lost every message asks for their preferences link: queued when the
    address is a member's (and had no message from a form within the hour), else nothing.
    Call inside a transaction."""
    try:
        address = normalize_email(email)
    except ValueError:
        raise InputError(N_("Please enter one email address, like name@example.org.")) from None
    tidy(db, settings, now=now)
    if not _allow_address(db, address, now=now):
        return None
    existing = store.find_subscriber(db, address)
    if existing is None or existing.status == "pending":
        return None
    return NoticeRequest("preferences", existing.id or 0, reason="request")


# --- confirmation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Confirmation:
    """Where a confirmation link stands: ``valid`` (waiting for the click), ``done`` (already
    confirmed), ``expired``, or ``invalid`` (forged, garbled, or its sign-up is gone)."""

    state: str
    consent_id: int = 0
    subscriber_id: int = 0
    email: str = ""


def read_confirmation(
    db: Database, settings: Settings, claim: tuple[int, int] | None, *, now: datetime
) -> Confirmation:
    """What a confirmation token's claim (consent id, expiry; None when the token was not
    genuine) amounts to now."""
    if claim is None:
        return Confirmation("invalid")
    consent_id, expires = claim
    consent = signup_store.get_consent(db, consent_id)
    if consent is not None and consent.confirmed_at is not None:
        return Confirmation("done", consent_id, consent.subscriber_id)
    if now.timestamp() >= expires:
        return Confirmation("expired", consent_id)
    if consent is None or consent.method != "form":
        return Confirmation("expired", consent_id)  # purged, or its member was forgotten
    subscriber = store.subscriber_by_id(db, consent.subscriber_id)
    if subscriber is None:
        return Confirmation("expired", consent_id)
    return Confirmation("valid", consent_id, consent.subscriber_id, subscriber.email)


def confirm_signup(
    db: Database,
    settings: Settings,
    claim: tuple[int, int] | None,
    client: Client,
    *,
    now: datetime,
) -> tuple[Confirmation, NoticeRequest | None]:
    """Follow a confirmation link: the member becomes active with the name and chapter they
    asked for, the consent is completed (when, IP address, user agent), and a welcome message is
    to be queued. A second click changes nothing. Call inside a transaction."""
    found = read_confirmation(db, settings, claim, now=now)
    if found.state != "valid":
        return found, None
    consent = signup_store.get_consent(db, found.consent_id)
    subscriber = store.subscriber_by_id(db, found.subscriber_id)
    assert consent is not None and subscriber is not None
    signup_store.confirm_consent(
        db, consent.id, now=now, ip=_clip(client.ip), user_agent=_clip(client.user_agent)
    )
    if subscriber.status in ("active", "paused"):  # confirmed through another sign-up's link
        return Confirmation("done", consent.id, subscriber.id or 0), None
    store.update_subscriber(
        db,
        subscriber.id or 0,
        now=now,
        name=consent.name or None,
        set_chapter=True,
        chapter_id=consent.chapter_id,
        status="active",
        confirmed=True,
    )
    log.info("subscriber %d confirmed their sign-up", subscriber.id)
    return Confirmation("done", consent.id, subscriber.id or 0), NoticeRequest(
        "welcome", subscriber.id or 0
    )
