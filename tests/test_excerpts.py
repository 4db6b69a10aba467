"""A post without a summary shows the start of its text: whole blocks (paragraphs, list items,
headings, table cells and code are never run together), ending at a sentence or a block with an
ellipsis, on the site, in the feeds and in the digest alike."""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html
import sqlite_utils

from policyfeed.config import Settings
from policyfeed.content.plaintext import excerpt
from policyfeed.content.posts import clean_html_to_text, html_to_text, sanitize_html
from policyfeed.digest.render import post_summary
from policyfeed.site.build import build_site
from policyfeed.store import posts as post_store
from site_support import NOW, day, save

BASE = "https://policy.example.org/"
AGENDA = """\
The working group meets on Tuesday. Bring a laptop: we will try the new records together.

| Session | Room |
|---------|------|
| Plenary | Liffey A |

    dig +dnssec example.org

- Remote participation is open to all.
"""
FIRST_PARAGRAPH = (
    "The working group meets on Tuesday. Bring a laptop: we will try the new records together."
)


def test_table_cells_code_and_definitions_are_lines_of_their_own() -> None:
    html = sanitize_html(
        "<table><tr><th>Session</th><th>Room</th></tr><tr><td>Plenary</td><td>Liffey A</td></tr>"
        "</table><pre><code>dig +dnssec example.org</code></pre><dl><dt>WTSA</dt><dd>An "
        "assembly</dd></dl><figure><img src='a.png' alt=''><figcaption>A chart</figcaption>"
        "</figure>",
        BASE,
    )
    expected = "Session\nRoom\nPlenary\nLiffey A\ndig +dnssec example.org\nWTSA\nAn assembly\n"
    expected += "A chart"
    assert clean_html_to_text(html) == expected
    assert html_to_text(html) == expected


def test_an_excerpt_is_the_leading_whole_blocks_that_fit_with_an_ellipsis() -> None:
    text = "One sentence here.\nA second paragraph, also short.\n" + "Long " * 80
    assert excerpt(text, 60) == "One sentence here. A second paragraph, also short. …"
    assert excerpt("Short and whole.", 60) == "Short and whole."  # nothing left out: no ellipsis


def test_an_excerpt_stops_before_a_block_that_is_not_a_sentence() -> None:
    text = "The agenda is below:\nSession\nRoom\nPlenary\nLiffey A\ndig +dnssec example.org"
    assert excerpt(text, 300) == "The agenda is below: …"


def test_an_excerpt_starts_at_the_first_sentence_after_headings() -> None:
    assert excerpt("Agenda\nThe group meets on Tuesday.\nMore.", 300) == (
        "The group meets on Tuesday. More."
    )


def test_a_long_first_block_is_cut_at_a_sentence_else_at_a_word() -> None:
    sentences = "The first sentence is here. " * 5 + "And this one runs on and on " * 10
    cut = excerpt(sentences.strip(), 200)
    assert cut.endswith("here. …") and len(cut) <= 200
    words = "word " * 100
    cut = excerpt(words.strip(), 50)
    assert cut.endswith("word…") and len(cut) <= 50


def test_a_text_with_no_sentence_at_all_still_gives_its_start() -> None:
    assert excerpt("Session\nRoom\nPlenary", 300) == "Session …"


def test_site_feeds_and_digest_show_the_first_paragraph_of_a_markdown_post(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    save(db, settings, "agenda", date=day(20), body_markdown=AGENDA, title="Agenda")
    out = tmp_path / "public"
    build_site(db, settings, out, NOW)

    expected = FIRST_PARAGRAPH + " …"
    index = lxml.html.document_fromstring((out / "index.html").read_text(encoding="utf-8"))
    assert index.cssselect("article.card p:not(.meta)")[0].text_content() == expected
    feed = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    assert feed["items"][0]["summary"] == expected
    post = post_store.get_post(db, "agenda")
    assert post is not None and post_summary(post) == expected
