"""Digests and pages in the chapter's language: the gettext catalogs are complete and compiled,
every email and web template renders in each shipped language with no English left, dates read
as the locale writes them, and a site can override a catalog like a template."""

from __future__ import annotations

import dataclasses
import gettext
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from digest_support import make_issue, make_post
from policyfeed.config import Settings
from policyfeed.digest.render import render_issue, site_context
from policyfeed.errors import ConfigError
from policyfeed.model import ChapterVariant, Topic
from policyfeed.templating import (
    SHIPPED_LANGUAGES,
    compile_po,
    format_date,
    format_number,
    render_template,
    translations,
)

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "templates" / "locales"
TRANSLATED = [language for language in SHIPPED_LANGUAGES if language != "en"]

# Words any sentence of the templates in English is bound to use; none is a French, Spanish or
# Arabic word, so one of them in a rendered page means a fixed string was left in English.
ENGLISH_WORDS = {
    "the", "you", "your", "this", "and", "of", "to", "is", "in", "from", "with", "issue",
    "read", "online", "post", "posts", "unsubscribe", "preferences", "subscribe", "link",
    "digest", "please", "nothing", "more", "member", "members", "approve", "news", "past",
    "welcome", "name", "address", "again", "list", "check", "get", "send", "back", "editor",
}  # fmt: skip


def po_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / "messages.po"


def read_catalog(language: str) -> Any:
    from babel.messages.pofile import read_po

    with po_path(language).open("rb") as handle:
        return read_po(handle)


def extracted_msgids() -> set[Any]:
    """The messages of the templates as they are now (what `make catalogs` extracts)."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: set[Any] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    assert found, "nothing extracted: babel.cfg does not find the templates"
    return found


def english_words(text: str) -> set[str]:
    text = re.sub(r"\S+://\S+|\S+@\S+|%%\w+%%", " ", text)  # links, addresses, placeholders
    return {word for word in re.findall(r"[A-Za-z]+", text) if word.lower() in ENGLISH_WORDS}


def visible_text(html: str) -> str:
    root = lxml.html.document_fromstring(html)
    for element in root.xpath("//style | //script | //code"):
        element.drop_tree()
    attributes = " ".join(root.xpath("//@alt | //@title | //@aria-label | //@placeholder"))
    return root.text_content() + " " + attributes


# --- the catalogs ------------------------------------------------------------------------------


def test_every_shipped_language_has_a_catalog_and_its_compiled_form() -> None:
    for language in SHIPPED_LANGUAGES:
        assert po_path(language).is_file(), language
        assert po_path(language).with_suffix(".mo").is_file(), language


@pytest.mark.parametrize("language", SHIPPED_LANGUAGES)
def test_every_message_of_the_templates_is_translated_and_none_is_fuzzy(language: str) -> None:
    catalog = read_catalog(language)
    messages = {(m.id if isinstance(m.id, str) else tuple(m.id)): m for m in catalog if m.id}
    wanted = extracted_msgids()
    assert sorted(map(str, wanted - set(messages))) == [], "run `make catalogs`"
    assert sorted(map(str, set(messages) - wanted)) == [], "obsolete messages: `make catalogs`"
    for msgid, message in messages.items():
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(form.strip() for form in forms), f"{language}: untranslated {msgid!r}"
        assert len(forms) == (catalog.num_plurals if isinstance(msgid, tuple) else 1)
        assert not message.fuzzy, f"{language}: fuzzy {msgid!r}"
        source = "".join(msgid) if isinstance(msgid, tuple) else msgid
        names = set(re.findall(r"%\((\w+)\)s", source))
        for form in forms:
            used = set(re.findall(r"%\((\w+)\)s", form))
            # A plural form may leave the number out ("منشور واحد"); nothing else may be lost.
            assert used <= names, f"{language}: {form!r} names what {msgid!r} does not"
            if not isinstance(msgid, tuple):
                assert used == names, f"{language}: {form!r} drops a value of {msgid!r}"
            form % dict.fromkeys(names, "x")  # well-formed: no stray %


@pytest.mark.parametrize("language", SHIPPED_LANGUAGES)
def test_the_committed_mo_file_is_the_po_file_compiled(language: str) -> None:
    fresh = gettext.GNUTranslations(io.BytesIO(compile_po(po_path(language))))
    committed = gettext.GNUTranslations(po_path(language).with_suffix(".mo").open("rb"))

    assert committed._catalog == fresh._catalog  # type: ignore[attr-defined]
    assert len(fresh._catalog) > 100  # type: ignore[attr-defined]


def test_the_shipped_catalogs_load_from_the_package() -> None:
    assert translations("fr").gettext("Read it online") == "Lire en ligne"
    assert translations("fr-CA").gettext("Read it online") == "Lire en ligne"  # falls back to fr
    assert translations("de").gettext("Read it online") == "Read it online"  # no catalog
    assert translations("ar").ngettext("%(num)s post", "%(num)s posts", 2) == "منشوران"


# --- dates and numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "3 December 2026"),
        ("fr", "3 décembre 2026"),
        ("es", "3 de diciembre de 2026"),
        ("ar", "3 ديسمبر 2026"),
        ("fr-CA", "3 décembre 2026"),
        ("xx", "3 December 2026"),  # no such locale: the English form
    ],
)
def test_dates_read_as_the_locale_writes_them(language: str, expected: str) -> None:
    moment = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

    assert format_date(moment, UTC, language) == expected


def test_numbers_read_as_the_locale_writes_them() -> None:
    assert format_number(1234, "en") == "1,234"
    assert format_number(1234, "fr") == "1\u202f234"
    assert format_number(12345, "es") == "12.345"
    assert format_number(7, "ar") == "7"  # Latin digits, as Babel's default numbering


# --- every template in every language ------------------------------------------------------------


def neutral(settings: Settings) -> Settings:
    """The demo's settings with values in no language, so only the templates' words remain."""
    return dataclasses.replace(
        settings,
        title="Zorglub",
        description="",
        postal_address="Rue Zyx 7, 1211 Zzz",
        signup_consent_text="Zyx zyx.",
        signup_enabled=True,
    )


def neutral_posts() -> list[Any]:
    return [
        make_post(
            f"zyx-{n}",
            title=f"Zyx {n}",
            summary="Zyx zyx zyx.",
            body_html="<p>Zyx <a href='https://example.org/zyx'>zyx</a>.</p><ul><li>Zyx</li></ul>",
            topics=[Topic("itu", "ITU")],
        )
        for n in range(3)
    ]


REVIEW = {
    "recipients": 12,
    "approve": "pf zz 1",
    "edit": "pf zy 1",
    "discard": "pf zx 1",
    "variants": [{"name": "Zeta", "url": "https://example.org/z", "posts": 2, "recipients": 3}],
    "preview_url": "https://example.org/preview/",
    "deadline": "2026-12-04 09:00",
}


def digests(settings: Settings, language: str) -> list[tuple[str, str]]:
    """Every shape of the digest in ``language``: HTML, text and subject of a chapter's variant
    with a note, the editor's copy for approval, summaries only, and nothing for a chapter."""
    chapter = ChapterVariant(slug="zeta", name="Zeta", intro="Zyx zyx.", language=language)
    issue = make_issue(note="Zyx *zyx* [zyx](https://example.org/).")
    shapes = [
        render_issue(issue, neutral_posts(), settings, chapter=chapter),
        render_issue(issue, neutral_posts(), settings, chapter=chapter, review=REVIEW),
        render_issue(issue, [], settings, chapter=chapter),
        render_issue(
            make_issue(),
            [make_post("huge", title="Zyx", body_html="<p>" + "Zyx zyx. " * 20000 + "</p>")],
            settings,
            chapter=chapter,
        ),
    ]
    assert shapes[3].summaries_only
    return [
        (name, part)
        for digest in shapes
        for name, part in (
            ("digest.html", visible_text(digest.html)),
            ("digest.txt", digest.text),
            ("subject.txt", digest.subject),
        )
    ]


def notices(settings: Settings, language: str) -> list[tuple[str, str]]:
    """The sign-up's messages (each kind, reason, with and without a chapter and a name)."""
    rendered = []
    for kind, reason in (("confirm", ""), ("welcome", ""), ("preferences", "signup"),
                         ("preferences", "request")):  # fmt: skip
        for chapter, name in ((None, ""), ({"name": "Zeta", "slug": "zeta"}, "Zoë")):
            context = {
                "site": site_context(settings, language),
                "subscriber": {"name": name, "email": "zz@example.org"},
                "chapter": chapter,
                "reason": reason,
                "expires": format_date(datetime(2026, 12, 3, tzinfo=UTC), UTC, language),
                "valid_days": 7,
                "preferences_url": "https://example.org/preferences?t=zz",
                "request_url": "https://example.org/preferences/link",
                "subscribe_url": "https://example.org/subscribe",
                "confirm_url": "https://example.org/confirm?t=zz",
                "consent_text": "Zyx zyx.",
            }
            for suffix in (".html", ".txt", "_subject.txt"):
                name_ = f"email/{kind}{suffix}"
                out = render_template(settings, name_, language=language, **context)
                rendered.append((name_, visible_text(out) if suffix == ".html" else out))
    return rendered


WEB_PAGES = sorted(p.name for p in (ROOT / "templates" / "web").glob("*.html"))


def web_pages(settings: Settings, language: str) -> list[tuple[str, str]]:
    from policyfeed.templating import text_direction

    base = {
        "site": {"title": "Zorglub", "description": "", "url": "https://example.org/",
                 "language": language, "dir": text_direction(language)},
        "root": "/",
        "feeds": [],
        "email": "zz@example.org", "action": "/zz", "token": "zz", "csrf": "zz",
        "subscribe_page": "/subscribe", "valid_days": 7, "preferences_url": "/preferences?t=zz",
        "welcomed": True, "code": 404, "title": "Zyx", "message": "Zyx zyx.",
        "signup": {"chapters": [{"slug": "zeta", "name": "Zeta"}], "consent_text": "Zyx."},
        "values": {"email": "", "name": "", "chapter": ""},
        "note": "", "error": "", "link_page": "/preferences/link", "minutes": 10,
        "since": format_date(datetime(2026, 12, 3, tzinfo=UTC), UTC, language),
        "contact": "zz@example.org", "preferences_link": "/preferences/link",
    }  # fmt: skip
    rendered = []
    for page in WEB_PAGES:
        if page == "base.html":
            continue
        statuses = ("active", "paused", "bounced", "unsubscribed")
        if "preferences" not in page:
            statuses = ("",)
        for status in statuses:
            member = {"email": "zz@example.org", "name": "", "chapter": "zeta", "status": status,
                      "topics": ["zyx"]}  # fmt: skip
            topics = [{"slug": "zyx", "name": "Zyx"}, {"slug": "zyy", "name": "Zyy"}]
            html = render_template(
                settings, f"web/{page}", language=language, **base, member=member, topics=topics
            )
            rendered.append((f"web/{page}", visible_text(html)))
    return rendered


def everything(settings: Settings, language: str) -> list[tuple[str, str]]:
    settings = neutral(settings)
    return digests(settings, language) + notices(settings, language) + web_pages(settings, language)


def test_the_english_check_finds_english(settings: Settings) -> None:
    """The check below would see a string left in English: each template's English renderings
    have some (a subject of one post has no fixed word, one of three has "and 2 more")."""
    found: dict[str, set[str]] = {}
    for name, text in everything(settings, "en"):
        found.setdefault(name, set()).update(english_words(text))
    assert [name for name, words in found.items() if not words] == []
    assert len(found) >= len(WEB_PAGES) - 1 + 3 + 9


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_email_and_web_template_renders_with_no_english_left(
    settings: Settings, language: str
) -> None:
    left = {
        name: sorted(english_words(text))
        for name, text in everything(settings, language)
        if english_words(text)
    }

    assert left == {}


def test_a_french_chapter_gets_its_digest_in_french(settings: Settings) -> None:
    chapter = ChapterVariant(slug="qc", name="Québec", language="fr")
    posts = [make_post("a", title="Zyx"), make_post("b", title="Zyy"), make_post("c")]
    issue = make_issue(note="Un mot.", created_at=datetime(2012, 7, 30, 12, tzinfo=UTC))

    digest = render_issue(issue, posts, settings, chapter=chapter)

    assert '<html lang="fr" dir="ltr">' in digest.html
    assert "Lire en ligne" in digest.html and "Read it online" not in digest.html
    assert "Le mot de la rédaction" in digest.html
    assert "30 juillet 2012" in digest.html and "29 juillet 2012" in digest.text
    assert "Lire en ligne :" in digest.text
    assert digest.subject.endswith("Zyx et 2 autres")


def test_an_arabic_chapter_gets_its_digest_right_to_left_and_mirrored(settings: Settings) -> None:
    chapter = ChapterVariant(slug="cairo", name="القاهرة", language="ar")
    digest = render_issue(make_issue(note="كلمة."), [make_post("a")], settings, chapter=chapter)
    root = lxml.html.document_fromstring(digest.html)

    assert root.get("dir") == "rtl" and root.get("lang") == "ar"
    assert root.body.get("dir") == "rtl"
    assert root.xpath("//table[contains(@class, 'wrapper')]")[0].get("dir") == "rtl"
    # Inlined by premailer, for clients that drop <style>: the note's bar is on the right.
    note = root.xpath("//div[contains(@class, 'note-box')]")[0].get("style")
    assert "border-right:4px solid #e0a800" in note.replace(": ", ":")
    assert "border-left:0" in note.replace(": ", ":")
    assert "اقرأه على الموقع" in digest.html and "&larr;" not in digest.html
    assert "\u2190" in digest.html  # the arrow points the way Arabic reads


def test_a_member_with_no_chapter_gets_the_site_language(settings: Settings) -> None:
    french_site = dataclasses.replace(settings, language="fr")

    digest = render_issue(make_issue(), [make_post("a")], french_site)

    assert '<html lang="fr"' in digest.html and "Lire en ligne" in digest.html


def test_an_unknown_language_gets_the_english_words_and_its_own_lang(settings: Settings) -> None:
    chapter = ChapterVariant(slug="berlin", name="Berlin", language="de")

    digest = render_issue(make_issue(), [make_post("a")], settings, chapter=chapter)

    assert '<html lang="de" dir="ltr">' in digest.html and "Read it online" in digest.html
    assert "29. Juli 2012" in digest.html  # Babel knows German dates, even without a catalog


# --- overriding a catalog ------------------------------------------------------------------------


def write_override(templates_dir: Path, language: str, text: str, suffix: str = ".po") -> Path:
    folder = templates_dir / "locales" / language / "LC_MESSAGES"
    folder.mkdir(parents=True)
    path = folder / f"messages{suffix}"
    path.write_text(text, encoding="utf-8")
    return path


OVERRIDE = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "Read it online"
msgstr "Lire sur le site"
"""


def test_a_site_overrides_a_message_and_keeps_the_rest_of_the_shipped_catalog(
    settings: Settings, tmp_path: Path
) -> None:
    templates_dir = tmp_path / "my-templates"
    write_override(templates_dir, "fr", OVERRIDE)
    site = dataclasses.replace(settings, templates_dir=templates_dir)
    chapter = ChapterVariant(slug="qc", name="Québec", language="fr")

    digest = render_issue(make_issue(note="Un mot."), [make_post("a")], site, chapter=chapter)

    assert "Lire sur le site" in digest.html and "Lire en ligne" not in digest.html
    assert "Le mot de la rédaction" in digest.html  # the shipped French for the rest


def test_a_site_adds_a_language_of_its_own(settings: Settings, tmp_path: Path) -> None:
    templates_dir = tmp_path / "my-templates"
    write_override(templates_dir, "de", OVERRIDE.replace("Lire sur le site", "Online lesen"))
    site = dataclasses.replace(settings, templates_dir=templates_dir)
    chapter = ChapterVariant(slug="berlin", name="Berlin", language="de")

    digest = render_issue(make_issue(), [make_post("a")], site, chapter=chapter)

    assert "Online lesen" in digest.html and "View this issue in your browser" in digest.html


def test_a_broken_override_is_a_config_error_naming_the_file(
    settings: Settings, tmp_path: Path
) -> None:
    templates_dir = tmp_path / "broken-templates"
    path = write_override(templates_dir, "es", 'msgid "Read it online"\nLeer en línea\n')
    site = dataclasses.replace(settings, templates_dir=templates_dir)
    chapter = ChapterVariant(slug="mx", name="México", language="es")

    with pytest.raises(ConfigError, match=re.escape(str(path))):
        render_issue(make_issue(), [make_post("a")], site, chapter=chapter)


def test_a_compiled_override_works_too(settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "messages.po"
    source.write_text(OVERRIDE, encoding="utf-8")
    templates_dir = tmp_path / "mo-templates"
    folder = templates_dir / "locales" / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "messages.mo").write_bytes(compile_po(source))
    site = dataclasses.replace(settings, templates_dir=templates_dir)
    chapter = ChapterVariant(slug="qc", name="Québec", language="fr")

    digest = render_issue(make_issue(), [make_post("a")], site, chapter=chapter)

    assert "Lire sur le site" in digest.html


def test_english_renders_without_loading_babel(settings: Settings) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from policyfeed.templating import format_date, translations\n"
        "translations('en').gettext('Read it online')\n"
        "format_date(datetime(2012, 7, 30, tzinfo=UTC), UTC, 'en')\n"
        "print('babel' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "False"


def test_dates_of_posts_follow_the_chapter(settings: Settings) -> None:
    when = datetime(2012, 7, 25, 12, tzinfo=UTC)
    chapter = ChapterVariant(slug="mx", name="México", language="es")
    post = make_post("a", published_at=when, updated_at=when + timedelta(hours=1))

    digest = render_issue(make_issue(), [post], settings, chapter=chapter)

    assert "25 de julio de 2012" in digest.text


def test_a_site_in_arabic_builds_its_pages_right_to_left(demo_db, settings, tmp_path) -> None:
    from policyfeed.site.build import build_site

    arabic = dataclasses.replace(settings, language="ar")
    build_site(demo_db, arabic, tmp_path / "out", datetime(2012, 7, 30, 12, tzinfo=UTC))
    root = lxml.html.document_fromstring((tmp_path / "out" / "index.html").read_bytes())

    assert (root.get("lang"), root.get("dir")) == ("ar", "rtl")
    assert "الأعداد السابقة من النشرة البريدية" in root.text_content()  # the footer's words
