"""What a member changes on their preferences page: name, chapter, topics, pause and resume,
unsubscribe, and subscribing again (which, after an unsubscribe, needs a fresh confirmation by
mail, like a sign-up)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlite_utils import Database

from policyfeed.audience.signup import Client, NoticeRequest, SignupForm, check_form, request_signup
from policyfeed.errors import InputError
from policyfeed.model import N_, Subscriber, Topic
from policyfeed.store import subscribers as store
from policyfeed.store.posts import list_topics

if TYPE_CHECKING:
    from policyfeed.config import Settings

ACTIONS = ("save", "pause", "resume", "unsubscribe", "resubscribe")
#: At most this many topic values of one form are looked at (a site has far fewer topics).
MAX_TOPIC_VALUES = 500


@dataclass(frozen=True)
class Change:
    """What an action did: a sentence for the page, and the message to queue, if any."""

    note: str
    notice: NoticeRequest | None = None


def topic_choices(db: Database, chosen: Sequence[str]) -> list[Topic]:
    """The topics the page offers, by name: those with published posts, and any the member
    chose (so that they can untick it)."""
    return [topic for topic, count in list_topics(db) if count or topic.slug in chosen]


def chosen_topic_ids(db: Database, values: Sequence[str]) -> list[int]:
    """The ids of the topics a form ticked, each once. A value that is no topic's slug is
    ignored (a topic removed since the page was shown, or a forged form): nothing of it is
    stored or shown."""
    known = store.topic_ids_by_slug(db)
    ids: list[int] = []
    for value in values[:MAX_TOPIC_VALUES]:
        topic_id = known.get(value)
        if topic_id is not None and topic_id not in ids:
            ids.append(topic_id)
    return ids


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
    topics: Sequence[str] | None = None,
) -> Change:
    """Apply one action of the preferences form to ``subscriber``. ``topics`` are the slugs the
    form ticked (none ticked: what their chapter gets), or None when the form offered no
    topics (they stay as they are). InputError for a bad chapter or an action that does not
    apply to their status. Call inside a transaction."""
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
    if topics is not None:
        store.set_subscriber_topics(db, subscriber_id, chosen_topic_ids(db, topics))
    store.update_subscriber(
        db, subscriber_id, now=now, name=clean, set_chapter=True, chapter_id=chapter_id
    )
    return Change(N_("Your changes are saved."))
