"""Unsubscribing with the token of a member's link: what a link is, and what using it does.

The answers are honest, because the token is an HMAC that nobody can forge without the secret:
only the member (or whoever holds their message) learns anything from them.

- :func:`look_up_link` (a GET: changes nothing) says whether a link is ``valid`` (its member
  is still on the list), ``already`` (unsubscribed before), ``gone`` (the member was removed
  from the list since) or ``invalid`` (not a token of this list: mangled, cut short, made up).
- :func:`unsubscribe_by_link` (a POST) unsubscribes and commits before it returns
  (``unsubscribed``), or says ``already``, ``gone`` or ``invalid``.

A database that cannot be read or written raises (StoreError, sqlite3.Error): the caller answers
"try again", never a false success. The web pages are in ``policyfeed.web.unsubscribe``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from policyfeed.audience.tokens import read_token

if TYPE_CHECKING:
    from sqlite_utils import Database


class LinkState(enum.StrEnum):
    VALID = "valid"
    UNSUBSCRIBED = "unsubscribed"
    ALREADY = "already"
    GONE = "gone"
    INVALID = "invalid"


@dataclass(frozen=True)
class LinkAnswer:
    state: LinkState
    #: When the member left (for ``already``), if known.
    since: datetime | None = None
    #: The language of the member's chapter ("": the site's), for the page that answers.
    language: str = ""


def look_up_link(db_path: Path, secret: str, list_id: str, token: str) -> LinkAnswer:
    """What the link with ``token`` stands for, without changing anything."""
    from policyfeed.store.subscribers import subscriber_language
    from policyfeed.store.unsubscribe import subscriber_state

    subscriber_id = read_token(secret, token, list_id)
    if subscriber_id is None:
        return LinkAnswer(LinkState.INVALID)
    db = _open(db_path)
    try:
        state = subscriber_state(db, subscriber_id)
        language = subscriber_language(db, subscriber_id)
    finally:
        db.conn.close()
    return _answer(state, LinkState.VALID, language)


def unsubscribe_by_link(
    db_path: Path, secret: str, list_id: str, token: str, now: datetime
) -> LinkAnswer:
    """Unsubscribe the member the link with ``token`` names; committed when this returns."""
    from policyfeed.store.subscribers import subscriber_language
    from policyfeed.store.unsubscribe import subscriber_state, unsubscribe_subscriber

    subscriber_id = read_token(secret, token, list_id)
    if subscriber_id is None:
        return LinkAnswer(LinkState.INVALID)
    db = _open(db_path)
    try:
        language = subscriber_language(db, subscriber_id)
        if unsubscribe_subscriber(db, subscriber_id, now):
            return LinkAnswer(LinkState.UNSUBSCRIBED, language=language)
        state = subscriber_state(db, subscriber_id)
    finally:
        db.conn.close()
    return _answer(state, LinkState.UNSUBSCRIBED, language)


def _answer(
    state: tuple[str, datetime | None] | None, otherwise: LinkState, language: str
) -> LinkAnswer:
    if state is None:
        return LinkAnswer(LinkState.GONE)
    status, since = state
    if status == "unsubscribed":
        return LinkAnswer(LinkState.ALREADY, since, language)
    return LinkAnswer(otherwise, language=language)


def _open(db_path: Path) -> Database:
    from policyfeed.store import StoreError, open_db

    if not Path(db_path).is_file():  # opening would create an empty database
        raise StoreError(f"{db_path}: no such database")
    return open_db(db_path, migrate=False)
