"""Chapters in their own language: ``chapters add|edit --language/--post-language``, posts that
carry a language (added, edited, imported), each chapter's digest and its members' pages in the
chapter's language, and a chapter taking only the posts in its language (and those with none)."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner, Result

from conftest import DEMO_CONFIG
from policyfeed.cli import App, cli
from policyfeed.config import Settings
from policyfeed.publish import publish
from policyfeed.store import open_db
from policyfeed.store.migrations import MIGRATIONS, m018_languages
from signup_support import SITE_ORIGIN, Web, csrf_of, html_of, link_in, make_web, text_of

IETF = "IETF 84 in Vancouver"
BEIJING = "The Beijing Treaty"
ACTA = "ACTA and the TPPA"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    monkeypatch.setattr(App, "now", lambda self: now)


def run(db_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db_path), "--config", str(DEMO_CONFIG), *args])


def ok(db_path: Path, *args: str) -> str:
    result = run(db_path, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def slug_of(db_path: Path, title: str) -> str:
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT slug FROM posts WHERE title LIKE ?", [f"%{title}%"]).fetchone()
    assert row, title
    return str(row[0])


# --- the schema and the command line -----------------------------------------------------------


def test_m018_adds_the_languages_and_is_safe_to_run_again(tmp_path: Path) -> None:
    db = open_db(tmp_path / "new.db")
    for table, column in (("chapters", "language"), ("chapters", "post_language"),
                          ("posts", "language")):  # fmt: skip
        assert db[table].columns_dict[column] is str
    m018_languages(db)  # a crash before it was recorded: run again, nothing changes
    assert "m018_languages" in [m.name for m in MIGRATIONS._migrations]  # type: ignore[attr-defined]


def test_chapters_add_edit_and_list_show_the_languages(demo_db_path: Path) -> None:
    assert ok(
        demo_db_path, "chapters", "add", "quebec", "--name", "Chapitre du Québec",
        "--language", "fr", "--post-language", "FR",
    ) == "Added chapter quebec (every post; posts in fr or no language), in fr\n"  # fmt: skip
    assert "quebec            0  Chapitre du Québec (every post; posts in fr) [fr]\n" in ok(
        demo_db_path, "chapters", "list"
    )
    assert ok(demo_db_path, "chapters", "edit", "quebec", "--post-language", "") == (
        "Chapter quebec: in fr, posts in every language\n"
    )
    assert ok(demo_db_path, "chapters", "edit", "vancouver", "--language", "es") == (
        "Chapter vancouver: in es, posts in every language\n"
    )
    listed = {c["slug"]: c for c in json.loads(ok(demo_db_path, "chapters", "list", "--json"))}
    assert (listed["quebec"]["language"], listed["quebec"]["post_language"]) == ("fr", "")
    assert (listed["vancouver"]["language"], listed["switzerland"]["language"]) == ("es", "")


def test_a_language_that_is_no_tag_is_refused_and_nothing_changes(demo_db_path: Path) -> None:
    result = run(demo_db_path, "chapters", "add", "x", "--name", "X", "--language", "French!")
    assert result.exit_code == 1
    assert "a language is a tag like fr, es or pt-BR, not 'French!'" in result.output
    assert "quebec" not in ok(demo_db_path, "chapters", "list")

    result = run(demo_db_path, "chapters", "edit", "vancouver", "--language", "en gb")
    assert result.exit_code == 1 and "not 'en gb'" in result.output
    result = run(demo_db_path, "chapters", "edit", "vancouver")
    assert result.exit_code == 2 and "nothing to change" in result.output
    result = run(demo_db_path, "chapters", "edit", "nowhere", "--language", "fr")
    assert result.exit_code == 1 and "no chapter 'nowhere'" in result.output


def test_posts_carry_a_language_from_add_edit_and_imports(
    demo_db_path: Path, tmp_path: Path
) -> None:
    ok(demo_db_path, "posts", "add", "--title", "Gouvernance", "--language", "fr-CA")
    assert json.loads(ok(demo_db_path, "posts", "show", "gouvernance", "--json"))["language"] == (
        "fr-CA"
    )
    assert "language:  fr-CA\n" in ok(demo_db_path, "posts", "show", "gouvernance")
    ok(demo_db_path, "posts", "edit", "gouvernance", "--title", "Gouvernance de l'Internet")
    assert "language:  fr-CA" in ok(demo_db_path, "posts", "show", "gouvernance")  # kept

    records = tmp_path / "posts.json"
    records.write_text(
        json.dumps([{"title": "Política", "language": "es"}, {"title": "Sin idioma"}]),
        encoding="utf-8",
    )
    ok(demo_db_path, "posts", "import", str(records), "--language", "pt-BR")
    show = json.loads(ok(demo_db_path, "posts", "show", "politica", "--json"))
    assert show["language"] == "es"  # the record's own wins over --language
    assert json.loads(ok(demo_db_path, "posts", "show", "sin-idioma", "--json"))["language"] == (
        "pt-BR"
    )

    records.write_text(json.dumps([{"title": "A", "language": "Spanish please"}]), "utf-8")
    result = run(demo_db_path, "posts", "import", str(records))
    assert result.exit_code == 1
    assert "record 1" in result.output and "not 'Spanish please'" in result.output


def test_a_feed_gives_its_items_their_language(demo_db_path: Path, tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(
        """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">
  <title>Blog</title><id>tag:example.org,2012:blog</id><updated>2012-07-20T00:00:00Z</updated>
  <entry><title>Le sommet</title><id>tag:example.org,2012:1</id>
    <link href="https://example.org/le-sommet"/><updated>2012-07-20T00:00:00Z</updated>
    <content type="html">&lt;p&gt;Texte.&lt;/p&gt;</content></entry>
  <entry xml:lang="es"><title>La cumbre</title><id>tag:example.org,2012:2</id>
    <link href="https://example.org/la-cumbre"/><updated>2012-07-20T00:00:00Z</updated>
    <content type="html">&lt;p&gt;Texto.&lt;/p&gt;</content></entry>
</feed>""",
        encoding="utf-8",
    )
    rss = tmp_path / "rss.xml"
    rss.write_text(
        """<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>
<link>https://example.net/</link><description>B</description><language>ar</language>
<item><title>القمة</title><link>https://example.net/summit</link>
<pubDate>Fri, 20 Jul 2012 00:00:00 GMT</pubDate><description>نص</description></item>
</channel></rss>""",
        encoding="utf-8",
    )
    ok(demo_db_path, "posts", "import", str(feed))
    ok(demo_db_path, "posts", "import", str(rss))

    def language(slug: str) -> str:
        return str(json.loads(ok(demo_db_path, "posts", "show", slug, "--json"))["language"])

    assert (language("le-sommet"), language("la-cumbre"), language("summit")) == ("fr", "es", "ar")


# --- what members get ------------------------------------------------------------------------


@pytest.fixture
def web(settings: Settings, demo_db_path: Path, now: datetime, tmp_path: Path) -> Web:
    return make_web(settings, demo_db_path, now, tmp_path)


def publish_now(web: Web, now: datetime) -> None:
    db = open_db(web.db_path)
    try:
        result = publish(db, web.settings, now=now)
    finally:
        db.conn.close()
    assert result.status == "sent", result


def digest_to(web: Web, address: str) -> object:
    found = [m for m in web.messages_to(address) if m["Subject"].startswith("Public Policy #")]
    assert len(found) == 1
    return found[0]


def test_each_chapter_gets_its_digest_in_its_language_and_the_others_the_sites(
    web: Web, now: datetime
) -> None:
    ok(web.db_path, "chapters", "edit", "vancouver", "--language", "fr")
    ok(web.db_path, "chapters", "edit", "switzerland", "--language", "ar")

    publish_now(web, now)

    chen = digest_to(web, "chen.wei@example.org")
    assert '<html lang="fr" dir="ltr">' in html_of(chen)  # type: ignore[arg-type]
    assert "Lire en ligne" in html_of(chen) and "Read it online" not in html_of(chen)  # type: ignore[arg-type]
    assert "Vos préférences (nom, section, sujets, pause) :" in text_of(chen)  # type: ignore[arg-type]
    assert re.search(r" et \d+ autres?$", chen["Subject"])  # type: ignore[index]
    ana = digest_to(web, "ana.silva@example.org")
    assert 'dir="rtl"' in html_of(ana) and "اقرأه على الموقع" in html_of(ana)  # type: ignore[arg-type]
    watcher = digest_to(web, "policy-watch@example.org")  # no chapter: the site's language
    assert '<html lang="en" dir="ltr">' in html_of(watcher) and "Read it online" in html_of(watcher)  # type: ignore[arg-type]


def test_a_chapter_takes_the_posts_in_its_language_and_those_with_none(
    web: Web, now: datetime
) -> None:
    ok(web.db_path, "posts", "edit", slug_of(web.db_path, IETF), "--language", "en")
    ok(web.db_path, "posts", "edit", slug_of(web.db_path, BEIJING), "--language", "fr-CA")
    ok(web.db_path, "chapters", "edit", "vancouver", "--post-language", "fr")

    publish_now(web, now)

    chen = html_of(digest_to(web, "chen.wei@example.org"))  # type: ignore[arg-type]
    assert BEIJING in chen and ACTA in chen  # fr-CA is French; ACTA has no language
    assert IETF not in chen  # in English: not for this chapter
    assert IETF in html_of(digest_to(web, "policy-watch@example.org"))  # type: ignore[arg-type]


def test_members_pages_are_in_their_chapters_language(web: Web, now: datetime) -> None:
    ok(web.db_path, "chapters", "edit", "vancouver", "--language", "es")
    ok(web.db_path, "chapters", "edit", "switzerland", "--language", "ar")
    publish_now(web, now)

    chen = digest_to(web, "chen.wei@example.org")
    preferences = web.get(link_in(chen, "/preferences")).get_data(as_text=True)  # type: ignore[arg-type]
    assert '<html lang="es">' in preferences and "Tus preferencias" in preferences
    assert "Guardar los cambios" in preferences
    found = re.search(re.escape(SITE_ORIGIN) + r"(/unsubscribe\?t=[\w.~-]+)", text_of(chen))  # type: ignore[arg-type]
    assert found, text_of(chen)  # type: ignore[arg-type]
    page = web.get(found.group(1)).get_data(as_text=True)
    assert "¿Darte de baja de Public Policy?" in page
    answer = web.post(found.group(1), {"t": found.group(1).split("=", 1)[1]})
    assert "Te has dado de baja" in answer.get_data(as_text=True)

    ana = digest_to(web, "ana.silva@example.org")
    page = web.get(link_in(ana, "/preferences")).get_data(as_text=True)  # type: ignore[arg-type]
    root = lxml.html.document_fromstring(page)
    assert (root.get("lang"), root.get("dir")) == ("ar", "rtl")
    assert "تفضيلاتك" in page

    watcher = digest_to(web, "policy-watch@example.org")
    page = web.get(link_in(watcher, "/preferences")).get_data(as_text=True)  # type: ignore[arg-type]
    assert '<html lang="en">' in page and "Save changes" in page


def test_signing_up_for_a_chapter_answers_and_confirms_in_its_language(web: Web) -> None:
    ok(web.db_path, "chapters", "edit", "vancouver", "--language", "fr")

    answer = web.subscribe("lea@example.org", chapter="vancouver")

    assert answer.status_code == 200
    assert "Consultez votre boîte de réception" in answer.get_data(as_text=True)
    (message,) = web.messages_to("lea@example.org")
    assert message["Subject"] == "Veuillez confirmer votre abonnement à Public Policy"
    assert "Pour confirmer, ouvrez ce lien :" in text_of(message)
    link = link_in(message, "/confirm")
    page = web.get(link).get_data(as_text=True)
    assert "Confirmez votre abonnement" in page
    confirmed = web.post(link, {"t": link.split("=", 1)[1], "csrf": csrf_of(page)})
    assert "Vous êtes abonné" in confirmed.get_data(as_text=True)
    welcome = [m for m in web.messages_to("lea@example.org") if "Bienvenue" in m["Subject"]]
    assert len(welcome) == 1

    other = web.subscribe("max@example.org")  # no chapter: the site's language
    assert "Check your inbox" in other.get_data(as_text=True)


def test_the_answers_of_the_forms_are_in_the_members_language_and_escaped(
    web: Web, now: datetime
) -> None:
    ok(web.db_path, "chapters", "edit", "vancouver", "--language", "fr")
    publish_now(web, now)
    link = link_in(digest_to(web, "chen.wei@example.org"), "/preferences")  # type: ignore[arg-type]

    page = web.get(link).get_data(as_text=True)
    paused = web.post(link, {"csrf": csrf_of(page), "action": "pause"}).get_data(as_text=True)
    assert "La lettre est en pause : rien ne vous est envoyé" in paused
    stale = web.post(link, {"csrf": "old", "action": "resume"}).get_data(as_text=True)
    assert "Ce formulaire était trop ancien" in stale

    bad = web.subscribe("not an address <b>", chapter="vancouver").get_data(as_text=True)
    assert "Veuillez saisir une seule adresse e-mail" in bad
    assert "<b>" not in bad  # what the reader typed is shown escaped, never as markup
