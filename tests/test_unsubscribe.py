"""The unsubscribe endpoint, in process (werkzeug's test client): what it shows and what it
changes, and that every answer says what is true. The same behaviour over real HTTP to
``serve`` is in test_unsubscribe_serve.py."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from policyfeed.audience.tokens import make_token
from policyfeed.config import Settings
from policyfeed.errors import ConfigError
from policyfeed.store import open_db
from policyfeed.web.app import Endpoint, SiteApp, make_app

WHEN = datetime(2012, 8, 1, 9, 30, tzinfo=UTC)
ONE_CLICK = {
    "data": "List-Unsubscribe=One-Click",
    "content_type": "application/x-www-form-urlencoded",
}


def add_subscriber(db_path: Path, email: str, status: str = "active") -> int:
    db = open_db(db_path)
    try:
        with db.conn:
            cursor = db.conn.execute(
                "INSERT INTO subscribers (email, status, created_at, updated_at) "
                "VALUES (?, ?, '2012-07-01T00:00:00Z', '2012-07-01T00:00:00Z')",
                (email, status),
            )
        return int(cursor.lastrowid or 0)
    finally:
        db.conn.close()


def subscriber_row(db_path: Path, subscriber_id: int) -> tuple[str, str | None, str]:
    """Read with a fresh connection: what any other process sees (i.e. committed)."""
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT status, unsubscribed_at, updated_at FROM subscribers WHERE id = ?",
            (subscriber_id,),
        ).fetchone()
    return row[0], row[1], row[2]


@pytest.fixture
def site(settings: Settings) -> Settings:
    return dataclasses.replace(settings, secret="unsubscribe-key-of-the-tests")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "list.db"
    open_db(path).conn.close()
    return path


@pytest.fixture
def ada(db_path: Path) -> int:
    return add_subscriber(db_path, "ada@example.org")


def make_unsubscribe_app(
    settings: Settings, db_path: Path, *, now: Any = lambda: WHEN, **options: Any
) -> SiteApp:
    """The site's app with an empty site folder: only its endpoints answer."""
    folder = db_path.parent / "public"
    folder.mkdir(exist_ok=True)
    return make_app(settings, db_path, folder, now=now, **options)


@pytest.fixture
def client(site: Settings, db_path: Path) -> Iterator[Client]:
    yield Client(make_unsubscribe_app(site, db_path, now=lambda: WHEN))


def text_of(response: Any) -> str:
    """The page's words, tags and line breaks aside."""
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


def token_for(site: Settings, subscriber_id: int) -> str:
    return make_token(site.secret, subscriber_id, site.list_identifier)


def test_get_shows_a_confirmation_page_with_a_post_button_and_changes_nothing(
    client: Client, site: Settings, db_path: Path, ada: int
) -> None:
    token = token_for(site, ada)
    response = client.get(f"/unsubscribe?t={token}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<form method="post" action="/unsubscribe?t=' + token + '"' in page
    assert '<button type="submit">Unsubscribe</button>' in page
    assert "ada@example.org" not in page
    assert subscriber_row(db_path, ada)[0] == "active"


def test_head_changes_nothing_either(
    client: Client, site: Settings, db_path: Path, ada: int
) -> None:
    response = client.head(f"/unsubscribe?t={token_for(site, ada)}")
    assert response.status_code == 200
    assert subscriber_row(db_path, ada)[0] == "active"


def test_post_unsubscribes_at_once_and_the_change_is_committed(
    client: Client, site: Settings, db_path: Path, ada: int
) -> None:
    response = client.post(f"/unsubscribe?t={token_for(site, ada)}")
    assert response.status_code == 200
    assert "You are unsubscribed" in response.get_data(as_text=True)
    assert subscriber_row(db_path, ada) == (
        "unsubscribed",
        "2012-08-01T09:30:00Z",
        "2012-08-01T09:30:00Z",
    )


def test_the_rfc8058_one_click_post_unsubscribes_without_cookies(
    client: Client, site: Settings, db_path: Path, ada: int
) -> None:
    response = client.post(f"/unsubscribe?t={token_for(site, ada)}", **ONE_CLICK)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert subscriber_row(db_path, ada)[0] == "unsubscribed"


def test_the_confirmation_forms_post_with_the_token_in_the_body_unsubscribes(
    client: Client, site: Settings, db_path: Path, ada: int
) -> None:
    response = client.post("/unsubscribe", data={"t": token_for(site, ada)})
    assert response.status_code == 200
    assert subscriber_row(db_path, ada)[0] == "unsubscribed"


def test_a_second_post_is_harmless_keeps_the_first_time_and_says_so(
    site: Settings, db_path: Path, ada: int
) -> None:
    token = token_for(site, ada)
    first = Client(make_unsubscribe_app(site, db_path, now=lambda: WHEN))
    later = Client(
        make_unsubscribe_app(site, db_path, now=lambda: datetime(2012, 9, 1, tzinfo=UTC))
    )
    answers = [first.post(f"/unsubscribe?t={token}", **ONE_CLICK)]
    answers.append(later.post(f"/unsubscribe?t={token}", **ONE_CLICK))
    assert [a.status_code for a in answers] == [200, 200]
    assert "You are unsubscribed" in text_of(answers[0])
    assert "You are already unsubscribed" in text_of(answers[1])
    assert "on 1 August 2012" in text_of(answers[1])  # the first time, in the site's zone
    assert subscriber_row(db_path, ada)[1] == "2012-08-01T09:30:00Z"


def test_the_link_of_a_member_who_already_left_says_so_without_a_button(
    client: Client, site: Settings, db_path: Path
) -> None:
    gone = add_subscriber(db_path, "left@example.org", status="unsubscribed")
    response = client.get(f"/unsubscribe?t={token_for(site, gone)}")
    assert response.status_code == 200
    assert "You are already unsubscribed" in text_of(response)
    assert "<form" not in response.get_data(as_text=True)


FORGERIES = [
    pytest.param(lambda s, sid: f"{sid}.AAAAAAAAAAAAAAAAAAAAAAAA", id="made-up mac"),
    pytest.param(lambda s, sid: make_token("another key", sid, s.list_identifier), id="wrong key"),
    pytest.param(lambda s, sid: make_token(s.secret, sid, "other.list"), id="other list"),
    pytest.param(lambda s, sid: make_token(s.secret, sid, s.list_identifier)[:-3], id="cut short"),
    pytest.param(lambda s, sid: f"{sid}", id="bare id"),
    pytest.param(lambda s, sid: "", id="missing"),
    pytest.param(lambda s, sid: "%00%ff<script>", id="garbage"),
]


@pytest.mark.parametrize("make_forged", FORGERIES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_link_that_is_not_valid_says_so_with_how_to_leave_and_changes_nothing(
    client: Client, site: Settings, db_path: Path, ada: int, make_forged: Any, method: str
) -> None:
    response = client.open(f"/unsubscribe?t={make_forged(site, ada)}", method=method, **ONE_CLICK)
    assert response.status_code == 400
    text = text_of(response)
    assert "This unsubscribe link is not valid" in text
    assert "Nothing has changed" in text
    assert "unsubscribed" not in text.replace("Unsubscribe link", "")
    page = response.get_data(as_text=True)
    assert 'href="mailto:policy-editor@example.org?subject=Unsubscribe"' in page
    assert "<form" not in page
    assert subscriber_row(db_path, ada)[0] == "active"


def test_a_link_that_is_not_valid_offers_a_fresh_link_when_the_app_has_that_page(
    site: Settings, db_path: Path, ada: int
) -> None:
    # Without the sign-up's pages (signup.enabled = false) there is no such page to offer.
    site = dataclasses.replace(site, signup_enabled=False)
    without = Client(make_unsubscribe_app(site, db_path))
    assert "/preferences/link" not in without.get("/unsubscribe?t=x").get_data(as_text=True)

    def ask_for_link(request: Any, web: Any) -> Any:
        return web.page("web/error.html", code=200, title="Get a link", message="")

    extra = [Endpoint("/preferences/link", ask_for_link, methods=("GET", "POST"))]
    with_page = Client(make_unsubscribe_app(site, db_path, endpoints=extra))
    page = with_page.get("/unsubscribe?t=x").get_data(as_text=True)
    assert 'href="/preferences/link"' in page
    assert with_page.get("/preferences/link").status_code == 200


def test_the_sign_ups_page_for_a_fresh_link_is_offered_when_a_link_is_not_valid(
    client: Client,
) -> None:
    page = client.get("/unsubscribe?t=x").get_data(as_text=True)
    assert 'href="/preferences/link"' in page
    assert "Get a link to your preferences" in client.get("/preferences/link").get_data(
        as_text=True
    )


def test_the_genuine_link_of_a_member_removed_since_says_they_are_not_on_the_list(
    client: Client, site: Settings, db_path: Path, ada: int
) -> None:
    for method in ("GET", "POST"):
        response = client.open(f"/unsubscribe?t={token_for(site, ada + 1000)}", method=method)
        assert response.status_code == 200
        assert "You are not on the list any more" in text_of(response)
        assert "<form" not in response.get_data(as_text=True)
    assert subscriber_row(db_path, ada)[0] == "active"


def test_the_app_refuses_to_start_without_a_secret(settings: Settings, db_path: Path) -> None:
    assert settings.secret == ""
    with pytest.raises(ConfigError, match="POLICYFEED_SECRET is not set"):
        make_unsubscribe_app(settings, db_path)


def test_the_demo_mode_checks_links_with_the_development_key_only(
    settings: Settings, db_path: Path, ada: int
) -> None:
    from policyfeed.audience.subscribers import DEVELOPMENT_SECRET

    client = Client(make_unsubscribe_app(settings, db_path, demo=True))
    guessed = make_token("whatever was used to send", ada, settings.list_identifier)
    assert client.post(f"/unsubscribe?t={guessed}").status_code == 400
    assert subscriber_row(db_path, ada)[0] == "active"
    outbox_link = make_token(DEVELOPMENT_SECRET, ada, settings.list_identifier)
    assert client.post(f"/unsubscribe?t={outbox_link}").status_code == 200
    assert subscriber_row(db_path, ada)[0] == "unsubscribed"


def test_with_a_secret_the_development_key_is_refused_even_in_demo_mode(
    site: Settings, db_path: Path, ada: int
) -> None:
    from policyfeed.audience.subscribers import DEVELOPMENT_SECRET

    client = Client(make_unsubscribe_app(site, db_path, demo=True))
    token = make_token(DEVELOPMENT_SECRET, ada, site.list_identifier)
    assert client.post(f"/unsubscribe?t={token}").status_code == 400
    assert subscriber_row(db_path, ada)[0] == "active"


def test_a_bounced_address_that_asks_to_leave_is_recorded_as_unsubscribed(
    client: Client, site: Settings, db_path: Path
) -> None:
    carol = add_subscriber(db_path, "carol@example.org", status="bounced")
    client.post(f"/unsubscribe?t={token_for(site, carol)}")
    assert subscriber_row(db_path, carol)[0] == "unsubscribed"


def test_when_the_change_cannot_be_recorded_the_answer_is_503_not_a_false_done(
    site: Settings, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such.db"
    client = Client(make_unsubscribe_app(site, missing, now=lambda: WHEN))
    response = client.post(f"/unsubscribe?t={token_for(site, 1)}", **ONE_CLICK)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert "You are unsubscribed" not in response.get_data(as_text=True)
    assert "nothing has changed" in text_of(response)
    assert not missing.exists()


def test_when_the_database_cannot_be_read_the_link_page_is_503_too(
    site: Settings, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database" * 100)
    client = Client(make_unsubscribe_app(site, broken, now=lambda: WHEN))
    for method in ("GET", "POST"):
        response = client.open(f"/unsubscribe?t={token_for(site, 1)}", method=method)
        assert response.status_code == 503, method
        assert "unsubscribed" not in text_of(response).lower()


def test_a_token_that_is_not_genuine_is_never_written_into_the_page(client: Client) -> None:
    page = client.get("/unsubscribe?t=%22%3E%3Cscript%3Ealert(1)%3C/script%3E").get_data(
        as_text=True
    )
    assert "<script>" not in page
    assert "alert(1)" not in page


def test_the_genuine_token_in_the_form_is_escaped_and_quoted(
    client: Client, site: Settings, ada: int
) -> None:
    token = token_for(site, ada)
    page = client.get(f"/unsubscribe?t={token}").get_data(as_text=True)
    assert f'<input type="hidden" name="t" value="{token}">' in page


def test_the_pages_are_not_cached_indexed_or_leaked_in_a_referer(
    client: Client, site: Settings, ada: int
) -> None:
    for response in (
        client.get(f"/unsubscribe?t={token_for(site, ada)}"),
        client.post(f"/unsubscribe?t={token_for(site, ada)}"),
    ):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "noindex" in response.headers["X-Robots-Tag"]
        assert "form-action 'self'" in response.headers["Content-Security-Policy"]


def test_other_methods_are_not_allowed(
    client: Client, site: Settings, db_path: Path, ada: int
) -> None:
    response = client.delete(f"/unsubscribe?t={token_for(site, ada)}")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, POST"
    assert subscriber_row(db_path, ada)[0] == "active"


def test_an_oversized_body_is_refused_and_changes_nothing(
    client: Client, site: Settings, db_path: Path, ada: int
) -> None:
    response = client.post(
        "/unsubscribe",
        data={"t": token_for(site, ada), "padding": "x" * 100_000},
    )
    assert response.status_code == 413
    assert subscriber_row(db_path, ada)[0] == "active"


def test_templates_dir_overrides_the_default_pages(
    site: Settings, db_path: Path, tmp_path: Path, ada: int
) -> None:
    custom = tmp_path / "my-templates" / "web"
    custom.mkdir(parents=True)
    (custom / "unsubscribed.html").write_text("Goodbye from {{ site.title }}.")
    client = Client(
        make_unsubscribe_app(
            dataclasses.replace(site, templates_dir=custom.parent), db_path, now=lambda: WHEN
        )
    )
    response = client.post(f"/unsubscribe?t={token_for(site, ada)}")
    assert response.get_data(as_text=True) == f"Goodbye from {site.title}."
    assert subscriber_row(db_path, ada)[0] == "unsubscribed"
