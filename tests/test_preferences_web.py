"""A member's preferences page, reached from the signed link in every digest: name, chapter,
topics, pause, unsubscribe, and subscribing again through a fresh confirmation."""

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
    assert "Your preferences (name, chapter, topics, pause):" in text_of(ana)
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


# --- topics ------------------------------------------------------------------------------------

DEMO_TOPICS = {
    "intellectual-property": "Intellectual property",
    "internet-governance": "Internet governance",
    "itu-wcit": "ITU / WCIT",
    "ietf": "IETF",
    "trade-agreements": "Trade agreements",
}


def checkboxes(html: str) -> dict[str, tuple[str, bool]]:
    """The page's topic checkboxes: slug -> (its label's text, ticked)."""
    import lxml.html

    doc = lxml.html.fromstring(html)
    found = {}
    for box in doc.iterfind(".//input[@type='checkbox'][@name='topic']"):
        labels = doc.xpath(f"//label[@for='{box.get('id')}']")
        assert len(labels) == 1, box.get("id")
        found[box.get("value")] = (labels[0].text_content().strip(), box.get("checked") is not None)
    return found


def save_topics(web: Web, link: str, topics: list[str], **fields: str) -> object:
    page = web.get(link).get_data(as_text=True)
    data: dict[str, object] = {"csrf": csrf_of(page), "action": "save", **fields}
    data["topics_shown"] = "1"
    data["topic"] = topics
    return web.post(link, data)  # type: ignore[arg-type]


def chosen_topics(web: Web, address: str) -> list[str]:
    return [
        row[0]
        for row in web.sql(
            "SELECT t.slug FROM subscriber_topics st JOIN topics t ON t.id = st.topic_id "
            "JOIN subscribers s ON s.id = st.subscriber_id WHERE s.email = ? ORDER BY t.slug",
            (address,),
        )
    ]


def test_the_page_offers_every_topic_as_a_labelled_checkbox_none_ticked_at_first(
    web: Web, now: datetime
) -> None:
    publish_now(web, now)
    html = web.get(digest_link(web, "ana.silva@example.org")).get_data(as_text=True)
    assert checkboxes(html) == {slug: (name, False) for slug, name in DEMO_TOPICS.items()}
    assert "<legend>" in html  # the boxes are a group with a name
    assert "what your chapter gets" in html  # what ticking none means


def test_ticked_topics_are_saved_shown_ticked_and_the_next_issue_follows_them(
    web: Web, now: datetime, settings: Settings
) -> None:
    from site_support import save

    publish_now(web, now)  # issue 1: Ana (Switzerland) gets ITU / WCIT and governance posts
    link = digest_link(web, "ana.silva@example.org")
    saved = save_topics(web, link, ["trade-agreements", "ietf"], name="Ana", chapter="switzerland")
    assert status_line(saved) == "Your changes are saved."
    assert chosen_topics(web, "ana.silva@example.org") == ["ietf", "trade-agreements"]
    shown = checkboxes(saved.get_data(as_text=True))  # type: ignore[attr-defined]
    assert [slug for slug, (_, ticked) in shown.items() if ticked] == ["ietf", "trade-agreements"]

    db = open_db(web.db_path)
    try:
        later = now + NEXT_WEEK
        dated = later - timedelta(days=1)
        save(db, settings, "tpp-round", title="A new TPP round", date=dated,
             topics=["Trade agreements"], now=later)  # fmt: skip
        save(db, settings, "wcit-opens", title="WCIT opens in Dubai", date=dated,
             topics=["ITU / WCIT"], now=later)  # fmt: skip
    finally:
        db.conn.close()
    publish_now(web, later)
    second = [m for m in web.messages_to("ana.silva@example.org") if "#2" in m["Subject"]]
    assert len(second) == 1
    body = html_of(second[0])
    assert "A new TPP round" in body
    assert "WCIT opens in Dubai" not in body  # her chapter's topic, not one she chose
    zoe = [m for m in web.messages_to("zoe.muller@example.org") if "#2" in m["Subject"]]
    assert "WCIT opens in Dubai" in html_of(zoe[0])  # her chapter-mate chose nothing


def test_ticking_none_goes_back_to_what_the_chapter_gets(web: Web, now: datetime) -> None:
    publish_now(web, now)
    link = digest_link(web, "ana.silva@example.org")
    save_topics(web, link, ["ietf"], chapter="switzerland")
    assert chosen_topics(web, "ana.silva@example.org") == ["ietf"]
    save_topics(web, link, [], chapter="switzerland")
    assert chosen_topics(web, "ana.silva@example.org") == []


def test_a_form_without_the_topic_boxes_leaves_the_topics_alone(web: Web, now: datetime) -> None:
    publish_now(web, now)
    link = digest_link(web, "ana.silva@example.org")
    save_topics(web, link, ["ietf"], chapter="switzerland")
    act(web, link, "save", name="Ana S.", chapter="switzerland")  # a page from before topics
    assert chosen_topics(web, "ana.silva@example.org") == ["ietf"]


@pytest.mark.parametrize(
    "hostile",
    [
        ["no-such-topic"],
        ["ietf", "<script>alert(1)</script>"],
        ["ietf' OR 1=1 --", "ietf"],
        ["x" * 5000, "ietf"],
        ["IETF"],  # a name, not a slug: the form sends slugs
    ],
)
def test_unknown_or_hostile_topic_values_are_ignored_and_shown_nowhere(
    web: Web, now: datetime, hostile: list[str]
) -> None:
    publish_now(web, now)
    link = digest_link(web, "ana.silva@example.org")
    answer = save_topics(web, link, hostile, chapter="switzerland")
    html = answer.get_data(as_text=True)  # type: ignore[attr-defined]
    assert answer.status_code == 200  # type: ignore[attr-defined]
    assert status_line(answer) == "Your changes are saved."
    wanted = ["ietf"] if "ietf" in hostile else []
    assert chosen_topics(web, "ana.silva@example.org") == wanted
    for value in hostile:
        if value not in DEMO_TOPICS and value not in DEMO_TOPICS.values():
            assert value not in html and value[:40] not in html
    assert web.sql("SELECT count(*) FROM topics") == [(5,)]  # nothing made from the input


def test_topics_cannot_be_changed_without_the_form_token(web: Web, now: datetime) -> None:
    publish_now(web, now)
    link = digest_link(web, "ana.silva@example.org")
    refused = web.post(link, {"csrf": "", "action": "save", "topics_shown": "1", "topic": "ietf"})
    assert refused.status_code == 403
    assert chosen_topics(web, "ana.silva@example.org") == []


def test_an_unsubscribed_member_is_offered_no_topics(web: Web, now: datetime) -> None:
    publish_now(web, now)
    link = digest_link(web, "zoe.muller@example.org")
    left = act(web, link, "unsubscribe")
    assert checkboxes(left.get_data(as_text=True)) == {}  # type: ignore[attr-defined]
