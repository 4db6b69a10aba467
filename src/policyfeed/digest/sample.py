"""A sample member for previews: what ``issue render``, ``issue preview`` and the editors'
browser preview show is a member's message, never the raw placeholders delivery fills in.

The sample member's links have the shape of a real member's (the site's unsubscribe page with a
signed token), but they unsubscribe nobody: they name subscriber 0, which never exists (ids
start at 1), and are signed with a fixed public key that is not the site's secret. The key is
fixed so that the same issue previews to the same bytes.
"""

from __future__ import annotations

import dataclasses
import html
from datetime import datetime
from typing import TYPE_CHECKING

from policyfeed.audience.tokens import make_preferences_token, make_token
from policyfeed.digest.mail import Personaliser, Recipient, build_template

if TYPE_CHECKING:
    from policyfeed.config import Settings
    from policyfeed.digest.render import RenderedDigest
    from policyfeed.model import Issue

SAMPLE_KEY = "policyfeed sample member; not a site's secret"
SAMPLE_SUBSCRIBER_ID = 0
SAMPLE_EMAIL = "sample.member@example.org"
SAMPLE_NAME = "Sample Member"


def sample_unsubscribe_url(settings: Settings) -> str:
    """The unsubscribe link as a member gets it, for a member who does not exist."""
    from policyfeed.audience.subscribers import unsubscribe_url

    token = make_token(SAMPLE_KEY, SAMPLE_SUBSCRIBER_ID, settings.list_identifier)
    return unsubscribe_url(settings, token)


def sample_preferences_url(settings: Settings) -> str:
    """The preferences link as a member gets it, for a member who does not exist."""
    from policyfeed.audience.subscribers import preferences_url

    token = make_preferences_token(SAMPLE_KEY, SAMPLE_SUBSCRIBER_ID, settings.list_identifier)
    return preferences_url(settings, token)


def with_sample_links(digest: RenderedDigest, settings: Settings) -> RenderedDigest:
    """The rendered variant with the sample member's links in place of the placeholders."""
    from policyfeed.digest.render import PREFERENCES_URL_TOKEN, UNSUBSCRIBE_URL_TOKEN

    links = {
        UNSUBSCRIBE_URL_TOKEN: sample_unsubscribe_url(settings),
        PREFERENCES_URL_TOKEN: sample_preferences_url(settings),
    }
    text, page = digest.text, digest.html
    for token, url in links.items():
        text, page = text.replace(token, url), page.replace(token, html.escape(url))
    return dataclasses.replace(digest, html=page, text=text)


def sample_message(
    digest: RenderedDigest, issue: Issue, settings: Settings, *, date: datetime | None = None
) -> bytes:
    """The whole message the sample member would get (headers, both parts, one-click
    unsubscribe), dated ``date`` (default: when the issue was made, so it is deterministic)."""
    from policyfeed.digest.render import MESSAGE_PLACEHOLDERS

    variant = digest.chapter or ""
    template = build_template(
        digest,
        settings,
        issue_number=issue.number,
        variant=variant,
        now=date or issue.created_at,
        placeholders=MESSAGE_PLACEHOLDERS,
    )
    suffix = f"-{variant}" if variant else ""
    recipient = Recipient(
        subscriber_id=SAMPLE_SUBSCRIBER_ID,
        email=SAMPLE_EMAIL,
        name=SAMPLE_NAME,
        message_id=f"issue-{issue.number}.preview{suffix}@{settings.domain}",
    )
    return Personaliser(settings, SAMPLE_KEY).message(template, recipient)
