"""The post model: validation, HTML sanitising, plain text, dates and the permanent guid."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils
from hypothesis import given
from hypothesis import strategies as st

from policyfeed.content.posts import (
    draft_from_record,
    html_to_text,
    parse_datetime,
    parse_topics,
    sanitize_html,
    slugify,
    strip_forbidden,
)
from policyfeed.errors import InputError
from policyfeed.model import Post, Topic, make_guid
from policyfeed.store import posts as store
from policyfeed.store import transaction

BASE = "https://policy.example.org/blog/"
DOMAIN = "policy.example.org"
ZURICH = ZoneInfo("Europe/Zurich")
NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)
FORBIDDEN = "\x00\x01\x08\x0b\x0c\x0e\x1f\ufffe\uffff\ud800"
TAG_URI = re.compile(r"^tag:[a-z0-9.-]+,\d{4}-\d{2}-\d{2}:[A-Za-z0-9/._~!$&'()*+,;=:@?-]+$")


def draft(tz: Any = ZURICH, **fields: Any) -> Any:
    record = {"title": "A post", **fields}
    return draft_from_record(record, base_url=BASE, tz=tz, source="posts.json", where="record 1")


# --- sanitising ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>hi<script>alert(1)</script></p>", "<p>hi</p>"),
        ("<style>p { color: red }</style><p>hi</p>", "<p>hi</p>"),
        ('<iframe src="https://evil.example/">inside</iframe><p>hi</p>', "<p>hi</p>"),
        ("<object data='x.swf'>o</object><embed src='x'><p>hi</p>", "<p>hi</p>"),
        ('<p onclick="steal()" onmouseover="x()">hi</p>', "<p>hi</p>"),
        ('<img src="/a.png" onerror="alert(1)">', '<img src="https://policy.example.org/a.png">'),
        ('<p style="position:fixed">hi</p>', "<p>hi</p>"),
        ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener">x</a>'),
        ('<a href="JaVaScRiPt:alert(1)">x</a>', '<a rel="noopener">x</a>'),
        ('<a href="java&#x09;script:alert(1)">x</a>', '<a rel="noopener">x</a>'),
        ('<a href=" javascript:alert(1)">x</a>', '<a rel="noopener">x</a>'),
        ('<a href="data:text/html,<script>x</script>">x</a>', '<a rel="noopener">x</a>'),
        ('<a href="vbscript:msgbox(1)">x</a>', '<a rel="noopener">x</a>'),
        ("<form action='/x'><input name='a'><button>Go</button></form>", "Go"),
        ("<svg><script>alert(1)</script></svg><p>hi</p>", "<p>hi</p>"),
        ("<!-- a comment --><p>hi</p>", "<p>hi</p>"),
        ("<p>unclosed <b>bold", "<p>unclosed <b>bold</b></p>"),
    ],
)
def test_sanitize_removes_what_is_not_allowed(html: str, expected: str) -> None:
    assert sanitize_html(html, BASE) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<a href="wcit.html">x</a>', '<a href="https://policy.example.org/blog/wcit.html"'),
        ('<a href="../about/">x</a>', '<a href="https://policy.example.org/about/"'),
        ('<a href="/posts/acta/">x</a>', '<a href="https://policy.example.org/posts/acta/"'),
        ('<a href="//ietf.org/x">x</a>', '<a href="https://ietf.org/x"'),
        ('<a href="http://www.ietf.org/">x</a>', '<a href="http://www.ietf.org/"'),
        ('<a href="mailto:policy@example.org">x</a>', '<a href="mailto:policy@example.org"'),
        ('<img src="img/map.png" alt="Map">', '<img src="https://policy.example.org/blog/img/map'),
        ('<blockquote cite="/src">q</blockquote>', '<blockquote cite="https://policy.example.org'),
    ],
)
def test_sanitize_makes_relative_urls_absolute(html: str, expected: str) -> None:
    assert sanitize_html(html, BASE).startswith(expected)


def test_sanitize_keeps_ordinary_markup() -> None:
    html = (
        '<h2>WCIT</h2><p>See <a href="https://www.itu.int/">the ITU</a>, <em>now</em>.</p>'
        "<ul><li>one</li></ul><table><tr><th>a</th><td>b</td></tr></table>"
    )
    cleaned = sanitize_html(html, BASE)
    for kept in ("<h2>WCIT</h2>", '<a href="https://www.itu.int/"', "<em>now</em>", "<li>one"):
        assert kept in cleaned
    assert "<th>a</th><td>b</td>" in cleaned


def test_sanitize_removes_xml_forbidden_characters_even_when_written_as_entities() -> None:
    cleaned = sanitize_html("<p>a&#1;b&#x0B;c\x01d&#xFFFE;e\x1ff</p>", BASE)
    assert cleaned == "<p>abcdef</p>"


def test_strip_forbidden_keeps_tab_newline_and_ordinary_text() -> None:
    text = "Tab\there\nnew line\r\nTrinidad & Tobago – 29 July – 3 August 😀"
    assert strip_forbidden(text + FORBIDDEN) == text


def test_forbidden_characters_are_removed_from_every_text_field() -> None:
    cleaned = draft(
        title=f"ITU{FORBIDDEN} Council",
        summary=f"Sum{FORBIDDEN}mary",
        body=f"<p>Bo{FORBIDDEN}dy &#2;</p>",
        author=f"Policy{FORBIDDEN} team",
        url=f"https://policy.example.org/itu{FORBIDDEN}",
        topics=[f"ITU{FORBIDDEN}"],
        guid=f"urn:x{FORBIDDEN}:1",
    )
    fields = [cleaned.title, cleaned.summary, cleaned.body_html, cleaned.body_text]
    fields += [cleaned.author, cleaned.url, cleaned.guid, cleaned.topics[0].name]
    assert not any(re.search(f"[{FORBIDDEN}]", value) for value in fields), fields
    assert (cleaned.title, cleaned.summary, cleaned.author) == (
        "ITU Council",
        "Summary",
        "Policy team",
    )
    assert cleaned.body_text == "Body"


def test_a_record_with_markup_in_the_summary_gets_plain_text() -> None:
    cleaned = draft(summary="<p>Trinidad &amp; Tobago <script>x()</script><b>join</b>.</p>")
    assert cleaned.summary == "Trinidad & Tobago join."


def test_a_plain_summary_keeps_its_ampersands_and_angle_brackets() -> None:
    assert draft(summary="Trinidad & Tobago, 3 < 5").summary == "Trinidad & Tobago, 3 < 5"


# --- markdown and plain text -----------------------------------------------------------------


def test_a_markdown_body_becomes_sanitised_html() -> None:
    text = (
        "## WCIT\n\nAsk *your* government ([how](/wcit/)).\n\n"
        "- one\n- two\n\n<script>alert(1)</script>\n\n[bad](javascript:alert(1))\n"
    )
    cleaned = draft(body_markdown=text)
    assert cleaned.body_html.startswith("<h2>WCIT</h2>\n<p>Ask <em>your</em> government")
    assert '<a href="https://policy.example.org/wcit/" rel="noopener">how</a>' in cleaned.body_html
    assert "<li>one</li>" in cleaned.body_html
    assert "script" not in cleaned.body_html
    assert "javascript" not in cleaned.body_html
    assert cleaned.body_text.splitlines()[:2] == ["WCIT", "Ask your government (how)."]


def test_format_markdown_reads_the_body_as_markdown() -> None:
    assert draft(body="*hi*", format="markdown").body_html == "<p><em>hi</em></p>"
    assert draft(body="*hi*").body_html == "*hi*"


def test_html_to_text_decodes_entities_and_keeps_blocks_on_their_own_lines() -> None:
    html = (
        "<h2>IETF&nbsp;84</h2><p>Trinidad &amp; Tobago<br>Vancouver</p>"
        "<ul><li>a</li><li>b</li></ul>"
    )
    assert html_to_text(html) == "IETF 84\nTrinidad & Tobago\nVancouver\na\nb"
    assert html_to_text("   ") == ""


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": "  "}, "posts.json, record 1: missing title"),
        ({"title": None}, "posts.json, record 1: missing title"),
        ({"title": ["a"]}, "posts.json, record 1: title must be text, not list"),
        ({"slug": "Not A Slug"}, "posts.json, record 1: slug 'Not A Slug' must be lower-case"),
        ({"status": "archived"}, "status must be draft or published, not 'archived'"),
        ({"format": "rst"}, "format must be html or markdown, not 'rst'"),
        ({"url": "ftp://example.org/x"}, "url must be http(s), not 'ftp://example.org/x'"),
        ({"published_at": "last tuesday"}, "unparsable date 'last tuesday'"),
        ({"updated_at": "2012-13-45"}, "unparsable date '2012-13-45'"),
        ({"topics": [{"name": "!!!", "slug": "No Slug"}]}, "slug 'No Slug' must be"),
    ],
)
def test_bad_records_name_the_source_and_the_record(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        draft(**fields)
    assert message in str(caught.value)
    assert str(caught.value).startswith("posts.json, record 1: ")
    assert "\n" not in str(caught.value)


def test_slug_defaults_to_the_title() -> None:
    assert draft(title="WCIT: ask your Government!").slug == "wcit-ask-your-government"


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Trinidad & Tobago — ITU/WCIT", "trinidad-tobago-itu-wcit"),
        ("Genève, Zürich", "geneve-zurich"),
        ("--IETF 84--", "ietf-84"),
        ("日本", "ri-ben"),  # every script has slugs now (tests/test_slugs.py)
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_slugify_keeps_at_most_100_characters_without_a_trailing_hyphen() -> None:
    slug = slugify("word " * 60)
    assert len(slug) <= 100
    assert not slug.endswith("-")


def test_a_record_with_a_date_and_no_status_is_published() -> None:
    assert draft(published_at="2012-07-25").status == "published"
    assert draft().status is None
    assert draft(published_at="2012-07-25", status="draft").status == "draft"


def test_topics_from_a_list_or_a_separated_string_without_duplicates() -> None:
    expected = [Topic("itu-wcit", "ITU / WCIT"), Topic("ietf", "IETF")]
    assert parse_topics(["ITU / WCIT", "IETF", "itu  /  wcit", ""]) == expected
    assert parse_topics("ITU / WCIT; IETF,  ") == expected
    assert parse_topics(None) == []


@given(st.lists(st.text(max_size=12), max_size=6))
def test_a_topic_named_plainly_is_the_topic_named_as_an_object(names: list[str]) -> None:
    # Plain names are read through a cache; {"name": …} without a slug is read afresh.
    assert parse_topics(names) == parse_topics([{"name": name} for name in names])
    assert parse_topics(names) == parse_topics(list(names))


def test_permalink_is_the_post_url_or_its_page_on_the_site() -> None:
    assert Post(slug="acta", title="ACTA").permalink(BASE) == f"{BASE}posts/acta/"
    elsewhere = Post(slug="acta", title="ACTA", url="https://www.internetsociety.org/acta")
    assert elsewhere.permalink(BASE) == "https://www.internetsociety.org/acta"


@given(
    st.sampled_from(
        (
            "https://policy.example.org/",
            "https://policy.example.org",
            "https://example.org/blog",
            "https://example.org/a/./b/",
            "https://example.org/a/../b/",
            "https://example.org/a//b/",
            "https://example.org/a/?q=1#top",
            "http://example.org:8080/x/y/",
        )
    ),
    st.text(st.sampled_from("abz09-._/?#%é"), min_size=1, max_size=12),
)
def test_permalink_joins_the_slug_as_urljoin_does(base: str, slug: str) -> None:
    assert Post(slug=slug, title="T").permalink(base) == urljoin(base, f"posts/{slug}/")


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2012-07-25 09:00", datetime(2012, 7, 25, 7, 0)),  # CEST, UTC+2
        ("2012-01-25 09:00", datetime(2012, 1, 25, 8, 0)),  # CET, UTC+1
        ("2012-07-25", datetime(2012, 7, 24, 22, 0)),  # midnight in Zurich
        ("2012-03-25 03:30", datetime(2012, 3, 25, 1, 30)),  # just after the spring change
        ("2012-10-28 01:30", datetime(2012, 10, 27, 23, 30)),  # just before the autumn change
        ("2012-07-25T09:00:00Z", datetime(2012, 7, 25, 9, 0)),
        ("2012-07-25T09:00:00+05:30", datetime(2012, 7, 25, 3, 30)),
        ("2012-07-25T09:00:00.123456+00:00", datetime(2012, 7, 25, 9, 0)),
        ("Wed, 25 Jul 2012 09:00:00 +0200", datetime(2012, 7, 25, 7, 0)),
        ("Wed, 25 Jul 2012 09:00:00 GMT", datetime(2012, 7, 25, 9, 0)),
        ("Wed, 25 Jul 2012 09:00:00 -0000", datetime(2012, 7, 25, 9, 0)),  # RFC 2822: UTC
        (date(2012, 7, 25), datetime(2012, 7, 24, 22, 0)),
        (datetime(2012, 7, 25, 9, 0), datetime(2012, 7, 25, 7, 0)),
        (
            datetime(2012, 7, 25, 9, 0, tzinfo=timezone(timedelta(hours=-4))),
            datetime(2012, 7, 25, 13),
        ),
    ],
)
def test_dates_are_read_in_the_site_time_zone_and_returned_in_utc(
    value: Any, expected: datetime
) -> None:
    parsed = parse_datetime(value, ZURICH)
    assert parsed == expected.replace(tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["", "yesterday", "2012-02-30", "25/07/2012", 20120725, ["x"]])
def test_unparsable_dates_are_value_errors(value: Any) -> None:
    with pytest.raises(ValueError, match="date"):
        parse_datetime(value, ZURICH)


def test_naive_dates_are_stored_in_utc(db: sqlite_utils.Database) -> None:
    with transaction(db):
        store.save_post(db, draft(published_at="2012-07-25 18:00"), now=NOW, domain=DOMAIN)
    stored = db.execute("SELECT published_at FROM posts").fetchone()[0]
    assert stored == "2012-07-25T16:00:00Z"


# --- the guid --------------------------------------------------------------------------------


def save(db: sqlite_utils.Database, post_id: int | None = None, **fields: Any) -> int:
    with transaction(db):
        return store.save_post(db, draft(**fields), now=NOW, domain=DOMAIN, post_id=post_id)


def test_a_draft_has_no_guid_until_it_is_published(db: sqlite_utils.Database) -> None:
    save(db, slug="wcit")
    assert store.get_post(db, "wcit").guid is None
    post = store.set_status(
        db, "wcit", "published", now=NOW, domain=DOMAIN,
        published_at=datetime(2012, 7, 11, 7, tzinfo=UTC),
    )  # fmt: skip
    assert post.guid == "tag:policy.example.org,2012-07-11:posts/wcit"
    assert TAG_URI.match(post.guid)


def test_a_post_saved_as_published_gets_its_guid_at_once(db: sqlite_utils.Database) -> None:
    save(db, slug="acta", published_at="2012-07-09 09:00")
    assert store.get_post(db, "acta").guid == "tag:policy.example.org,2012-07-09:posts/acta"


def test_the_guid_date_is_the_utc_date_of_first_publication(db: sqlite_utils.Database) -> None:
    save(db, slug="early", published_at="2012-07-25 00:30")  # 2012-07-24 22:30 UTC
    assert store.get_post(db, "early").guid == "tag:policy.example.org,2012-07-24:posts/early"


def test_editing_slug_title_url_and_date_never_changes_the_guid(db: sqlite_utils.Database) -> None:
    post_id = save(db, slug="wcit", title="WCIT", published_at="2012-07-11")
    guid = store.get_post(db, "wcit").guid
    save(
        db,
        post_id,
        slug="wcit-preparation",
        title="Preparing for WCIT",
        url="https://www.internetsociety.org/wcit",
        published_at="2012-07-12",
    )
    post = store.get_post(db, "wcit-preparation")
    assert (post.title, post.url) == ("Preparing for WCIT", "https://www.internetsociety.org/wcit")
    assert post.guid == guid


def test_unpublish_and_republish_keep_the_guid_and_the_date(db: sqlite_utils.Database) -> None:
    save(db, slug="acta", published_at="2012-07-09 09:00")
    first = store.get_post(db, "acta")
    draft_again = store.set_status(db, "acta", "draft", now=NOW, domain=DOMAIN)
    assert (draft_again.status, draft_again.guid) == ("draft", first.guid)
    later = NOW + timedelta(days=10)
    again = store.set_status(db, "acta", "published", now=later, domain=DOMAIN)
    assert (again.status, again.guid, again.published_at) == (
        "published",
        first.guid,
        first.published_at,
    )


def test_a_reused_slug_gets_a_different_guid(db: sqlite_utils.Database) -> None:
    first_id = save(db, slug="itu", published_at="2012-07-25")
    save(db, first_id, slug="itu-council", published_at="2012-07-25")
    save(db, slug="itu", title="Another", published_at="2012-07-25")
    first = store.get_post(db, "itu-council").guid
    second = store.get_post(db, "itu").guid
    assert first != second
    assert second is not None and TAG_URI.match(second)


def test_an_imported_guid_is_kept_so_moved_posts_are_not_new_to_readers(
    db: sqlite_utils.Database,
) -> None:
    save(db, slug="moved", guid="https://old.example.org/?p=42", published_at="2012-07-25")
    assert store.get_post(db, "moved").guid == "https://old.example.org/?p=42"


def test_make_guid_is_an_rfc_4151_tag_uri() -> None:
    guid = make_guid("policy.example.org", datetime(2012, 7, 25, 23, tzinfo=UTC), "itu-council")
    assert guid == "tag:policy.example.org,2012-07-25:posts/itu-council"
    assert TAG_URI.match(guid)
