"""A member's preferences page, reached from the signed link in every digest: name, chapter,
pause, unsubscribe, and subscribing again through a fresh confirmation."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from policyfeed.audience.tokens import make_form_token, make_preferences_token
from policyfeed.config import Settings
from policyfeed.publish import publish
from policyfeed.store import open_db
from signup_support import SECRET, Web, csrf_of, html_of, link_in, make_web, text_of

NEXT_WEEK = timedelta(days=7)


@pytest.fixture
def web(settings: Settings, demo_db_path: Path, now: datetime, tmp_path: Path) -> Web:
    return make_web(settings, demo_db_path, now, tmp_path)


def publish_now(web: Web, when: datetime) -> None:
    db = open_db(web.db_path)
    try:
        publish(db, web.settings, now=when)
    finally:
        db.conn.close()


def digest_link(web: Web, address: str) -> str:
    digests = [m for m in web.messages_to(address) if m["Subject"].startswith("Public Policy #")]
    return link_in(digests[-1], "/preferences")


def act(web: Web, link: str, action: str, **fields: str) -> object:
    page = web.get(link).get_data(as_text=True)
    return web.post(link, {"csrf": csrf_of(page), "action": action, **fields})


def status_line(response: object) -> str:
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    found = re.search(r'role="(?:status|alert)">(.*?)</p>', html, re.S)
    return found.group(1) if found else ""


def test_every_digest_carries_the_members_own_preferences_link(web: Web, now: datetime) -> None:
    publish_now(web, now)
    ana = web.messages_to("ana.silva@example.org")[0]
    chen = web.messages_to("chen.wei@example.org")[0]
    ana_link = link_in(ana, "/preferences")
    assert ana_link != link_in(chen, "/preferences")
    pattern = f'href="https://policy.example.org{re.escape(ana_link)}"[^>]*>Your preferences</a>'
    assert re.search(pattern, html_of(ana))
    assert "Your preferences (name, chapter, pause):" in text_of(ana)
    assert "%%" not in html_of(ana) + text_of(ana)


def test_moving_to_another_chapter_changes_the_variant_of_the_next_issue(
    web: Web, now: datetime
) -> None:
    publish_now(web, now)
    link = digest_link(web, "ana.silva@example.org")
    page = web.get(link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<strong>ana.silva@example.org</strong>" in html
    assert '<option value="switzerland" selected>' in html
    assert page.headers["Referrer-Policy"] == "no-referrer"

    saved = act(web, link, "save", name="Ana S.", chapter="vancouver")
    assert status_line(saved) == "Your changes are saved."
    assert web.sql(
        "SELECT s.name, c.slug FROM subscribers s JOIN chapters c ON c.id = s.chapter_id "
        "WHERE email = 'ana.silva@example.org'"
    ) == [("Ana S.", "vancouver")]


def test_pausing_stops_the_digest_until_resumed(web: Web, now: datetime) -> None:
    publish_now(web, now)
    link = digest_link(web, "sam.taylor@example.org")
    paused = act(web, link, "pause")
    assert "The digest is paused" in status_line(paused)
    assert web.status_of("sam.taylor@example.org") == "paused"
    assert "Resume the digest" in paused.get_data(as_text=True)
    resumed = act(web, link, "resume")
    assert web.status_of("sam.taylor@example.org") == "active"
    assert "Welcome back" in status_line(resumed)


def test_unsubscribing_then_subscribing_again_needs_a_fresh_confirmation(
    web: Web, now: datetime
) -> None:
    publish_now(web, now)
    link = digest_link(web, "zoe.muller@example.org")
    left = act(web, link, "unsubscribe")
    assert "You are unsubscribed" in status_line(left)
    assert web.status_of("zoe.muller@example.org") == "unsubscribed"
    assert "Subscribe again" in left.get_data(as_text=True)

    again = act(web, link, "resubscribe", chapter="vancouver")
    assert "follow its link to subscribe again" in status_line(again)
    assert web.status_of("zoe.muller@example.org") == "unsubscribed"  # not until the click
    confirmation = web.messages_to("zoe.muller@example.org")[-1]
    assert confirmation["Subject"] == "Please confirm your subscription to Public Policy"
    confirm_link = link_in(confirmation, "/confirm")
    page = web.get(confirm_link).get_data(as_text=True)
    web.post(confirm_link, {"csrf": csrf_of(page)})
    assert web.status_of("zoe.muller@example.org") == "active"


def test_the_page_needs_its_own_form_token_for_that_member(web: Web) -> None:
    list_id = web.settings.list_identifier
    link = "/preferences?t=" + make_preferences_token(SECRET, 1, list_id)
    issued = int(web.clock.now.timestamp())
    for csrf in ("", make_form_token(SECRET, "preferences", list_id, issued=issued, bound_to=2)):
        refused = web.post(link, {"csrf": csrf, "action": "unsubscribe"})
        assert refused.status_code == 403
        assert "nothing changed" in status_line(refused)
    assert web.sql("SELECT status FROM subscribers WHERE id = 1") == [("active",)]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "p.1.AAAAAAAAAAAAAAAAAAAAAAAA",
        make_preferences_token("another-key", 1, "digest.policy.example.org"),
        make_preferences_token(SECRET, 999, "digest.policy.example.org"),  # nobody
        "1.AAAAAAAAAAAAAAAAAAAAAAAA",  # the shape of an unsubscribe token
    ],
)
def test_a_forged_or_stale_link_opens_nothing(web: Web, token: str) -> None:
    page = web.get(f"/preferences?t={token}")
    assert page.status_code == 400
    assert "This preferences link is not valid" in page.get_data(as_text=True)
    assert 'href="/preferences/link"' in page.get_data(as_text=True)


def test_an_unsubscribe_token_is_not_a_preferences_token(web: Web) -> None:
    from policyfeed.audience.tokens import make_token

    unsubscribe = make_token(SECRET, 1, web.settings.list_identifier)
    assert web.get(f"/preferences?t={unsubscribe}").status_code == 400
    assert web.get(f"/preferences?t=p.{unsubscribe}").status_code == 400
