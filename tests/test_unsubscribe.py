"""The unsubscribe endpoint, in process (werkzeug's test client): what it shows and what it
changes. The same behaviour over real HTTP to ``serve`` is in test_unsubscribe_serve.py."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from werkzeug.test import Client

from policyfeed.audience.tokens import make_token
from policyfeed.audience.unsubscribe import make_unsubscribe_app
from policyfeed.config import Settings
from policyfeed.store import open_db

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
    return dataclasses.replace(settings, secret="unsubscribe-key")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "list.db"
    open_db(path).conn.close()
    return path


@pytest.fixture
def ada(db_path: Path) -> int:
    return add_subscriber(db_path, "ada@example.org")


@pytest.fixture
def client(site: Settings, db_path: Path) -> Iterator[Client]:
    yield Client(make_unsubscribe_app(site, db_path, now=lambda: WHEN))


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


def test_a_second_post_is_harmless_and_keeps_the_first_time(
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
    assert answers[0].get_data() == answers[1].get_data()
    assert subscriber_row(db_path, ada)[1] == "2012-08-01T09:30:00Z"


@pytest.mark.parametrize(
    "make_forged",
    [
        pytest.param(lambda s, sid: f"{sid}.AAAAAAAAAAAAAAAAAAAAAAAA", id="made-up mac"),
        pytest.param(
            lambda s, sid: make_token("another key", sid, s.list_identifier), id="wrong key"
        ),
        pytest.param(lambda s, sid: make_token(s.secret, sid, "other.list"), id="other list"),
        pytest.param(lambda s, sid: f"{sid}", id="bare id"),
        pytest.param(lambda s, sid: "", id="missing"),
        pytest.param(lambda s, sid: "%00%ff<script>", id="garbage"),
    ],
)
def test_a_forged_token_gets_the_same_neutral_answer_and_changes_nothing(
    client: Client, site: Settings, db_path: Path, ada: int, make_forged: object
) -> None:
    assert callable(make_forged)
    bob = add_subscriber(db_path, "bob@example.org")
    genuine = client.post(f"/unsubscribe?t={token_for(site, bob)}", **ONE_CLICK)
    forged = client.post(f"/unsubscribe?t={make_forged(site, ada)}", **ONE_CLICK)
    assert forged.status_code == genuine.status_code == 200
    assert forged.get_data() == genuine.get_data()
    assert subscriber_row(db_path, ada)[0] == "active"


def test_a_token_for_an_unknown_subscriber_changes_nothing(
    client: Client, site: Settings, db_path: Path, ada: int
) -> None:
    response = client.post(f"/unsubscribe?t={token_for(site, ada + 1000)}")
    assert response.status_code == 200
    assert "You are unsubscribed" in response.get_data(as_text=True)
    assert subscriber_row(db_path, ada)[0] == "active"


def test_without_a_secret_no_token_is_accepted(settings: Settings, db_path: Path, ada: int) -> None:
    token = make_token("whatever was used to send", ada, settings.list_identifier)
    client = Client(make_unsubscribe_app(settings, db_path, now=lambda: WHEN))
    assert settings.secret == ""
    assert client.post(f"/unsubscribe?t={token}").status_code == 200
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
    assert not missing.exists()


def test_the_token_is_escaped_in_the_page(client: Client) -> None:
    page = client.get("/unsubscribe?t=%22%3E%3Cscript%3Ealert(1)%3C/script%3E").get_data(
        as_text=True
    )
    assert "<script>" not in page
    assert "&#34;&gt;&lt;script&gt;" in page


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
    (custom / "unsubscribed.html").write_text("Goodbye from {{ site_title }}.")
    client = Client(
        make_unsubscribe_app(
            dataclasses.replace(site, templates_dir=custom.parent), db_path, now=lambda: WHEN
        )
    )
    response = client.post(f"/unsubscribe?t={token_for(site, ada)}")
    assert response.get_data(as_text=True) == f"Goodbye from {site.title}."
    assert subscriber_row(db_path, ada)[0] == "unsubscribed"
