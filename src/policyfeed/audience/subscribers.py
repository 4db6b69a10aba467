"""Subscribers and chapters: address checks, CSV import (all or nothing), a member's data export,
and the unsubscribe link each message carries."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlite_utils import Database

from policyfeed.config import require_secret_length
from policyfeed.content.posts import check_slug, slugify
from policyfeed.content.text import clean_line
from policyfeed.errors import ConfigError, ConflictError, InputError
from policyfeed.model import Chapter, Subscriber, check_language
from policyfeed.store import bounces as bounce_store
from policyfeed.store import deliveries as delivery_store
from policyfeed.store import signups as signup_store
from policyfeed.store import subscribers as store
from policyfeed.store import to_db_time, transaction

if TYPE_CHECKING:
    from policyfeed.config import Settings

__all__ = [
    "DEVELOPMENT_SECRET",
    "Chapter",
    "ImportResult",
    "Subscriber",
    "add_chapter",
    "add_subscriber",
    "address_hash",
    "export_subscriber",
    "forget_subscriber",
    "import_subscribers",
    "normalize_email",
    "preferences_url",
    "set_member_topics",
    "topic_ids_of",
    "unsubscribe_secret",
    "unsubscribe_url",
]

log = logging.getLogger(__name__)

#: The key of unsubscribe tokens when POLICYFEED_SECRET is unset and messages only go to the
#: local outbox (the demo, a test run). It is public, so such tokens can be forged: never used
#: for real recipients (SMTP refuses to start without a secret).
DEVELOPMENT_SECRET = "policyfeed-development-key-NOT-SECRET"

CSV_COLUMNS = ("email", "name", "chapter")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def normalize_email(text: str) -> str:
    """A plain mailbox address (``name@example.org``), domain lower-cased; ValueError otherwise.

    Display names, comments, quoted local parts and address literals are refused: one address
    that every relay accepts, nothing else.
    """
    address = text.strip()
    if not address:
        raise ValueError("empty address")
    if len(address) > 254:
        raise ValueError(f"address too long ({len(address)} characters, at most 254)")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{address!r} is not an email address (name@example.org)")
    if len(local) > 64 or not _LOCAL_PART.match(local):
        raise ValueError(f"{address!r}: the part before @ is not a plain mailbox name")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError(f"{address!r}: the domain {domain!r} is not valid") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise ValueError(f"{address!r}: the domain {domain!r} is not valid")
    if labels[-1].isdigit():
        raise ValueError(f"{address!r}: an address needs a domain name, not an IP address")
    return f"{local}@{ascii_domain}"


def address_hash(address: str) -> str:
    """What is kept of a forgotten address: a SHA-256 of it (domain and local part lower-cased),
    enough to recognise it in an import or a sign-up and nothing more."""
    normalized = normalize_email(address).lower()
    return hashlib.sha256(f"policyfeed-forgotten:{normalized}".encode()).hexdigest()


def clean_name(text: str) -> str:
    return clean_line(text)[:200]


# --- chapters -------------------------------------------------------------------------------


def _checked_chapter(
    db: Database,
    *,
    slug: str,
    name: str,
    intro: str,
    topics: Sequence[str],
    source: str,
    where: str | None = None,
    language: str = "",
    post_language: str = "",
) -> tuple[Chapter, list[int]]:
    try:
        check_slug(slug)
        language = check_language(language)
        post_language = check_language(post_language)
    except ValueError as exc:
        raise InputError(str(exc), source=source, where=where) from None
    name = clean_name(name)
    if not name:
        raise InputError(f"chapter {slug!r} needs a name", source=source, where=where)
    topic_ids = topic_ids_of(db, topics, source=source, where=where)
    intro = clean_line(intro)
    chapter = Chapter(
        slug=slug, name=name, intro=intro, language=language, post_language=post_language
    )
    return chapter, topic_ids


def topic_ids_of(
    db: Database, topics: Sequence[str], *, source: str, where: str | None = None
) -> list[int]:
    """The ids of existing topics named by slug or by name (each once, in the order given);
    InputError naming the first unknown one and the known slugs."""
    known = store.topic_ids_by_slug(db)
    names = store.topic_names(db)
    by_name = {name: slug for slug, name in names.items()}
    by_name_slug = {slugify(name): slug for slug, name in names.items()}
    topic_ids: list[int] = []
    for topic in topics:
        topic_slug = (
            topic
            if topic in known
            else by_name.get(clean_line(topic)) or by_name_slug.get(slugify(topic), "")
        )
        if topic_slug not in known:
            raise InputError(
                f"unknown topic {topic!r} (known: {', '.join(sorted(known)) or 'none yet'})",
                source=source,
                where=where,
            )
        if known[topic_slug] not in topic_ids:
            topic_ids.append(known[topic_slug])
    return topic_ids


def add_chapter(
    db: Database,
    *,
    slug: str,
    name: str,
    intro: str = "",
    topics: Sequence[str] = (),
    language: str = "",
    post_language: str = "",
) -> Chapter:
    """Create a chapter. ``topics`` (names or slugs of existing topics) filter its variant;
    ``language``: of its digest and its members' pages ("": the site's); ``post_language``:
    it gets only posts in it and posts with no language ("": every post)."""
    chapter, topic_ids = _checked_chapter(
        db,
        slug=slug,
        name=name,
        intro=intro,
        topics=topics,
        source=f"chapter {slug}",
        language=language,
        post_language=post_language,
    )
    with transaction(db):
        store.insert_chapter(db, chapter, topic_ids)
    return store.get_chapter(db, slug)


def set_chapter_languages(
    db: Database, slug: str, *, language: str | None, post_language: str | None
) -> Chapter:
    """Change a chapter's language and/or post language (None: unchanged; "": the site's
    language, or posts in every language)."""
    source = f"chapter {slug}"
    try:
        language = None if language is None else check_language(language)
        post_language = None if post_language is None else check_language(post_language)
    except ValueError as exc:
        raise InputError(str(exc), source=source) from None
    with transaction(db):
        store.set_chapter_languages(db, slug, language=language, post_language=post_language)
    return store.get_chapter(db, slug)


def load_chapters(db: Database, records: Sequence[Any], *, source: str) -> int:
    """Create chapters from records (slug, name, intro, topics), e.g. a JSON file; all or none."""
    with transaction(db):
        for number, record in enumerate(records, 1):
            where = f"record {number}"
            if not isinstance(record, dict):
                raise InputError(
                    "a chapter is an object with slug and name", source=source, where=where
                )
            topics = record.get("topics", [])
            if not isinstance(topics, list):
                raise InputError("topics must be a list", source=source, where=where)
            chapter, topic_ids = _checked_chapter(
                db,
                slug=str(record.get("slug", "")),
                name=str(record.get("name", "")),
                intro=str(record.get("intro", "")),
                topics=[str(t) for t in topics],
                source=source,
                where=where,
                language=str(record.get("language", "")),
                post_language=str(record.get("post_language", "")),
            )
            try:
                store.insert_chapter(db, chapter, topic_ids)
            except ConflictError as exc:
                raise InputError(str(exc), source=source, where=where) from None
    return len(records)


# --- subscribers ----------------------------------------------------------------------------


def _chapter_id(db: Database, chapter: str | None) -> int | None:
    if not chapter:
        return None
    ids = store.chapter_ids(db)
    if chapter not in ids:
        raise InputError(f"no chapter {chapter!r} (known: {', '.join(sorted(ids)) or 'none yet'})")
    return ids[chapter]


def add_subscriber(
    db: Database,
    email: str,
    *,
    now: datetime,
    name: str = "",
    chapter: str | None = None,
    topics: Sequence[str] = (),
    resubscribe: bool = False,
) -> Subscriber:
    """Add one subscriber, active at once (the operator vouches for their consent, which is
    recorded so). Someone who unsubscribed, paused, bounced or asked to be forgotten comes back
    only with ``resubscribe``. ``topics`` (names or slugs): the member's own choice of topics
    (none: what their chapter gets; on a resubscription, none keeps the choice they had)."""
    try:
        address = normalize_email(email)
    except ValueError as exc:
        raise InputError(str(exc), source="subscriber") from None
    chapter_id = _chapter_id(db, chapter)
    topic_ids = topic_ids_of(db, topics, source="--topic")
    with transaction(db):
        existing = store.find_subscriber(db, address)
        if existing is None:
            forgotten = address_hash(address)
            if signup_store.is_forgotten(db, forgotten):
                if not resubscribe:
                    raise ConflictError(
                        f"{address} asked to be forgotten; add them again only at their "
                        "request, with --resubscribe"
                    )
                signup_store.remove_forgotten(db, forgotten)
            subscriber_id = store.insert_subscriber(
                db, email=address, name=clean_name(name), chapter_id=chapter_id, now=now
            )
        elif existing.status == "active":
            raise ConflictError(f"{existing.email} is already subscribed")
        elif not resubscribe:
            state = {"pending": "waiting to confirm a sign-up"}.get(existing.status)
            raise ConflictError(
                f"{existing.email} is {state or existing.status}; add them again only at their "
                "request, with --resubscribe"
            )
        else:
            subscriber_id = existing.id or 0
            store.update_subscriber(
                db,
                subscriber_id,
                now=now,
                name=clean_name(name) or None,
                set_chapter=bool(chapter),
                chapter_id=chapter_id,
                status="active",
                confirmed=True,
            )
        if topic_ids:
            store.set_subscriber_topics(db, subscriber_id, topic_ids)
        signup_store.insert_consent(
            db,
            subscriber_id=subscriber_id,
            method="operator",
            source="policyfeed subscribers add" + (" --resubscribe" if resubscribe else ""),
            name=clean_name(name),
            chapter_id=chapter_id,
            now=now,
            confirmed=True,
        )
    return store.get_subscriber(db, address)


@dataclass
class ImportResult:
    total: int
    created: int
    updated: int
    unchanged: int
    #: Addresses in the file that had unsubscribed (or bounced): kept as they are.
    not_resubscribed: int
    #: Addresses in the file whose owner asked to be forgotten: not imported.
    forgotten: int = 0


@dataclass
class _Row:
    email: str
    name: str
    chapter: str
    line: int


def read_subscribers_csv(text: str, *, source: str) -> list[_Row]:
    """Parse and check a subscribers CSV (columns email, name, chapter; a header row).

    Rows for the same address (in any case) are merged into one; contradicting values are an
    error naming both lines.
    """
    # strict: a file cut inside a quoted field is an error, not a shorter list of members.
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        return _read_rows(reader, source)
    except csv.Error as exc:
        raise InputError(
            f"malformed CSV: {exc}", source=source, where=f"line {reader.reader.line_num}"
        ) from None


def _read_rows(reader: csv.DictReader[str], source: str) -> list[_Row]:
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "email" not in header:
        raise InputError(
            "the first line must be a header with an email column", source=source, where="line 1"
        )
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise InputError(
            f"unknown column(s) {', '.join(unknown)} (known: {', '.join(CSV_COLUMNS)})",
            source=source,
            where="line 1",
        )
    reader.fieldnames = header
    merged: dict[str, _Row] = {}
    for record in reader:
        line = reader.line_num
        if None in record:
            raise InputError("more fields than the header has", source=source, where=f"line {line}")
        values = {k: (v or "").strip() for k, v in record.items()}
        if not any(values.values()):
            continue
        try:
            address = normalize_email(values.get("email", ""))
        except ValueError as exc:
            raise InputError(str(exc), source=source, where=f"line {line}") from None
        row = _Row(address, clean_name(values.get("name", "")), values.get("chapter", ""), line)
        key = address.lower()
        if key not in merged:
            merged[key] = row
            continue
        first = merged[key]
        for attr in ("name", "chapter"):
            mine, theirs = getattr(row, attr), getattr(first, attr)
            if mine and theirs and mine != theirs:
                raise InputError(
                    f"{address} has {attr} {mine!r} here but {theirs!r} on line {first.line}",
                    source=source,
                    where=f"line {line}",
                )
            if mine and not theirs:
                setattr(first, attr, mine)
    return list(merged.values())


def import_subscribers(db: Database, path: Path, *, now: datetime) -> ImportResult:
    """Import a CSV of subscribers: all rows or none.

    New addresses are added as active (the import is recorded as their consent); known ones get
    the file's name and chapter. An address that unsubscribed stays unsubscribed, and one whose
    owner asked to be forgotten is left out: an old list must never bring anyone back.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", source=source
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=source) from None
    rows = read_subscribers_csv(text, source=source)
    chapters = store.chapter_ids(db)
    for row in rows:
        if row.chapter and row.chapter not in chapters:
            raise InputError(
                f"no chapter {row.chapter!r} (known: {', '.join(sorted(chapters)) or 'none yet'})",
                source=source,
                where=f"line {row.line}",
            )
    result = ImportResult(len(rows), 0, 0, 0, 0)
    forgotten = signup_store.forgotten_hashes(db)
    with transaction(db):
        for row in rows:
            chapter_id = chapters[row.chapter] if row.chapter else None
            existing = store.find_subscriber(db, row.email)
            if existing is None:
                if forgotten and address_hash(row.email) in forgotten:
                    result.forgotten += 1
                    continue
                subscriber_id = store.insert_subscriber(
                    db, email=row.email, name=row.name, chapter_id=chapter_id, now=now
                )
                signup_store.insert_consent(
                    db,
                    subscriber_id=subscriber_id,
                    method="import",
                    source=f"{path.name}, line {row.line}",
                    name=row.name,
                    chapter_id=chapter_id,
                    now=now,
                    confirmed=True,
                )
                result.created += 1
                continue
            if existing.status in ("unsubscribed", "bounced"):
                result.not_resubscribed += 1
            new_name = row.name if row.name and row.name != existing.name else None
            new_chapter = bool(row.chapter) and chapter_id != existing.chapter_id
            if new_name is None and not new_chapter:
                result.unchanged += 1
                continue
            store.update_subscriber(
                db,
                existing.id or 0,
                now=now,
                name=new_name,
                set_chapter=new_chapter,
                chapter_id=chapter_id,
            )
            result.updated += 1
    return result


def set_member_topics(
    db: Database, email: str, topics: Sequence[str] | None, *, now: datetime
) -> Subscriber:
    """Set the topics a member gets (names or slugs of existing topics), or with None, send
    them back to what their chapter gets. The choice replaces the chapter's filter: they get
    the posts of each issue on any of these topics. An empty choice is refused (it would mean
    nothing, ever: that is pausing or unsubscribing)."""
    subscriber = store.get_subscriber(db, email.strip())
    topic_ids: list[int] = []
    if topics is not None:
        topic_ids = topic_ids_of(db, topics, source="--topic")
        if not topic_ids:
            raise InputError(
                "choose at least one topic (or none at all: what their chapter gets)",
                source="--topic",
            )
    with transaction(db):
        store.set_subscriber_topics(db, subscriber.id or 0, topic_ids)
        store.update_subscriber(db, subscriber.id or 0, now=now)
    return store.get_subscriber(db, subscriber.email)


def unsubscribe(db: Database, email: str, *, now: datetime) -> bool:
    """Unsubscribe by address; False when they already were. Later sends skip them."""
    subscriber = store.get_subscriber(db, email.strip())
    with transaction(db):
        return store.unsubscribe(db, subscriber.id or 0, now=now)


def remove_subscriber(db: Database, email: str) -> Subscriber:
    """Delete a subscriber and their delivery history; a later import may add them again (see
    :func:`forget_subscriber` for a request to be forgotten)."""
    subscriber = store.get_subscriber(db, email.strip())
    with transaction(db):
        store.delete_subscriber(db, subscriber.id or 0)
    return subscriber


def forget_subscriber(db: Database, email: str, *, now: datetime) -> Subscriber:
    """Erase a member's personal data (their record, consents, deliveries and pending messages)
    and keep only a hash of the address, so that no import or sign-up mails them again."""
    subscriber = store.get_subscriber(db, email.strip())
    with transaction(db):
        store.delete_subscriber(db, subscriber.id or 0)
        signup_store.add_forgotten(db, address_hash(subscriber.email), now=now)
    return subscriber


def export_subscriber(db: Database, email: str) -> dict[str, Any]:
    """Everything stored about one subscriber, for a member's data request."""
    subscriber = store.get_subscriber(db, email.strip())

    def stamp(moment: datetime | None) -> str | None:
        return to_db_time(moment) if moment else None

    chapter = store.get_chapter(db, subscriber.chapter) if subscriber.chapter else None
    slugs = {i: slug for slug, i in store.chapter_ids(db).items()}
    consents = [
        {
            "method": c.method,
            "source": c.source,
            "text": c.consent_text,
            "name": c.name,
            "chapter": slugs.get(c.chapter_id) if c.chapter_id is not None else None,
            "requested_at": stamp(c.requested_at),
            "ip": c.ip,
            "user_agent": c.user_agent,
            "confirmed_at": stamp(c.confirmed_at),
            "confirm_ip": c.confirm_ip,
            "confirm_user_agent": c.confirm_user_agent,
        }
        for c in signup_store.consents_for_subscriber(db, subscriber.id or 0)
    ]
    names = store.topic_names(db)
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "chapter": {"slug": chapter.slug, "name": chapter.name} if chapter else None,
        # The topics they chose (None: what their chapter gets).
        "topics": [{"slug": t, "name": names.get(t, t)} for t in subscriber.topics] or None,
        "status": subscriber.status,
        "subscribed_at": stamp(subscriber.created_at),
        "confirmed_at": stamp(subscriber.confirmed_at),
        "updated_at": stamp(subscriber.updated_at),
        "unsubscribed_at": stamp(subscriber.unsubscribed_at),
        "consents": consents,
        "deliveries": delivery_store.deliveries_for_subscriber(db, subscriber.id or 0),
        # What their mail system sent back about them (bounces, complaints), oldest first.
        "bounces": [
            {k: v for k, v in event.items() if k != "email"}
            for event in reversed(bounce_store.events(db, email=subscriber.email, limit=100_000))
        ],
    }


# --- unsubscribe links ----------------------------------------------------------------------


def unsubscribe_secret(settings: Settings) -> str:
    """The key of unsubscribe tokens: POLICYFEED_SECRET, or the public development key when no
    SMTP relay is configured (messages only reach the local outbox)."""
    if settings.secret:
        return require_secret_length(settings.secret)
    if settings.smtp_host:
        raise ConfigError(
            "POLICYFEED_SECRET is not set: it signs the unsubscribe links, and mail to real "
            "recipients cannot go out without it (e.g. export POLICYFEED_SECRET=$(openssl rand "
            "-hex 32))"
        )
    log.warning(
        "POLICYFEED_SECRET is not set: unsubscribe links in the outbox use a public development "
        "key; set the variable before sending to real recipients"
    )
    return DEVELOPMENT_SECRET


def preferences_url(settings: Settings, token: str) -> str:
    """A member's preferences page, carrying their preferences token."""
    return f"{settings.app_endpoint('preferences')}?t={quote(token, safe='.-_~')}"


def unsubscribe_url(settings: Settings, token: str) -> str:
    """The one-click unsubscribe URL carrying a subscriber's token."""
    endpoint = settings.unsubscribe_endpoint
    return f"{endpoint}{'&' if '?' in endpoint else '?'}t={quote(token, safe='.-_~')}"
