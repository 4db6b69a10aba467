"""What a member changes on their preferences page: name, chapter, pause and resume,
unsubscribe, and subscribing again (which, after an unsubscribe, needs a fresh confirmation by
mail, like a sign-up)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlite_utils import Database

from policyfeed.audience.signup import Client, NoticeRequest, SignupForm, check_form, request_signup
from policyfeed.errors import InputError
from policyfeed.model import N_, Subscriber
from policyfeed.store import subscribers as store

if TYPE_CHECKING:
    from policyfeed.config import Settings

ACTIONS = ("save", "pause", "resume", "unsubscribe", "resubscribe")


@dataclass(frozen=True)
class Change:
    """What an action did: a sentence for the page, and the message to queue, if any."""

    note: str
    notice: NoticeRequest | None = None


def change_preferences(
    db: Database,
    settings: Settings,
    subscriber: Subscriber,
    *,
    action: str,
    name: str,
    chapter: str,
    client: Client,
    now: datetime,
    page: str = "",
) -> Change:
    """Apply one action of the preferences form to ``subscriber``. InputError for a bad chapter
    or an action that does not apply to their status. Call inside a transaction."""
    if action not in ACTIONS:
        raise InputError(N_("Please use one of the buttons of the form."))
    status = subscriber.status
    subscriber_id = subscriber.id or 0
    if action == "resubscribe":
        if status not in ("unsubscribed", "bounced"):
            raise InputError(N_("You are subscribed already."))
        form = SignupForm(subscriber.email, name or subscriber.name, chapter, page=page)
        notice = request_signup(db, settings, form, client, now=now, member_asked=True)
        return Change(
            N_("A message is on its way to your address: follow its link to subscribe again."),
            notice,
        )
    if status not in ("active", "paused"):
        raise InputError(N_("You are not subscribed: use the button below to subscribe again."))
    if action == "unsubscribe":
        store.unsubscribe(db, subscriber_id, now=now)
        return Change(N_("You are unsubscribed: the digest will not be sent to you any more."))
    if action == "pause":
        store.update_subscriber(db, subscriber_id, now=now, status="paused")
        return Change(N_("The digest is paused: nothing is sent to you until you resume it."))
    if action == "resume":
        store.update_subscriber(db, subscriber_id, now=now, status="active")
        return Change(N_("Welcome back: the next issue will be sent to you."))
    _, clean, chapter_id = check_form(db, SignupForm(subscriber.email, name, chapter))
    store.update_subscriber(
        db, subscriber_id, now=now, name=clean, set_chapter=True, chapter_id=chapter_id
    )
    return Change(N_("Your changes are saved."))
