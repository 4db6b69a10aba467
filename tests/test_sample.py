"""Previews show a sample member's message: real-looking links that unsubscribe nobody."""

from __future__ import annotations

import email
import email.policy
from urllib.parse import parse_qs, urlsplit

from digest_support import make_issue, make_post, parse
from policyfeed.audience.tokens import read_token
from policyfeed.digest.render import UNSUBSCRIBE_URL_TOKEN, render_issue
from policyfeed.digest.sample import (
    SAMPLE_EMAIL,
    sample_message,
    sample_unsubscribe_url,
    with_sample_links,
)
from policyfeed.store.subscribers import subscriber_by_id


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def test_the_sample_link_is_the_sites_unsubscribe_page_with_a_token_for_nobody(settings, db):
    url = sample_unsubscribe_url(settings)

    assert url.startswith("https://policy.example.org/unsubscribe?t=0.")
    token = token_of(url)
    assert read_token("the site's real secret", token, settings.list_identifier) is None
    assert subscriber_by_id(db, 0) is None
    assert url == sample_unsubscribe_url(settings)  # the same bytes on every preview


def test_with_sample_links_leaves_no_placeholder_in_either_part(settings) -> None:
    digest = render_issue(make_issue(), [make_post()], settings)
    assert UNSUBSCRIBE_URL_TOKEN in digest.html  # what delivery fills in, per recipient

    sample = with_sample_links(digest, settings)

    assert "%%" not in sample.html and "%%" not in sample.text
    link = parse(sample.html).cssselect("a.unsubscribe")[0].get("href")
    assert link == sample_unsubscribe_url(settings)
    assert sample_unsubscribe_url(settings) in sample.text


def test_the_sample_message_is_a_members_message_text_first(settings) -> None:
    digest = render_issue(make_issue(), [make_post(title="Café & co")], settings)

    raw = sample_message(digest, make_issue(), settings)

    message = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [part.get_content_type() for part in message.walk()]
    assert parts == ["multipart/alternative", "text/plain", "text/html"]
    url = sample_unsubscribe_url(settings)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert url in text and UNSUBSCRIBE_URL_TOKEN not in text
    assert parse(html).cssselect("a.unsubscribe")[0].get("href") == url
    assert "%%" not in html
    assert message["To"].addresses[0].addr_spec == SAMPLE_EMAIL
    assert message["List-Unsubscribe"].startswith(f"<{url}>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Subject"] == "Public Policy #1: Café & co"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert raw == sample_message(digest, make_issue(), settings)
