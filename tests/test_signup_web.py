"""Signing up on the web: double opt-in, the welcome message, the preferences link by address,
and the forms' defences (CSRF, honeypot, rate limits, no enumeration, escaping)."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from policyfeed.audience.subscribers import add_subscriber, forget_subscriber, unsubscribe
from policyfeed.audience.tokens import make_confirm_token, make_form_token
from policyfeed.config import Settings
from policyfeed.delivery.outbox import OutboxTransport
from policyfeed.publish import publish
from policyfeed.store import open_db
from signup_support import (
    SECRET,
    SITE_ORIGIN,
    Web,
    csrf_of,
    html_of,
    link_in,
    make_web,
    text_of,
)


@pytest.fixture
def web(settings: Settings, demo_db_path: Path, now: datetime, tmp_path: Path) -> Web:
    return make_web(settings, demo_db_path, now, tmp_path)


def heading(response: object) -> str:
    found = re.search(r"<h1>(.*?)</h1>", response.get_data(as_text=True), re.S)  # type: ignore[attr-defined]
    assert found
    return found.group(1)


def confirm(web: Web, link: str, *, ip: str = "198.51.100.7") -> object:
    html = web.get(link).get_data(as_text=True)
    data = {"csrf": csrf_of(html)} if 'name="csrf"' in html else {}
    return web.post(link, data, ip=ip)


# --- the whole sign-up ----------------------------------------------------------------------------


def test_the_sign_up_page_is_a_labelled_form_with_the_chapters(web: Web) -> None:
    page = web.get("/subscribe")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="en">' in html
    for field in ("email", "name", "chapter"):
        assert f'<label for="subscribe-{field}">' in html and f'id="subscribe-{field}"' in html
    assert '<option value="switzerland">Switzerland Chapter</option>' in html
    assert '<option value="" selected>All posts</option>' in html
    assert "I would like to receive the Public Policy digest by email." in html
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_a_sign_up_is_pending_until_its_link_is_followed_then_welcomed(web: Web) -> None:
    answer = web.subscribe("nina@example.org", name="Nina Ortiz", chapter="vancouver")
    assert answer.status_code == 200 and heading(answer) == "Check your inbox"
    assert web.status_of("nina@example.org") == "pending"
    [message] = web.messages_to("nina@example.org")
    assert message["Subject"] == "Please confirm your subscription to Public Policy"
    assert str(message["To"]) == "Nina Ortiz <nina@example.org>"
    assert "(Vancouver Chapter)" in text_of(message)
    link = link_in(message, "/confirm")
    assert f'href="{SITE_ORIGIN}{link}"' in html_of(message)

    # Opening the link (as a mail scanner would) changes nothing.
    shown = web.get(link)
    assert shown.status_code == 200 and heading(shown) == "Confirm your subscription"
    assert shown.headers["Cache-Control"] == "no-store"
    assert web.status_of("nina@example.org") == "pending"

    done = confirm(web, link)
    assert done.status_code == 200 and heading(done) == "You are subscribed"
    assert web.sql(
        "SELECT s.status, s.name, c.slug FROM subscribers s JOIN chapters c ON c.id = s.chapter_id "
        "WHERE email = 'nina@example.org'"
    ) == [("active", "Nina Ortiz", "vancouver")]
    welcome = web.messages_to("nina@example.org")[-1]
    assert welcome["Subject"] == "Welcome to Public Policy"
    assert "as a member of Vancouver Chapter" in " ".join(text_of(welcome).split())
    assert link_in(welcome, "/preferences").startswith("/preferences?t=p.")

    # The consent: when, from where, the text agreed to, and the confirming click.
    [consent] = web.sql(
        "SELECT method, source, consent_text, ip, user_agent, c.confirmed_at, confirm_ip "
        "FROM consents c JOIN subscribers s ON s.id = c.subscriber_id "
        "WHERE s.email = 'nina@example.org'"
    )
    assert consent[:2] == ("form", "https://policy.example.org/subscribe")
    assert consent[2].startswith("I would like to receive the Public Policy digest")
    assert consent[3:] == ("192.0.2.1", "TestBrowser/1.0", "2012-07-30T12:00:00Z", "198.51.100.7")

    # A second click is harmless: no second welcome.
    again = confirm(web, link)
    assert heading(again) == "You are subscribed"
    assert len(web.messages_to("nina@example.org")) == 2


def test_an_expired_link_says_so_and_subscribes_nobody(web: Web) -> None:
    web.subscribe("late@example.org")
    link = link_in(web.messages_to("late@example.org")[0], "/confirm")
    web.clock.now += timedelta(days=7, seconds=1)
    page = web.get(link)
    assert page.status_code == 410 and heading(page) == "This confirmation link has expired"
    assert "work for 7 days" in page.get_data(as_text=True)
    assert web.post(link, {"csrf": "whatever"}).status_code == 410
    assert web.status_of("late@example.org") == "pending"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "c.1.9999999999.AAAAAAAAAAAAAAAAAAAAAAAA",
        make_confirm_token("another-key", 1, "digest.policy.example.org", expires=9999999999),
        make_confirm_token(SECRET, 1, "another.list.example", expires=9999999999),
        "p.1." + "A" * 24,
    ],
)
def test_a_forged_or_garbled_link_is_refused_honestly(web: Web, token: str) -> None:
    web.subscribe("ana@example.net")
    page = web.get(f"/confirm?t={token}")
    assert page.status_code == 400 and heading(page) == "This confirmation link is not valid"
    assert web.post(f"/confirm?t={token}", {"csrf": "x"}).status_code == 400
    assert web.status_of("ana@example.net") == "pending"


def test_confirming_needs_the_pages_own_form_token(web: Web) -> None:
    web.subscribe("form@example.org")
    link = link_in(web.messages_to("form@example.org")[0], "/confirm")
    refused = web.post(link, {})
    assert refused.status_code == 403 and heading(refused) == "Confirm your subscription"
    assert web.status_of("form@example.org") == "pending"


def test_unconfirmed_sign_ups_are_purged_after_the_deadline(web: Web) -> None:
    web.subscribe("never@example.org")
    web.clock.now += timedelta(days=8)
    web.subscribe("someone.else@example.org")  # any later request tidies up
    assert web.status_of("never@example.org") is None
    assert web.sql(
        "SELECT count(*) FROM consents WHERE confirmed_at IS NULL AND requested_at < ?",
        ("2012-07-31T00:00:00Z",),
    ) == [(0,)]


# --- nothing is revealed --------------------------------------------------------------------------


def scrubbed(html: str, address: str) -> str:
    return html.replace(address, "ADDRESS")


def test_the_answer_is_the_same_for_new_known_and_forgotten_addresses(
    web: Web, now: datetime
) -> None:
    db = open_db(web.db_path)
    forget_subscriber(db, "zoe.muller@example.org", now=now)
    db.conn.close()
    pages = {
        address: scrubbed(web.subscribe(address).get_data(as_text=True), address)
        for address in ("brand.new@example.org", "ana.silva@example.org", "zoe.muller@example.org")
    }
    assert len(set(pages.values())) == 1
    # What each address receives differs, of course.
    [member] = web.messages_to("ana.silva@example.org")
    assert member["Subject"] == "Your Public Policy preferences"
    assert "This address is already on the list, so nothing has changed." in text_of(member)
    assert web.messages_to("zoe.muller@example.org") == []
    assert web.status_of("zoe.muller@example.org") is None
    assert web.status_of("ana.silva@example.org") == "active"


def test_resubscribing_after_unsubscribing_needs_a_fresh_confirmation(
    web: Web, now: datetime
) -> None:
    db = open_db(web.db_path)
    unsubscribe(db, "chen.wei@example.org", now=now)
    db.conn.close()
    web.subscribe("chen.wei@example.org", chapter="switzerland")
    assert web.status_of("chen.wei@example.org") == "unsubscribed"
    link = link_in(web.messages_to("chen.wei@example.org")[0], "/confirm")
    confirm(web, link)
    assert web.sql(
        "SELECT s.status, c.slug FROM subscribers s JOIN chapters c ON c.id = s.chapter_id "
        "WHERE email = 'chen.wei@example.org'"
    ) == [("active", "switzerland")]


# --- CSRF and the honeypot ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "headers"),
    [
        ({}, {}),  # no token at all
        ({"csrf": "f.1343649600.0.AAAAAAAAAAAAAAAAAAAAAAAA"}, {}),  # a made-up one
        ({"box": "1"}, {}),  # a box, but the browser did not say where it was
        ({"box": "1"}, {"Origin": "https://evil.example"}),  # a box on another site
        ({"box": "1"}, {"Origin": "null"}),
    ],
)
def test_a_sign_up_without_a_valid_form_token_sends_nothing(
    web: Web, fields: dict[str, str], headers: dict[str, str]
) -> None:
    answer = web.post("/subscribe", {"email": "victim@example.org", **fields}, headers=headers)
    assert answer.status_code == 403
    assert "press Subscribe once more" in answer.get_data(as_text=True)
    assert 'value="victim@example.org"' in answer.get_data(as_text=True)  # kept for the retry
    assert web.status_of("victim@example.org") is None
    assert web.outbox() == []


def test_form_tokens_expire_and_belong_to_one_form(web: Web) -> None:
    list_id = web.settings.list_identifier
    old = make_form_token(SECRET, "subscribe", list_id, issued=int(web.clock.now.timestamp()))
    other_form = make_form_token(SECRET, "link", list_id, issued=int(web.clock.now.timestamp()))
    assert web.post("/subscribe", {"email": "a@example.org", "csrf": other_form}).status_code == 403
    web.clock.now += timedelta(hours=13)
    assert web.post("/subscribe", {"email": "a@example.org", "csrf": old}).status_code == 403
    assert web.outbox() == []


def test_a_site_pages_box_is_taken_when_the_browser_says_it_was_on_this_site(web: Web) -> None:
    answer = web.post(
        "/subscribe",
        {"email": "box@example.org", "box": "1"},
        headers={"Origin": SITE_ORIGIN, "Referer": f"{SITE_ORIGIN}/posts/ietf-84/"},
    )
    assert answer.status_code == 200 and heading(answer) == "Check your inbox"
    assert len(web.messages_to("box@example.org")) == 1
    assert web.sql("SELECT source FROM consents")[-1] == (f"{SITE_ORIGIN}/posts/ietf-84/",)


def test_the_honeypot_answers_like_a_success_and_does_nothing(web: Web) -> None:
    answer = web.subscribe("bot@example.org", website="http://spam.example")
    assert heading(answer) == "Check your inbox"
    assert web.status_of("bot@example.org") is None
    assert web.outbox() == []


def test_a_mistyped_address_is_sent_back_to_be_fixed(web: Web) -> None:
    answer = web.subscribe("ana@@example", name="Ana")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "Please enter one email address, like name@example.org." in html
    assert 'value="ana@@example"' in html and 'value="Ana"' in html
    unknown = web.subscribe("ana@example.org", chapter="atlantis")
    assert "Please choose one of the chapters in the list." in unknown.get_data(as_text=True)
    assert web.outbox() == []


# --- rate limits ----------------------------------------------------------------------------------


def test_two_hundred_sign_ups_from_one_address_are_throttled(web: Web) -> None:
    statuses = [
        web.subscribe(f"reader{n}@example.org", ip="203.0.113.9").status_code for n in range(200)
    ]
    assert statuses[:20] == [200] * 20
    assert set(statuses[20:]) == {429}
    assert len(web.outbox()) == 20
    # The counts live in the database: a restarted app (or another worker) still refuses.
    again = make_web(web.settings, web.db_path, web.clock.now, web.db_path.parent)
    refused = again.subscribe("one.more@example.org", ip="203.0.113.9")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "600"
    # Another network is not affected, and the first one gets in again later.
    assert again.subscribe("elsewhere@example.org", ip="198.51.100.1").status_code == 200
    again.clock.now += timedelta(minutes=11)
    assert again.subscribe("later@example.org", ip="203.0.113.9").status_code == 200


def test_a_flood_for_one_victim_sends_one_confirmation_an_hour(web: Web) -> None:
    for n in range(60):
        answer = web.subscribe("victim@example.org", ip=f"198.51.100.{n + 1}")
        assert heading(answer) == "Check your inbox"
    assert len(web.messages_to("victim@example.org")) == 1
    web.clock.now += timedelta(minutes=61)
    web.subscribe("victim@example.org", ip="198.51.100.200")
    assert len(web.messages_to("victim@example.org")) == 2


# --- the preferences link by address --------------------------------------------------------------


def test_a_member_can_ask_for_a_fresh_preferences_link_without_anyone_learning_who_is_one(
    web: Web,
) -> None:
    pages = {}
    for address in ("sam.taylor@example.org", "stranger@example.org"):
        data = {"email": address, "csrf": web.csrf("/preferences/link")}
        answer = web.post("/preferences/link", data)
        assert answer.status_code == 200 and heading(answer) == "Check your inbox"
        pages[address] = scrubbed(answer.get_data(as_text=True), address)
    assert pages["sam.taylor@example.org"] == pages["stranger@example.org"]
    [message] = web.messages_to("sam.taylor@example.org")
    assert "asked for a link to the Public Policy preferences" in text_of(message)
    assert link_in(message, "/preferences").startswith("/preferences?t=p.")
    assert web.messages_to("stranger@example.org") == []
    assert web.post("/preferences/link", {"email": "sam.taylor@example.org"}).status_code == 403


# --- the ledger -----------------------------------------------------------------------------------


class DownTransport(OutboxTransport):
    def send(
        self, message: bytes, *, sender: str, recipient: str, message_id: str, **kw: object
    ) -> None:
        from policyfeed.delivery.transport import SendDeferred

        raise SendDeferred("421 4.3.2 try again later")


def test_a_message_the_relay_could_not_take_goes_out_with_the_next_publish_once(
    web: Web, monkeypatch: pytest.MonkeyPatch, settings: Settings, now: datetime
) -> None:
    import policyfeed.delivery.ledger

    monkeypatch.setattr(
        policyfeed.delivery.ledger, "make_transport", lambda s: DownTransport(s.outbox_dir)
    )
    answer = web.subscribe("patient@example.org")
    assert heading(answer) == "Check your inbox"
    assert web.sql("SELECT kind, status, last_error FROM notices") == [
        ("confirm", "pending", "421 4.3.2 try again later")
    ]
    monkeypatch.undo()

    db = open_db(web.db_path)
    publish(db, web.settings, now=now + timedelta(hours=1))
    publish(db, web.settings, now=now + timedelta(hours=2))
    db.conn.close()

    assert len(web.messages_to("patient@example.org")) == 1
    assert web.sql("SELECT status, message IS NULL FROM notices") == [("sent", 1)]


def test_a_message_that_waited_past_its_time_is_never_sent(
    web: Web, monkeypatch: pytest.MonkeyPatch, now: datetime
) -> None:
    import policyfeed.delivery.ledger

    web.subscribe("slow@example.org")
    link = link_in(web.messages_to("slow@example.org")[0], "/confirm")
    web.subscribe("never.clicked@example.org")
    monkeypatch.setattr(
        policyfeed.delivery.ledger, "make_transport", lambda s: DownTransport(s.outbox_dir)
    )
    confirm(web, link)  # the welcome waits for the relay
    monkeypatch.undo()

    db = open_db(web.db_path)
    publish(db, web.settings, now=now + timedelta(days=8))
    db.conn.close()

    subjects = [m["Subject"] for m in web.messages_to("slow@example.org")]
    assert "Welcome to Public Policy" not in subjects
    assert subjects[0] == "Please confirm your subscription to Public Policy"
    assert web.sql("SELECT kind, status FROM notices") == [
        ("confirm", "sent"),
        ("welcome", "expired"),
    ]  # and the sign-up nobody confirmed is gone, with its message
    assert web.status_of("never.clicked@example.org") is None


def test_a_member_added_on_the_command_line_is_told_nothing(
    web: Web, demo_db: sqlite_utils.Database, now: datetime
) -> None:
    add_subscriber(demo_db, "quiet@example.org", now=now)
    assert web.sql("SELECT count(*) FROM notices") == [(0,)]


class UnsureTransport(OutboxTransport):
    """Like a relay: it cannot tell whether an interrupted hand-off arrived."""

    def delivered(self, message_id: str) -> bool | None:
        return None


def test_a_notice_left_sending_by_a_crash_is_settled_only_when_the_transport_can_tell(
    web: Web, monkeypatch: pytest.MonkeyPatch, now: datetime
) -> None:
    import policyfeed.delivery.ledger
    from policyfeed.delivery.notices import deliver_notices

    monkeypatch.setattr(
        policyfeed.delivery.ledger, "make_transport", lambda s: DownTransport(s.outbox_dir)
    )
    web.subscribe("crash@example.org")
    monkeypatch.undo()
    # as if killed during the hand-off:
    with sqlite3.connect(web.db_path) as conn:
        conn.execute("UPDATE notices SET status = 'sending'")

    db = open_db(web.db_path)
    try:
        unsure = deliver_notices(
            db, UnsureTransport(web.settings.outbox_dir), sender="x@example.org", clock=lambda: now
        )
        assert (unsure.ambiguous, unsure.sent) == (1, 0)
        assert web.sql("SELECT status FROM notices") == [("sending",)]
        outbox = deliver_notices(
            db, OutboxTransport(web.settings.outbox_dir), sender="x@example.org", clock=lambda: now
        )
    finally:
        db.conn.close()
    assert outbox.sent == 1  # the outbox knew it had no such file: handed over once
    assert len(web.messages_to("crash@example.org")) == 1
    assert web.sql("SELECT status FROM notices") == [("sent",)]


def test_a_box_posted_to_the_app_on_its_own_host_is_taken(web: Web) -> None:
    """Under ``policyfeed serve`` on a laptop the page and the app share the local address,
    which is not the configured site's: a same-origin post is no forgery."""
    answer = web.client.post(
        "/subscribe",
        data={"email": "local@example.org", "box": "1"},
        headers={"Origin": "http://localhost"},
        base_url="http://localhost",
        environ_base={"REMOTE_ADDR": "192.0.2.5"},
    )
    assert web.sender.wait(30)
    assert answer.status_code == 200
    assert len(web.messages_to("local@example.org")) == 1
    forged = web.client.post(
        "/subscribe",
        data={"email": "local2@example.org", "box": "1"},
        headers={"Origin": "http://localhost:8001"},
        base_url="http://localhost",
    )
    assert forged.status_code == 403
