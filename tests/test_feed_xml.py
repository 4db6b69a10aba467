"""The RSS and Atom text writers give the very bytes feedgen and lxml gave (feedgen_reference),
and the JSON Feed, its items encoded one by one, the bytes of one json.dumps of the document."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import feedgen_reference
from policyfeed.site.feed_xml import attr, rfc822, text
from policyfeed.site.feeds import (
    ArchiveLinks,
    Category,
    FeedEntry,
    FeedMeta,
    json_feed_object,
    render_atom,
    render_json,
    render_rss,
)

# Text with what XML and HTML escape, white space of every kind, and letters beyond ASCII.
SPECIAL = st.sampled_from(list("&<>\"'\r\n\t é–\u00a0\u202e#;/=x1"))
TEXT = st.lists(SPECIAL, max_size=12).map("".join)
WORD = st.text(alphabet="abcxyz-09", min_size=1, max_size=8)
URL = st.builds(lambda path, query: f"https://example.org/{path}/{query}", WORD, TEXT)
MOMENT = st.builds(
    lambda day, micro, hours: (
        datetime(2012, 7, 1, tzinfo=UTC) + timedelta(days=day, microseconds=micro)
    ).astimezone(timezone(timedelta(hours=hours))),
    st.integers(-400_000, 20_000),
    st.sampled_from([0, 0, 1, 999_999]),
    st.integers(-12, 12),
)
HTML = st.sampled_from(
    [
        "<p>Body</p>",
        '<p>Tom &amp; Jerry &lt;3 <a href="https://example.org/?a=1&amp;b=2">x</a></p>\n<p>é</p>',
        '<p id="fn">Note<a href="#fn">1</a></p>',
        "",
        "<script>alert(1)</script>",
        "<p>a\r\nb\tc</p>",
    ]
)


def fields(entry: FeedEntry) -> dict[str, object]:
    """What makes ``entry``, for a fresh one that has written nothing yet."""
    names = ("id", "title", "link", "published", "updated", "content_html", "summary")
    return {name: getattr(entry, name) for name in (*names, "authors", "categories")}


@st.composite
def metas(draw: st.DrawFn) -> FeedMeta:
    base = draw(URL) + "/"
    optional = st.one_of(st.just(""), TEXT)
    return FeedMeta(
        title=draw(optional),
        link=draw(URL),
        self_base=base,
        id=draw(st.one_of(URL, TEXT.map(lambda t: "tag:x," + t))),
        subtitle=draw(optional),
        language=draw(st.sampled_from(["", "en", "fr-CH"])),
        icon=draw(st.one_of(st.just(""), URL)),
        logo=draw(st.one_of(st.just(""), URL)),
        author=draw(optional),
        author_email=draw(st.sampled_from(["", "editor@example.org", "a&b@example.org"])),
        hub=draw(st.one_of(st.just(""), URL)),
        category_scheme=draw(st.one_of(st.just(""), URL)),
        last_change=draw(st.one_of(st.none(), MOMENT)),
    )


@st.composite
def entries(draw: st.DrawFn) -> FeedEntry:
    link = draw(URL)
    published = draw(MOMENT)
    return FeedEntry(
        id=draw(st.one_of(st.just(link), TEXT.map(lambda t: "tag:x," + t))),
        title=draw(TEXT),
        link=link,
        published=published,
        updated=max(published, draw(MOMENT)),
        content_html=draw(HTML),
        summary=draw(TEXT),
        authors=tuple(draw(st.lists(TEXT, max_size=3))),
        categories=tuple(
            Category(term, label)
            for term, label in draw(st.lists(st.tuples(WORD, TEXT), max_size=3))
        ),
    )


@st.composite
def archives(draw: st.DrawFn) -> ArchiveLinks | None:
    if draw(st.booleans()):
        return None
    folder = st.one_of(st.just(""), URL.map(lambda url: url + "/"))
    return ArchiveLinks(
        current=draw(folder),
        prev_archive=draw(folder),
        next_archive=draw(folder),
        is_archive=draw(st.booleans()),
    )


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metas(), st.lists(entries(), max_size=4), archives())
def test_rss_and_atom_are_the_bytes_feedgen_wrote(
    meta: FeedMeta, items: list[FeedEntry], archive: ArchiveLinks | None
) -> None:
    assert render_rss(meta, items, archive) == feedgen_reference.render_rss(meta, items, archive)
    assert render_atom(meta, items, archive) == feedgen_reference.render_atom(meta, items, archive)


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metas(), st.lists(entries(), max_size=4), archives())
def test_the_json_feed_is_one_dump_of_the_document(
    meta: FeedMeta, items: list[FeedEntry], archive: ArchiveLinks | None
) -> None:
    whole = json.dumps(json_feed_object(meta, items, archive), ensure_ascii=False, indent=2)
    safe = whole.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    assert render_json(meta, items, archive) == (safe + "\n").encode("utf-8")
    assert json.loads(render_json(meta, items, archive)) == json.loads(whole)


def test_an_entry_in_two_feeds_is_the_same_in_both() -> None:
    """Its written item is kept for the next feed: the other feed's scheme gets its own."""
    item = FeedEntry(
        id="tag:x,1",
        title="T",
        link="https://example.org/p/",
        published=datetime(2012, 7, 1, tzinfo=UTC),
        updated=datetime(2012, 7, 1, tzinfo=UTC),
        categories=(Category("ietf", "IETF"),),
    )
    one = FeedMeta(title="A", link="https://a.org/", self_base="https://a.org/", id="a")
    other = FeedMeta(
        title="B",
        link="https://b.org/",
        self_base="https://b.org/",
        id="b",
        category_scheme="https://b.org/topics/",
    )
    for meta in (one, other, one):
        assert render_json(meta, [item]) == render_json(meta, [FeedEntry(**fields(item))])
        assert render_rss(meta, [item]) == feedgen_reference.render_rss(meta, [item])
        assert render_atom(meta, [item]) == feedgen_reference.render_atom(meta, [item])


def test_escaping_is_libxml2s() -> None:
    assert text('a&b<c>d\r\n\t"') == 'a&amp;b&lt;c&gt;d&#13;\n\t"'
    assert attr('a&b<c>d\r\n\t"') == "a&amp;b&lt;c&gt;d&#13;&#10;&#9;&quot;"


def test_rss_dates_have_english_names_and_the_offset() -> None:
    moment = datetime(2012, 7, 25, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert rfc822(moment) == "Wed, 25 Jul 2012 14:00:00 +0200"
