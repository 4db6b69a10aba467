"""The digest email: structure of the HTML, CSS inlining, the text part, subject, size guard."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from urllib.parse import urlsplit

import lxml.etree
import lxml.html
import pytest

from digest_support import make_issue, make_post, parse, render_demo
from policyfeed.content.plaintext import TEXT_WIDTH, html_to_mail_text
from policyfeed.digest import render
from policyfeed.digest.render import (
    CLIP_BYTES,
    UNSUBSCRIBE_URL_TOKEN,
    WARN_BYTES,
    render_issue,
)
from policyfeed.errors import ConfigError, DigestTooLargeError
from policyfeed.model import ChapterVariant, Topic

URL_LINE = re.compile(r"^\s*(\[\d+\] |Past issues: )?(https?://|mailto:|%%)\S+$")


def hrefs(html: str) -> list[str]:
    return [a.get("href") for a in parse(html).iter("a") if a.get("href") is not None]


def without_media_blocks(css: str) -> str:
    """CSS with every @media {...} block removed (nested braces counted)."""
    out, depth, index = [], 0, 0
    while index < len(css):
        if depth == 0 and css.startswith("@media", index):
            depth, index = -1, css.index("{", index)
            continue
        char = css[index]
        if depth < 0 and char == "{":
            depth = 1
        elif depth > 0 and char == "{":
            depth += 1
        elif depth > 0 and char == "}":
            depth -= 1
        elif depth == 0:
            out.append(char)
        index += 1
    return "".join(out)


def assert_text_reads_as_text(text: str) -> None:
    assert not re.search(r"</?[a-zA-Z][^>]*>", text), "HTML tag in the text part"
    assert not re.search(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);", text), "entity in the text part"
    for line in text.splitlines():
        assert len(line) <= TEXT_WIDTH or URL_LINE.match(line), line


# --- structure of the demo digest -------------------------------------------------------------


@pytest.fixture
def demo_digest(demo_db, settings):
    return render_demo(demo_db, settings)


def test_the_preheader_is_the_first_thing_in_the_body_and_hidden(demo_digest) -> None:
    body = parse(demo_digest.html).body
    first = next(iter(body))

    assert (body.text or "").strip() == ""
    assert first.get("class") == "preheader"
    assert "display: none" in first.get("style")
    assert first.text_content().startswith("ACTA and the TPPA: a coincidence worth exploring · ")


def test_html_has_lang_color_scheme_and_a_dark_mode_block_kept_after_inlining(demo_digest):
    doc = parse(demo_digest.html)
    metas = {m.get("name"): m.get("content") for m in doc.iter("meta") if m.get("name")}
    styles = "".join(s.text or "" for s in doc.iter("style"))

    assert doc.get("lang") == "en"
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    assert "@media (prefers-color-scheme: dark)" in styles
    assert "@media screen and (max-width: 620px)" in styles
    assert "!important" in styles  # dark mode must beat the inlined colours


def test_css_is_inlined_on_the_elements(demo_digest) -> None:
    doc = parse(demo_digest.html)
    title_link = doc.cssselect("h2.post-title a")[0]
    styles = "".join(s.text or "" for s in doc.iter("style"))

    assert "color:#0b4f9c" in title_link.get("style").replace(" ", "")
    assert without_media_blocks(styles).strip() == ""  # inlined rules are not kept twice


def test_layout_is_a_600px_presentation_table_with_an_outlook_wrapper(demo_digest) -> None:
    doc = parse(demo_digest.html)
    container = doc.cssselect("table.container")[0]
    comments = [c.text for c in doc.iter(lxml.etree.Comment) if "[if mso]" in (c.text or "")]

    assert all(t.get("role") == "presentation" for t in doc.iter("table"))
    assert "max-width:600px" in container.get("style").replace(" ", "")
    assert any('width="600"' in text for text in comments)
    assert demo_digest.html.count("<!--[if mso]>") == 2


def test_no_scripts_and_every_link_is_absolute_or_the_unsubscribe_placeholder(demo_digest):
    doc = parse(demo_digest.html)
    links = hrefs(demo_digest.html)

    assert not list(doc.iter("script"))
    assert "<script" not in demo_digest.html.lower()
    assert links
    for href in links:
        parts = urlsplit(href)
        assert href in render.PLACEHOLDERS or (
            parts.scheme in ("http", "https") and parts.netloc
        ), href


def test_view_in_browser_links_to_the_archived_issue(demo_digest) -> None:
    doc = parse(demo_digest.html)
    link = doc.cssselect(".browser-link a")[0]

    assert link.get("href") == "https://policy.example.org/issues/1/"
    assert link.text_content() == "View this issue in your browser"


def test_a_visible_unsubscribe_link_and_the_postal_address_are_in_the_footer(demo_digest):
    doc = parse(demo_digest.html)
    footer = doc.cssselect("td.footer")[0]
    unsubscribe = footer.cssselect("a.unsubscribe")[0]

    assert unsubscribe.get("href") == UNSUBSCRIBE_URL_TOKEN
    assert unsubscribe.text_content() == "Unsubscribe"
    assert "display" not in (unsubscribe.get("style") or "")
    assert "1775 Wiehle Avenue, Reston, VA 20190, USA" in footer.text_content()


def test_every_post_is_in_the_html_with_its_link(demo_digest, demo_db) -> None:
    from policyfeed.store.posts import list_posts

    titles = [a.text_content() for a in parse(demo_digest.html).cssselect("h2.post-title a")]
    posts = list_posts(demo_db, status="published")

    assert sorted(titles) == sorted(p.title for p in posts)
    for post in posts:
        assert post.permalink("https://policy.example.org/") in hrefs(demo_digest.html)


def test_the_demo_digest_is_small_and_carries_full_posts(demo_digest) -> None:
    assert demo_digest.size_bytes < WARN_BYTES
    assert demo_digest.warnings == ()
    assert demo_digest.summaries_only is False
    assert demo_digest.chapter is None
    assert demo_digest.subject == (
        "Public Policy #1: ACTA and the TPPA: a coincidence worth exploring and 4 more"
    )


def test_size_counts_utf8_bytes_and_room_for_the_substituted_unsubscribe_url(demo_digest):
    raw = len(demo_digest.html.encode("utf-8"))
    tokens = demo_digest.html.count(UNSUBSCRIBE_URL_TOKEN)
    preferences = demo_digest.html.count(render.PREFERENCES_URL_TOKEN)

    assert tokens == 1 and preferences == 1
    assert demo_digest.size_bytes == (
        raw
        + tokens * (render.PLACEHOLDER_URL_BYTES - len(UNSUBSCRIBE_URL_TOKEN))
        + preferences * (render.PLACEHOLDER_URL_BYTES - len(render.PREFERENCES_URL_TOKEN))
    )


# --- the text part ------------------------------------------------------------------------------


def test_the_text_part_has_every_posts_link_headings_and_no_html(demo_digest, demo_db) -> None:
    from policyfeed.store.posts import list_posts

    text = demo_digest.text
    lines = text.splitlines()

    for post in list_posts(demo_db, status="published"):
        assert post.permalink("https://policy.example.org/") in lines
        heading = lines.index(post.title)
        assert set(lines[heading + 1]) == {"-"}
        assert len(lines[heading + 1]) == len(post.title)
    assert lines[:2] == ["Public Policy - issue 1", "=" * len("Public Policy - issue 1")]
    assert "https://policy.example.org/issues/1/" in lines
    assert_text_reads_as_text(text)


def test_the_text_part_ends_with_the_unsubscribe_placeholder_and_address(demo_digest):
    tail = demo_digest.text.splitlines()[-11:]

    assert "Unsubscribe:" in tail
    assert tail[tail.index("Unsubscribe:") + 1] == UNSUBSCRIBE_URL_TOKEN
    assert tail[tail.index("Your preferences (name, chapter, topics, pause):") + 1] == (
        render.PREFERENCES_URL_TOKEN
    )
    assert tail[-1] == "Public Policy team, 1775 Wiehle Avenue, Reston, VA 20190, USA"


def test_text_of_a_body_lists_its_links_and_keeps_lists_quotes_and_code() -> None:
    body = (
        "<p>Read <a href='https://www.itu.int/wcit'>the WCIT page</a> and "
        "<a href='https://www.ietf.org/'>https://www.ietf.org/</a>.</p>"
        "<ul><li>First &amp; foremost</li><li><p>Second</p></li></ul>"
        "<ol start='3'><li>three</li></ol>"
        "<blockquote><p>Quoted words</p></blockquote>"
        "<pre>line 1\n  line 2</pre>"
        "<p>Mail <a href='mailto:policy@example.org'>us</a><br>again</p>"
    )

    text, links = html_to_mail_text(body)

    assert text.split("\n\n") == [
        "Read the WCIT page [1] and https://www.ietf.org/.",
        "- First & foremost",
        "- Second",
        "3. three",
        "> Quoted words",
        "line 1\n  line 2",
        "Mail us [2]\nagain",
    ]
    assert links == ["https://www.itu.int/wcit", "mailto:policy@example.org"]


def test_long_paragraphs_are_wrapped_at_78_columns_without_breaking_urls() -> None:
    url = "https://example.org/" + "a" * 90
    text, _ = html_to_mail_text(f"<p>{'word ' * 60}{url} end</p>")

    lines = text.splitlines()
    assert max(len(line) for line in lines if url not in line) <= 78
    assert url in lines


# --- bad input ------------------------------------------------------------------------------------


def test_an_image_without_alt_gets_an_empty_alt_and_fits_the_column(settings) -> None:
    post = make_post(
        body_html="<p><img src='/img/chart.png' width='1200' height='800'>"
        "<img src='https://example.org/logo.png' alt='Logo'></p>"
    )

    digest = render_issue(make_issue(), [post], settings)

    images = list(parse(digest.html).iter("img"))
    assert [img.get("alt") for img in images] == ["", "Logo"]
    assert images[0].get("src") == "https://policy.example.org/img/chart.png"
    assert images[0].get("width") == "552" and images[0].get("height") is None
    assert "max-width:100%" in images[0].get("style").replace(" ", "")
    assert "[Logo]" in digest.text


def test_less_than_and_ampersand_in_titles_are_escaped_in_html_and_plain_in_text(settings):
    title = "Tariffs < 5% & the <b> tag"
    post = make_post(title=title)

    digest = render_issue(make_issue(), [post], settings)

    assert parse(digest.html).cssselect("h2.post-title a")[0].text_content() == title
    assert "Tariffs &lt; 5% &amp; the &lt;b&gt; tag" in digest.html
    assert title in digest.text.splitlines()
    assert digest.subject == f"Public Policy #1: {title}"


def test_right_to_left_and_emoji_text_survive_with_auto_direction(settings) -> None:
    arabic = "حوكمة الإنترنت للجميع"
    post = make_post(
        title=f"{arabic} 🌍",
        summary="ملخص قصير",
        body_html=f"<p dir='rtl'>{arabic}</p><p>Emoji 🎉🇨🇭 and 中文</p>",
    )

    digest = render_issue(make_issue(), [post], settings)

    doc = parse(digest.html)
    assert doc.cssselect("h2.post-title")[0].get("dir") == "auto"
    assert doc.cssselect("div.post-body")[0].get("dir") == "auto"
    assert f"{arabic} 🌍" in doc.text_content()
    assert "Emoji 🎉🇨🇭 and 中文" in doc.text_content()
    assert f"{arabic} 🌍" in digest.text and "Emoji 🎉🇨🇭 and 中文" in digest.text
    assert_text_reads_as_text(digest.text)


def test_scripts_styles_and_javascript_links_in_a_body_never_reach_the_email(settings) -> None:
    post = make_post(
        body_html="<p onclick='x()'>Hi <a href='javascript:alert(1)'>there</a></p>"
        "<script>alert(1)</script><style>p{}</style><a href='#top'>top</a>"
    )

    digest = render_issue(make_issue(), [post], settings)

    assert "<script" not in digest.html and "javascript:" not in digest.html
    assert "onclick" not in digest.html
    for href in hrefs(digest.html):
        assert href in render.PLACEHOLDERS or urlsplit(href).scheme in ("http", "https")


def huge_post(slug: str, size: int) -> object:
    paragraph = "<p>" + "Internet governance needs everyone at the table. " * 20 + "</p>"
    return make_post(slug, summary=f"Summary of {slug}.", body_html=paragraph * (size // 1000))


def test_a_huge_body_falls_back_to_summaries_only_with_a_warning(settings) -> None:
    posts = [huge_post("huge", 300_000), make_post("small")]

    digest = render_issue(make_issue(), posts, settings)

    assert digest.summaries_only is True
    assert digest.size_bytes < CLIP_BYTES
    assert "Internet governance needs everyone" not in digest.html
    assert "Summary of huge." in digest.html and "Summary of huge." in digest.text
    assert any("summaries only" in warning for warning in digest.warnings)
    assert "https://policy.example.org/posts/huge/" in digest.text.splitlines()
    assert parse(digest.html).cssselect("a.unsubscribe")  # the footer is still there
    assert_text_reads_as_text(digest.text)


def test_a_digest_still_too_large_with_summaries_only_is_refused(settings) -> None:
    posts = [make_post(f"post-{i}", summary="A summary. " * 40) for i in range(200)]

    with pytest.raises(DigestTooLargeError, match=r"issue 1: the HTML is [\d,]+ bytes even with"):
        render_issue(make_issue(), posts, settings)


def test_a_digest_between_90_and_102_kb_is_sent_whole_with_a_warning(settings) -> None:
    def digest_with(count: int):
        posts = [
            make_post(f"post-{i}", body_html="<p>" + "word " * 200 + "</p>") for i in range(count)
        ]
        return render_issue(make_issue(), posts, settings)

    one, two = digest_with(1), digest_with(2)
    per_post = two.size_bytes - one.size_bytes
    count = 1 + (WARN_BYTES + 5_000 - one.size_bytes) // per_post

    digest = digest_with(count)

    assert WARN_BYTES < digest.size_bytes < CLIP_BYTES
    assert digest.summaries_only is False
    assert any("close to the 102,000" in warning for warning in digest.warnings)


# --- variants, templates, determinism ----------------------------------------------------


def test_a_chapter_variant_shows_its_name_and_intro(settings) -> None:
    chapter = ChapterVariant(slug="geneva", name="Geneva chapter", intro="News for Geneva.")
    post = make_post(topics=[Topic("ietf", "IETF")])

    digest = render_issue(make_issue(subject="Stored subject"), [post], settings, chapter=chapter)

    doc = parse(digest.html)
    assert digest.chapter == "geneva"
    assert doc.cssselect("td.intro")[0].text_content() == "News for Geneva."
    assert "as a member of Geneva chapter" in doc.cssselect("td.footer")[0].text_content()
    assert "News for Geneva." in digest.text
    assert digest.subject == "Public Policy #1: Post a-post"
    # The title (shown by some clients and in the browser) is this variant's subject too.
    assert doc.findtext(".//title") == digest.subject


def test_the_stored_subject_is_used_for_the_whole_issue(settings) -> None:
    digest = render_issue(make_issue(subject="Hand-written subject"), [make_post()], settings)

    assert digest.subject == "Hand-written subject"


def test_the_editors_note_is_shown_first_and_used_as_preheader(settings) -> None:
    issue = make_issue(note="WCIT is coming.\nRead on.")

    digest = render_issue(issue, [make_post()], settings)

    doc = parse(digest.html)
    # Markdown, where a line break in the note stays a line break.
    assert [p.text_content() for p in doc.cssselect(".note-box p")] == [
        "From the editor",
        "WCIT is coming.\nRead on.",
    ]
    assert doc.cssselect(".preheader")[0].text_content().startswith("WCIT is coming. Read on.")
    assert "From the editor\n---------------\nWCIT is coming.\nRead on." in digest.text


def test_rendering_twice_gives_the_same_bytes(demo_db, settings) -> None:
    from policyfeed.digest.issues import get_issue, issue_posts

    first = render_demo(demo_db, settings)
    issue = get_issue(demo_db, 1)
    second = render_issue(issue, issue_posts(demo_db, issue), settings)

    assert (first.html, first.text, first.subject) == (second.html, second.text, second.subject)


def test_site_templates_override_the_defaults_one_by_one(settings, tmp_path: Path) -> None:
    (tmp_path / "mine" / "email").mkdir(parents=True)
    (tmp_path / "mine" / "email" / "subject.txt").write_text(
        "[{{ site.title }}] No. {{ issue.number }}", encoding="utf-8"
    )
    custom = dataclasses.replace(settings, templates_dir=tmp_path / "mine")

    digest = render_issue(make_issue(), [make_post()], custom)

    assert digest.subject == "[Public Policy] No. 1"
    assert parse(digest.html).cssselect("a.unsubscribe")  # the default HTML template


def test_a_broken_site_template_is_a_config_error_naming_it(settings, tmp_path: Path) -> None:
    (tmp_path / "mine" / "email").mkdir(parents=True)
    (tmp_path / "mine" / "email" / "digest.txt").write_text("{% if %}", encoding="utf-8")
    custom = dataclasses.replace(settings, templates_dir=tmp_path / "mine")

    with pytest.raises(ConfigError, match=r"template email/digest.txt, line 1"):
        render_issue(make_issue(), [make_post()], custom)


def test_premailer_never_fetches_a_stylesheet(settings, tmp_path, monkeypatch) -> None:
    import premailer.premailer

    fetched: list[str] = []
    monkeypatch.setattr(
        premailer.premailer.Premailer, "_load_external_url", lambda self, url: fetched.append(url)
    )
    (tmp_path / "mine" / "email").mkdir(parents=True)
    default = (Path(render.__file__).parents[3] / "templates" / "email" / "digest.html").read_text()
    (tmp_path / "mine" / "email" / "digest.html").write_text(
        default.replace(
            "<style>", '<link rel="stylesheet" href="https://cdn.example.org/x.css">\n<style>', 1
        ),
        encoding="utf-8",
    )
    custom = dataclasses.replace(settings, templates_dir=tmp_path / "mine")

    render_issue(make_issue(), [make_post()], custom)

    assert fetched == []


def test_autoescape_is_on_in_html_templates(settings) -> None:
    post = make_post(summary="<script>alert(1)</script>", body_html="")

    digest = render_issue(make_issue(), [post], settings)

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in digest.html


HOSTILE_NOTE = """\
**WCIT** is coming: read the [agenda](/events/wcit/) first.

- ask your government
- write to us

<script>alert(1)</script><img src="x" onerror="alert(2)">
<a href="javascript:alert(3)">click</a> <iframe src="https://evil.example/"></iframe>
"""


def test_the_editors_note_is_markdown_cleaned_like_a_post(settings) -> None:
    digest = render_issue(make_issue(note=HOSTILE_NOTE), [make_post()], settings)

    box = parse(digest.html).cssselect(".note-box")[0]
    assert box.cssselect("strong")[0].text_content() == "WCIT"
    assert [a.get("href") for a in box.cssselect("a")] == [
        "https://policy.example.org/events/wcit/",
        None,  # the javascript: link keeps its text and loses its target
    ]
    assert [li.text_content() for li in box.cssselect("li")] == [
        "ask your government",
        "write to us",
    ]
    markup = lxml.html.tostring(box, encoding="unicode")
    for hostile in ("<script", "onerror", "javascript:", "<iframe", "alert(1)", 'src="x"'):
        assert hostile not in markup
    assert "**" not in digest.html
    preheader = parse(digest.html).cssselect(".preheader")[0].text_content()
    assert preheader.startswith("WCIT is coming: read the agenda first.")


def test_the_notes_text_part_is_plain_with_its_links_listed(settings) -> None:
    digest = render_issue(make_issue(note=HOSTILE_NOTE), [make_post()], settings)

    note = digest.text.split("From the editor\n---------------\n", 1)[1].split("\n\n\n")[0]
    assert note.startswith("WCIT is coming: read the agenda [1] first.")
    assert "[1] https://policy.example.org/events/wcit/" in note
    assert "ask your government" in note and "**" not in note and "<" not in note
