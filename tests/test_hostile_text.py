"""Text from posts, names and settings that feeds, pages and mail must not carry as it came:
Unicode noncharacters (the W3C validator's NotHtml), C0/C1 controls, bidirectional overrides in
single-line text (a title shown as "edirrevo-LTR"), and markup-like titles sent as Atom
``type="text"`` (readers render them as HTML)."""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import lxml.etree
import sqlite_utils
from hypothesis import given
from hypothesis import strategies as st

from policyfeed.audience.subscribers import add_chapter
from policyfeed.config import Settings
from policyfeed.content.text import clean_line, clean_text
from policyfeed.site.build import build_site
from policyfeed.store import posts as post_store
from site_support import NOW, check_feed_folder, day, parse_feed, save

NONCHARACTERS = "\ufdd0\ufdef\ufffe\U0001fffe\U0010ffff"
CONTROLS = "\x01\x08\x0b\x1f\x7f\x85\x9f"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
UNWANTED = re.compile(f"[{NONCHARACTERS}{CONTROLS}{BIDI}]")


def test_clean_text_and_clean_line() -> None:
    assert clean_text(f"a{NONCHARACTERS}b{CONTROLS}c\td\ne") == "abc\td\ne"
    assert clean_text("\u202eabc") == "\u202eabc"  # bodies keep their direction controls
    assert clean_line(f"\u202eoverride-LTR\u202c {NONCHARACTERS}\n  next") == "override-LTR next"
    assert clean_line("\u200fmark stays") == "\u200fmark stays"


# What clean_text removes, spelled out once more: every character XML 1.0 forbids but tab, line
# feed and carriage return, DEL and the C1 controls, surrogates, and Unicode's noncharacters.
def _unwanted(char: str) -> bool:
    code = ord(char)
    return (
        (code < 0x20 and char not in "\t\n\r")
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or 0xFDD0 <= code <= 0xFDEF
        or code & 0xFFFE == 0xFFFE
    )


# Mostly plain ASCII (the fast path), with some of every kind of character mixed in.
_TEXTS = st.text(
    st.one_of(
        st.characters(max_codepoint=0x7F),
        st.characters(),
        st.sampled_from(f"{NONCHARACTERS}{CONTROLS}{BIDI}\ud800\udfff\x00\x0c\r\u00e9\u4e92"),
    )
)


@given(_TEXTS)
def test_clean_text_removes_exactly_the_unwanted_characters(text: str) -> None:
    assert clean_text(text) == "".join(c for c in text if not _unwanted(c))


def test_clean_text_of_long_ascii_and_non_ascii_text() -> None:
    body = "<p>Plain text, with a tab\tand lines\r\n</p>" * 200
    assert clean_text(body) == body
    assert clean_text(body + "\x00\x7f" + body) == body + body
    assert clean_text("caf\u00e9 \U0001f600 \U0001ffff\ufdd0x\x85") == "caf\u00e9 \U0001f600 x"


def hostile_site(db: sqlite_utils.Database, settings: Settings) -> Settings:
    dirty = f"Bad{NONCHARACTERS}{CONTROLS}{BIDI}"
    save(
        db, settings, "hostile", date=day(20),
        title=f"\u202eRTL-override{NONCHARACTERS} <b>bold</b> &nbsp; AT&T{CONTROLS}",
        summary=f"Sum{NONCHARACTERS}mary \u202e<i>x</i>",
        body=f"<p>Body {NONCHARACTERS} with \x85 controls &#xFDD0; and &#x85;</p>",
        author=f"Ann{BIDI} Editor{NONCHARACTERS}",
        topics=[dirty],
    )  # fmt: skip
    return dataclasses.replace(
        settings, description=f"Site {CONTROLS}{NONCHARACTERS} description", title="Policy"
    )


def test_nothing_unwanted_reaches_the_store_from_a_post(
    db: sqlite_utils.Database, settings: Settings
) -> None:
    hostile_site(db, settings)
    post = post_store.get_post(db, "hostile")
    for text in (post.title, post.summary, post.body_html, post.author, post.topics[0].name):
        assert not UNWANTED.search(text), repr(text)
    assert post.title == "RTL-override <b>bold</b> &nbsp; AT&T"


def test_feeds_and_pages_carry_no_noncharacter_control_or_override(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    site = hostile_site(db, settings)
    with db.conn:  # what an older version may have stored
        db.execute(
            "UPDATE posts SET title = ?, author = ? WHERE slug = 'hostile'",
            [f"\u202eOld{NONCHARACTERS}{CONTROLS} title", f"Old{BIDI}{NONCHARACTERS} author"],
        )
    out = tmp_path / "out"
    build_site(db, site, out, NOW)
    for path in sorted(out.rglob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            found = UNWANTED.search(text)
            assert found is None, (path.relative_to(out), repr(found and found.group()))
    check_feed_folder(out, 1)


def test_atom_titles_and_summaries_are_html_with_the_text_escaped(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    build_site(db, hostile_site(db, settings), tmp_path / "out", NOW)
    data = (tmp_path / "out" / "atom.xml").read_bytes()
    root = lxml.etree.fromstring(data)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    for element in root.xpath(
        "//a:entry/a:title | //a:entry/a:summary | /a:feed/a:title", namespaces=ns
    ):
        assert element.get("type") == "html", lxml.etree.tostring(element)
    [title] = root.xpath("//a:entry/a:title", namespaces=ns)
    assert title.text == "RTL-override &lt;b&gt;bold&lt;/b&gt; &amp;nbsp; AT&amp;T"
    parsed = parse_feed(data)
    # A reader decodes the HTML and shows the text as it was written, tags and all.
    assert html.unescape(parsed.entries[0].title) == "RTL-override <b>bold</b> &nbsp; AT&T"


def test_chapter_and_subscriber_names_lose_overrides(
    db: sqlite_utils.Database, settings: Settings
) -> None:
    save(db, settings, "a", date=day(20), topics=["IETF"])
    chapter = add_chapter(db, slug="geneva", name=f"\u202eGeneva{CONTROLS}", topics=["IETF"])
    assert chapter.name == "Geneva"
