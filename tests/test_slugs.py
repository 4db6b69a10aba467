"""Slugs for every script: topic names in Greek, Arabic, CJK or Cyrillic were refused ("no
letters or digits to make a slug from") and the first one aborted a whole import; a title in
Arabic needed --slug. ASCII text keeps the slugs it always had."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from policyfeed.cli import cli
from policyfeed.content.posts import parse_topics, slugify
from policyfeed.store import open_db
from policyfeed.store import posts as store

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        # What ASCII and accented Latin text always gave (the demo's topics among them).
        ("ITU / WCIT", "itu-wcit"),
        ("Internet governance", "internet-governance"),
        ("Intellectual property", "intellectual-property"),
        ("IETF 84 in Vancouver", "ietf-84-in-vancouver"),
        ("Café & Zoë Müller", "cafe-zoe-muller"),
        ("  --Trade   agreements--  ", "trade-agreements"),
        # Every other script.
        ("Κοινωνία της πληροφορίας", "koinonia-tis-pliroforias"),
        ("Интернет и общество", "internet-i-obshchestvo"),
        ("互联网治理", "hu-lian-wang-zhi-li"),
        ("インターネット", "intanetto"),
        ("한국어", "han-gug-eo"),
        ("الحوكمة", "lhwkmh"),
        ("Straße", "strasse"),
    ],
)
def test_slugs_for_every_script(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_the_demo_slugs_do_not_change() -> None:
    records = json.loads((ROOT / "demo" / "posts.json").read_text(encoding="utf-8"))
    topics = {slugify(name) for record in records for name in record.get("topics", [])}
    golden = {p.name for p in (ROOT / "tests" / "golden" / "feeds" / "topics").iterdir()}
    assert topics == golden
    for record in records:
        assert slugify(record["title"]).isascii()


def test_topics_may_choose_their_slug_in_a_record() -> None:
    topics = parse_topics([{"name": "Κοινωνία", "slug": "society"}, "IETF", "Κοινωνία"])
    assert [(t.slug, t.name) for t in topics] == [
        ("society", "Κοινωνία"),
        ("ietf", "IETF"),
        ("koinonia", "Κοινωνία"),
    ]
    with pytest.raises(ValueError, match="slug 'Not A Slug' must be"):
        parse_topics([{"name": "X", "slug": "Not A Slug"}])


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    return tmp_path


def test_an_import_in_several_scripts_goes_through_whole(site: Path) -> None:
    records = [
        {"title": "مستقبل الإنترنت", "date": "2012-07-20", "topics": ["الحوكمة"]},
        {"title": "Η κοινωνία της πληροφορίας", "date": "2012-07-21", "topics": ["Κοινωνία"]},
        {"title": "互联网治理论坛", "date": "2012-07-22", "topics": ["互联网治理", "IETF"]},
        {"title": "Интернет", "date": "2012-07-23", "topics": ["Общество"]},
    ]
    (site / "world.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(cli, ["posts", "import", "world.json"])
    assert result.exit_code == 0, result.output
    db = open_db(site / "posts.db")
    assert [p.slug for p in store.list_posts(db)] == [
        "internet", "hu-lian-wang-zhi-li-lun-tan", "i-koinonia-tis-pliroforias",
        "mstqbl-l-ntrnt",
    ]  # fmt: skip
    assert sorted(t.slug for t, _ in store.list_topics(db)) == [
        "hu-lian-wang-zhi-li", "ietf", "koinonia", "lhwkmh", "obshchestvo",
    ]  # fmt: skip
    built = CliRunner().invoke(cli, ["build"])
    assert built.exit_code == 0, built.output
    assert (site / "public" / "topics" / "koinonia" / "atom.xml").is_file()


def test_topics_add_chooses_a_slug_that_posts_then_use(site: Path) -> None:
    added = CliRunner().invoke(cli, ["topics", "add", "الحوكمة", "--slug", "governance-ar"])
    assert (added.exit_code, added.stdout) == (0, "Added topic governance-ar (الحوكمة)\n")
    post = CliRunner().invoke(
        cli, ["posts", "add", "--title", "مستقبل", "--topic", "الحوكمة", "--publish"]
    )
    assert post.exit_code == 0, post.output
    listed = CliRunner().invoke(cli, ["topics", "list"])
    assert listed.stdout.splitlines() == [
        "SLUG           POSTS  NAME",
        "governance-ar      1  الحوكمة",
    ]
    again = CliRunner().invoke(cli, ["topics", "add", "الحوكمة"])
    assert again.exit_code == 1 and "already" in again.stderr


@pytest.mark.parametrize(
    "other", ["net neutrality", "NET NEUTRALITY", "Net  Neutrality", "NET NEUTRALİTY"]
)
def test_topics_add_refuses_a_name_that_differs_from_a_topic_only_in_case(
    site: Path, other: str
) -> None:
    """Two topics "Net Neutrality" and "net neutrality" would split one subject: posts would
    get one or the other depending on how the name was typed, and a member following one would
    miss the other's posts."""
    first = CliRunner().invoke(cli, ["topics", "add", "Net Neutrality"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, ["topics", "add", other, "--slug", "nn2"])
    if other == "NET NEUTRALİTY":  # a dotted capital I is another letter: another name
        assert again.exit_code == 0, again.output
        return
    assert again.exit_code == 1
    refused = "Error: there is a topic 'Net Neutrality' already (slug 'net-neutrality')"
    if other == "Net  Neutrality":  # cleaned to the very same name
        assert again.stderr == refused + "\n"
    else:
        assert again.stderr == (
            f"{refused}; names that differ only in case or spaces are one topic\n"
        )
    listed = CliRunner().invoke(cli, ["topics", "list"])
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["net-neutrality"]


def test_a_topic_without_any_letter_asks_for_a_slug(site: Path) -> None:
    result = CliRunner().invoke(cli, ["posts", "add", "--title", "x", "--topic", "+++"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: topic '+++' has no letters or digits to make a slug from; create it with a "
        "slug first: policyfeed topics add '+++' --slug SLUG\n"
    )
    assert CliRunner().invoke(cli, ["topics", "add", "+++", "--slug", "plus"]).exit_code == 0
    assert (
        CliRunner().invoke(cli, ["posts", "add", "--title", "x", "--topic", "+++"]).exit_code == 0
    )
