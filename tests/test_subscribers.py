"""Subscribers and chapters: address checks, all-or-nothing CSV import, merging, data export."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from policyfeed.audience.subscribers import (
    add_chapter,
    add_subscriber,
    export_subscriber,
    import_subscribers,
    normalize_email,
    remove_subscriber,
    unsubscribe,
)
from policyfeed.errors import ConflictError, InputError, NotFoundError
from policyfeed.store import subscribers as store


@pytest.fixture
def topics_db(db: sqlite_utils.Database) -> sqlite_utils.Database:
    with db.conn:
        db.conn.executemany(
            "INSERT INTO topics (slug, name) VALUES (?, ?)",
            [
                ("itu-wcit", "ITU / WCIT"),
                ("ietf", "IETF"),
                ("internet-governance", "Internet governance"),
            ],
        )
    return db


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows(db: sqlite_utils.Database) -> list[tuple[str, str, str | None, str]]:
    return [(s.email, s.name, s.chapter, s.status) for s in store.list_subscribers(db)]


# --- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("ana@example.org", "ana@example.org"),
        ("  Ana.Silva+policy@Example.ORG ", "Ana.Silva+policy@example.org"),
        ("o'brien@example.co.uk", "o'brien@example.co.uk"),
        ("zoe@bücher.example", "zoe@xn--bcher-kva.example"),
    ],
)
def test_addresses_are_kept_with_a_lower_case_domain(given: str, stored: str) -> None:
    assert normalize_email(given) == stored


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ana",
        "ana@",
        "@example.org",
        "ana@example",
        "ana@@example.org",
        "ana silva@example.org",
        "Ana <ana@example.org>",
        "ana..silva@example.org",
        ".ana@example.org",
        "ana@-example.org",
        "ana@example..org",
        "ana@127.0.0.1",
        "ana@example.org\r\nBcc: everyone@example.org",
        "a" * 65 + "@example.org",
    ],
)
def test_anything_but_one_plain_address_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_email(bad)


# --- chapters ----------------------------------------------------------------------------------


def test_a_chapter_filters_existing_topics_given_by_name_or_slug(
    topics_db: sqlite_utils.Database,
) -> None:
    chapter = add_chapter(
        topics_db, slug="geneva", name="Geneva", intro="From Geneva.", topics=["ITU / WCIT", "ietf"]
    )
    assert (chapter.slug, chapter.name, chapter.intro) == ("geneva", "Geneva", "From Geneva.")
    assert chapter.topics == ["ietf", "itu-wcit"]


def test_a_chapter_without_topics_gets_every_post(topics_db: sqlite_utils.Database) -> None:
    assert add_chapter(topics_db, slug="all", name="Everyone").topics == []


def test_a_misspelt_topic_is_refused_and_nothing_is_created(
    topics_db: sqlite_utils.Database,
) -> None:
    with pytest.raises(InputError, match=r"unknown topic 'IUT / WCIT' \(known: ietf, "):
        add_chapter(topics_db, slug="geneva", name="Geneva", topics=["IUT / WCIT"])
    assert store.list_chapters(topics_db) == []


def test_a_second_chapter_with_the_same_slug_is_a_conflict(
    topics_db: sqlite_utils.Database,
) -> None:
    add_chapter(topics_db, slug="geneva", name="Geneva")
    with pytest.raises(ConflictError, match="already exists"):
        add_chapter(topics_db, slug="geneva", name="Other")


@pytest.mark.parametrize(("slug", "name"), [("Geneva!", "Geneva"), ("geneva", "  ")])
def test_a_chapter_needs_a_slug_and_a_name(
    topics_db: sqlite_utils.Database, slug: str, name: str
) -> None:
    with pytest.raises(InputError):
        add_chapter(topics_db, slug=slug, name=name)


# --- adding and leaving ----------------------------------------------------------------------


def test_an_added_subscriber_is_active_in_their_chapter(
    topics_db: sqlite_utils.Database, now: datetime
) -> None:
    add_chapter(topics_db, slug="geneva", name="Geneva")
    added = add_subscriber(topics_db, "Ana@Example.org", now=now, name="Ana", chapter="geneva")
    assert (added.email, added.name, added.chapter, added.status) == (
        "Ana@example.org",
        "Ana",
        "geneva",
        "active",
    )
    assert added.created_at == now


def test_the_same_address_in_another_case_is_the_same_subscriber(
    db: sqlite_utils.Database, now: datetime
) -> None:
    add_subscriber(db, "ana@example.org", now=now)
    with pytest.raises(ConflictError, match="already subscribed"):
        add_subscriber(db, "ANA@example.org", now=now)


def test_an_unknown_chapter_is_refused(db: sqlite_utils.Database, now: datetime) -> None:
    with pytest.raises(InputError, match="no chapter 'nowhere'"):
        add_subscriber(db, "ana@example.org", now=now, chapter="nowhere")
    assert rows(db) == []


def test_someone_who_unsubscribed_comes_back_only_with_resubscribe(
    db: sqlite_utils.Database, now: datetime
) -> None:
    add_subscriber(db, "ana@example.org", now=now)
    assert unsubscribe(db, "ana@example.org", now=now) is True
    with pytest.raises(ConflictError, match="--resubscribe"):
        add_subscriber(db, "ana@example.org", now=now)
    back = add_subscriber(db, "ana@example.org", now=now + timedelta(days=1), resubscribe=True)
    assert (back.status, back.unsubscribed_at) == ("active", None)


def test_unsubscribing_twice_keeps_the_first_time(db: sqlite_utils.Database, now: datetime) -> None:
    add_subscriber(db, "ana@example.org", now=now)
    unsubscribe(db, "ana@example.org", now=now)
    assert unsubscribe(db, "ana@example.org", now=now + timedelta(days=3)) is False
    assert store.get_subscriber(db, "ana@example.org").unsubscribed_at == now


def test_removing_a_subscriber_forgets_them(db: sqlite_utils.Database, now: datetime) -> None:
    add_subscriber(db, "ana@example.org", now=now)
    remove_subscriber(db, "ana@example.org")
    assert store.find_subscriber(db, "ana@example.org") is None
    with pytest.raises(NotFoundError):
        remove_subscriber(db, "ana@example.org")


# --- CSV import --------------------------------------------------------------------------------


def test_a_csv_import_adds_everyone_with_their_chapter(
    topics_db: sqlite_utils.Database, now: datetime, tmp_path: Path
) -> None:
    add_chapter(topics_db, slug="geneva", name="Geneva")
    source = write_csv(
        tmp_path / "members.csv",
        "\ufeffEmail,Name,Chapter\r\n"
        "ana@example.org,Ana Silva,geneva\r\n"
        "zoe@example.org,Zoë Müller,\r\n",
    )
    result = import_subscribers(topics_db, source, now=now)
    assert (result.total, result.created, result.updated) == (2, 2, 0)
    assert rows(topics_db) == [
        ("ana@example.org", "Ana Silva", "geneva", "active"),
        ("zoe@example.org", "Zoë Müller", None, "active"),
    ]


def test_a_bad_address_stops_the_import_naming_its_line_and_nothing_is_written(
    db: sqlite_utils.Database, now: datetime, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "members.csv", "email,name\nana@example.org,Ana\nnot-an-address,Bob\n"
    )
    with pytest.raises(InputError, match=r"members.csv, line 3: 'not-an-address' is not"):
        import_subscribers(db, source, now=now)
    assert rows(db) == []


def test_an_unknown_chapter_stops_the_import_naming_its_line(
    db: sqlite_utils.Database, now: datetime, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "m.csv", "email,chapter\nana@example.org,\nbob@example.org,mars\n"
    )
    with pytest.raises(InputError, match=r"m.csv, line 3: no chapter 'mars'"):
        import_subscribers(db, source, now=now)
    assert rows(db) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name\nAna\n", "header with an email column"),
        ("email,phone\nana@example.org,123\n", "unknown column(s) phone"),
        ("email,name\nana@example.org,Ana,extra\n", "line 2: more fields than the header"),
        # A file cut short inside a quoted field was imported as if it were whole.
        (
            'email,name\nana@example.org,Ana\nbob@example.org,Bob\ncarl@example.org,"Carl',
            "line 4: malformed CSV: unexpected end of data",
        ),
        ('email,name\nana@example.org,"An"a\n', "line 2: malformed CSV: ',' expected"),
    ],
)
def test_a_csv_of_the_wrong_shape_is_refused(
    db: sqlite_utils.Database, now: datetime, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_subscribers(db, write_csv(tmp_path / "m.csv", text), now=now)
    assert rows(db) == []


def test_rows_for_the_same_address_are_merged(
    topics_db: sqlite_utils.Database, now: datetime, tmp_path: Path
) -> None:
    add_chapter(topics_db, slug="geneva", name="Geneva")
    source = write_csv(
        tmp_path / "m.csv",
        "email,name,chapter\nana@example.org,,geneva\nANA@EXAMPLE.org,Ana Silva,\n\n",
    )
    result = import_subscribers(topics_db, source, now=now)
    assert (result.total, result.created) == (1, 1)
    assert rows(topics_db) == [("ana@example.org", "Ana Silva", "geneva", "active")]


def test_duplicates_that_contradict_each_other_are_refused_naming_both_lines(
    db: sqlite_utils.Database, now: datetime, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "m.csv", "email,name\nana@example.org,Ana\nana@example.org,Anna\n"
    )
    with pytest.raises(
        InputError, match=r"line 3: ana@example.org has name 'Anna' here but 'Ana' on line 2"
    ):
        import_subscribers(db, source, now=now)


def test_reimporting_updates_names_and_never_brings_back_who_unsubscribed(
    db: sqlite_utils.Database, now: datetime, tmp_path: Path
) -> None:
    add_subscriber(db, "ana@example.org", now=now, name="Ana")
    add_subscriber(db, "bob@example.org", now=now, name="Bob")
    add_subscriber(db, "cy@example.org", now=now, name="Cy")
    unsubscribe(db, "bob@example.org", now=now)
    source = write_csv(
        tmp_path / "m.csv",
        "email,name\nana@example.org,Ana Silva\nbob@example.org,Bob\ncy@example.org,Cy\n",
    )
    result = import_subscribers(db, source, now=now + timedelta(days=1))
    assert (result.created, result.updated, result.unchanged, result.not_resubscribed) == (
        0,
        1,
        2,
        1,
    )
    assert rows(db) == [
        ("ana@example.org", "Ana Silva", None, "active"),
        ("bob@example.org", "Bob", None, "unsubscribed"),
        ("cy@example.org", "Cy", None, "active"),
    ]


def test_a_file_that_is_not_utf8_is_refused(
    db: sqlite_utils.Database, now: datetime, tmp_path: Path
) -> None:
    source = tmp_path / "m.csv"
    source.write_bytes("email,name\nzoe@example.org,Zo\xeb\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        import_subscribers(db, source, now=now)


# --- a member's data request -------------------------------------------------------------------


def test_export_holds_everything_stored_about_one_subscriber(
    topics_db: sqlite_utils.Database, now: datetime
) -> None:
    add_chapter(topics_db, slug="geneva", name="Geneva")
    add_subscriber(topics_db, "ana@example.org", now=now, name="Ana", chapter="geneva")
    add_subscriber(topics_db, "bob@example.org", now=now, name="Bob")
    unsubscribe(topics_db, "ana@example.org", now=now + timedelta(days=1))
    assert export_subscriber(topics_db, "ANA@example.org") == {
        "email": "ana@example.org",
        "name": "Ana",
        "chapter": {"slug": "geneva", "name": "Geneva"},
        "topics": None,  # what the chapter gets
        "status": "unsubscribed",
        "subscribed_at": "2012-07-30T12:00:00Z",
        "confirmed_at": "2012-07-30T12:00:00Z",
        "updated_at": "2012-07-31T12:00:00Z",
        "unsubscribed_at": "2012-07-31T12:00:00Z",
        "consents": [
            {
                "method": "operator",
                "source": "policyfeed subscribers add",
                "text": "",
                "name": "Ana",
                "chapter": "geneva",
                "requested_at": "2012-07-30T12:00:00Z",
                "ip": "",
                "user_agent": "",
                "confirmed_at": "2012-07-30T12:00:00Z",
                "confirm_ip": "",
                "confirm_user_agent": "",
            }
        ],
        "deliveries": [],
        "bounces": [],
    }


def test_exporting_an_unknown_address_is_not_found(db: sqlite_utils.Database) -> None:
    with pytest.raises(NotFoundError, match="no subscriber"):
        export_subscriber(db, "nobody@example.org")
