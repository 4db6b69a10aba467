"""The feed layer: RSS 2.0, Atom 1.0 and JSON Feed 1.1 documents from FeedMeta and FeedEntry."""

from __future__ import annotations

import html
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import lxml.etree
import lxml.html
import pytest
import sqlite_utils
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from policyfeed.config import Settings
from policyfeed.site.build import post_entry
from policyfeed.site.feeds import (
    ATOM_FILE,
    EPOCH,
    FEED_FILES,
    JSON_FILE,
    RSS_FILE,
    ArchiveLinks,
    Category,
    FeedEntry,
    FeedMeta,
    OpmlFeed,
    render_atom,
    render_json,
    render_opml,
    render_rss,
    write_feed_set,
)
from policyfeed.store import posts as post_store
from site_support import check_json_feed, check_xml_feed, parse_feed, save

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "fh": "http://purl.org/syndication/history/1.0",
}
SITE = "https://policy.example.org/"


def meta(**changes: str) -> FeedMeta:
    values = {
        "title": "Public Policy",
        "link": SITE,
        "self_base": SITE,
        "id": SITE,
        "subtitle": "Policy & <news>",
        "language": "en",
        "author": "Public Policy team",
    }
    values.update(changes)
    return FeedMeta(**values)  # type: ignore[arg-type]


def entry(n: int = 1, **changes: object) -> FeedEntry:
    values: dict[str, object] = {
        "id": f"tag:policy.example.org,2012-07-{n:02d}:posts/post-{n}",
        "title": f"Post {n}",
        "link": f"{SITE}posts/post-{n}/",
        "published": datetime(2012, 7, n, 9, tzinfo=UTC),
        "updated": datetime(2012, 7, n, 10, tzinfo=UTC),
        "content_html": f"<p>Body {n}</p>",
        "summary": f"Summary {n}",
        "authors": ("Jane Doe",),
        "categories": (Category("ietf", "IETF"),),
    }
    values.update(changes)
    return FeedEntry(**values)  # type: ignore[arg-type]


def xml(data: bytes) -> lxml.etree._Element:
    return lxml.etree.fromstring(data)


# --- RSS ------------------------------------------------------------------------------------


def test_rss_puts_the_self_link_first_and_the_site_link_in_channel_link() -> None:
    channel = xml(render_rss(meta(hub="https://hub.example.org/"), [entry()])).find("channel")
    atom_links = channel.findall("atom:link", NS)
    assert atom_links[0].get("rel") == "self"
    assert atom_links[0].get("href") == f"{SITE}feed.xml"
    assert atom_links[0].get("type") == "application/rss+xml"
    assert channel.findtext("link") == SITE


def test_rss_item_has_guid_link_escaped_description_full_content_dates_and_creator() -> None:
    item = xml(render_rss(meta(), [entry(summary="Tom & <Jerry>")])).find("channel/item")
    guid = item.find("guid")
    assert guid.text == "tag:policy.example.org,2012-07-01:posts/post-1"
    assert guid.get("isPermaLink") == "false"
    assert item.findtext("link") == f"{SITE}posts/post-1/"
    # <description> is read as HTML: the plain-text summary arrives escaped.
    assert item.findtext("description") == html.escape("Tom & <Jerry>", quote=False)
    assert item.findtext("content:encoded", namespaces=NS) == "<p>Body 1</p>"
    assert item.findtext("dc:creator", namespaces=NS) == "Jane Doe"
    assert item.find("author") is None  # RSS <author> must be an email address
    assert item.findtext("category") == "IETF"
    published = parsedate_to_datetime(item.findtext("pubDate"))
    assert published == datetime(2012, 7, 1, 9, tzinfo=UTC) and published.tzinfo is not None


def test_rss_guid_is_a_permalink_when_the_id_is_the_link() -> None:
    item = xml(render_rss(meta(), [entry(id=f"{SITE}posts/post-1/")])).find("channel/item")
    assert item.find("guid").get("isPermaLink") == "true"


def test_rss_channel_dates_are_the_newest_entry_change_not_the_build_time() -> None:
    entries = [entry(3), entry(2, updated=datetime(2012, 7, 20, tzinfo=UTC)), entry(1)]
    channel = xml(render_rss(meta(), entries)).find("channel")
    assert parsedate_to_datetime(channel.findtext("lastBuildDate")) == datetime(
        2012, 7, 20, tzinfo=UTC
    )
    assert parsedate_to_datetime(channel.findtext("pubDate")) == datetime(2012, 7, 3, 9, tzinfo=UTC)
    assert channel.findtext("generator") == "policyfeed"
    assert channel.findtext("language") == "en"
    assert channel.findtext("description") == "Policy &amp; &lt;news&gt;"


def test_entries_keep_the_order_given_newest_first() -> None:
    entries = [entry(3), entry(2), entry(1)]
    for render in (render_rss, render_atom):
        assert [e.title for e in parse_feed(render(meta(), entries)).entries] == [
            "Post 3",
            "Post 2",
            "Post 1",
        ]
    assert [i["title"] for i in json.loads(render_json(meta(), entries))["items"]] == [
        "Post 3",
        "Post 2",
        "Post 1",
    ]


# --- Atom -----------------------------------------------------------------------------------


def test_atom_has_id_updated_author_self_link_html_content_and_html_text_constructs() -> None:
    feed = xml(render_atom(meta(icon="https://policy.example.org/icon.png"), [entry(2), entry(1)]))
    assert feed.findtext("atom:id", namespaces=NS) == SITE
    assert feed.findtext("atom:updated", namespaces=NS) == "2012-07-02T10:00:00+00:00"
    assert feed.findtext("atom:author/atom:name", namespaces=NS) == "Public Policy team"
    links = feed.findall("atom:link", NS)
    assert (links[0].get("rel"), links[0].get("href")) == ("self", f"{SITE}atom.xml")
    assert (links[-1].get("rel"), links[-1].get("href")) == ("alternate", SITE)
    assert feed.findtext("atom:generator", namespaces=NS) == "policyfeed"
    assert feed.findtext("atom:icon", namespaces=NS) == "https://policy.example.org/icon.png"
    # Text constructs are type="html" with the text escaped (readers render type="text"
    # that looks like markup as HTML anyway).
    subtitle = feed.find("atom:subtitle", NS)
    assert subtitle.get("type") == "html" and subtitle.text == "Policy &amp; &lt;news&gt;"
    assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    first = feed.find("atom:entry", NS)
    content = first.find("atom:content", NS)
    assert content.get("type") == "html" and content.text == "<p>Body 2</p>"
    summary = first.find("atom:summary", NS)
    assert summary.get("type") == "html" and summary.text == "Summary 2"
    assert first.findtext("atom:published", namespaces=NS) == "2012-07-02T09:00:00+00:00"
    assert first.findtext("atom:updated", namespaces=NS) == "2012-07-02T10:00:00+00:00"
    assert first.find("atom:category", NS).attrib == {"term": "ietf", "label": "IETF"}


def test_dates_in_other_zones_are_written_in_utc() -> None:
    zurich = timezone(timedelta(hours=2))
    one = entry(published=datetime(2012, 7, 1, 11, tzinfo=zurich))
    feed = xml(render_atom(meta(), [one]))
    assert feed.findtext("atom:entry/atom:published", namespaces=NS) == "2012-07-01T09:00:00+00:00"


def test_a_feed_without_entries_is_valid_and_dated_at_the_epoch_never_now() -> None:
    for render in (render_rss, render_atom):
        parsed = parse_feed(render(meta(), []))
        assert parsed.entries == []
    feed = xml(render_atom(meta(), []))
    assert feed.findtext("atom:updated", namespaces=NS) == EPOCH.isoformat()
    assert check_json_feed(render_json(meta(), [])) == []


def test_rendering_twice_gives_the_same_bytes() -> None:
    entries = [entry(2), entry(1)]
    for render in (render_rss, render_atom, render_json):
        assert render(meta(), entries) == render(meta(), entries)


# --- hub and RFC 5005 -----------------------------------------------------------------------


def test_a_hub_is_advertised_in_all_three_formats() -> None:
    hub = "https://hub.example.org/"
    rss = xml(render_rss(meta(hub=hub), [entry()]))
    assert [link.get("href") for link in rss.findall("channel/atom:link[@rel='hub']", NS)] == [hub]
    atom = xml(render_atom(meta(hub=hub), [entry()]))
    assert [link.get("href") for link in atom.findall("atom:link[@rel='hub']", NS)] == [hub]
    assert json.loads(render_json(meta(hub=hub), [entry()]))["hubs"] == [
        {"type": "WebSub", "url": hub}
    ]


def test_the_subscription_document_links_the_newest_archive_page() -> None:
    links = ArchiveLinks(current=SITE, prev_archive=f"{SITE}archive/4/")
    rss = xml(render_rss(meta(), [entry()], links)).find("channel")
    assert rss.find("atom:link[@rel='prev-archive']", NS).get("href") == f"{SITE}archive/4/feed.xml"
    assert rss.find("fh:archive", NS) is None
    atom = xml(render_atom(meta(), [entry()], links))
    assert atom.find("atom:link[@rel='prev-archive']", NS).get("href") == (
        f"{SITE}archive/4/atom.xml"
    )
    assert atom.find("fh:archive", NS) is None
    assert json.loads(render_json(meta(), [entry()], links))["next_url"] == (
        f"{SITE}archive/4/feed.json"
    )


def test_an_archive_document_carries_fh_archive_current_and_both_neighbours() -> None:
    folder = f"{SITE}archive/2/"
    links = ArchiveLinks(
        current=SITE,
        prev_archive=f"{SITE}archive/1/",
        next_archive=f"{SITE}archive/3/",
        is_archive=True,
    )
    page = meta(self_base=folder, link=folder)
    for render, file in ((render_rss, RSS_FILE), (render_atom, ATOM_FILE)):
        root = xml(render(page, [entry()], links))
        scope = root.find("channel") if file is RSS_FILE else root
        assert scope.find("fh:archive", NS) is not None
        rels = {link.get("rel"): link.get("href") for link in scope.findall("atom:link", NS)}
        assert rels["self"] == folder + file.name
        assert rels["current"] == SITE + file.name
        assert rels["prev-archive"] == f"{SITE}archive/1/{file.name}"
        assert rels["next-archive"] == f"{SITE}archive/3/{file.name}"
        parse_feed(render(page, [entry()], links))


# --- cleaning -------------------------------------------------------------------------------


def test_no_script_iframe_event_handler_or_javascript_url_reaches_any_feed() -> None:
    dirty = (
        '<p onclick="steal()">Hi <a href="javascript:alert(1)">x</a> <a href="/rel">rel</a></p>'
        '<script>alert(1)</script><iframe src="https://evil.example/"></iframe>'
        '<img src="pic.png" onerror="x()">'
    )
    one = entry(content_html=dirty)
    assert one.content_html == (
        '<p>Hi <a rel="noopener">x</a> <a href="https://policy.example.org/rel" rel="noopener">'
        'rel</a></p><img src="https://policy.example.org/posts/post-1/pic.png">'
    )
    for render in (render_rss, render_atom, render_json):
        text = render(meta(), [one]).decode()
        for bad in ("alert(", "steal()", "evil.example", "onerror", "onclick", "javascript:"):
            assert bad not in text


def test_control_characters_are_removed_from_every_field() -> None:
    one = entry(title="A\x00B\x0b", summary="s\x1fum", content_html="<p>x\x08y</p>")
    assert (one.title, one.summary, one.content_html) == ("AB", "sum", "<p>xy</p>")
    m = meta(title="Site\x01")
    assert m.title == "Site"
    for render in (render_rss, render_atom):
        parse_feed(render(m, [one]))


def test_an_entry_without_content_gets_its_escaped_summary_as_content() -> None:
    assert entry(content_html="", summary="A < B").content_html == "<p>A &lt; B</p>"


def test_json_feed_text_holds_no_raw_markup_characters_yet_reads_back_the_same() -> None:
    one = entry(title="A <b> & c", content_html="<p>x &amp; y</p>")
    data = render_json(meta(), [one])
    assert b"<" not in data and b">" not in data and b"&" not in data
    item = json.loads(data)["items"][0]
    assert item["title"] == "A <b> & c"
    assert item["content_html"] == "<p>x &amp; y</p>"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("published", datetime(2012, 7, 1), "time zone"),
        ("updated", datetime(2012, 7, 1), "time zone"),
        ("link", "/posts/x/", "absolute"),
        ("id", " ", "needs an id"),
    ],
)
def test_entries_refuse_naive_dates_relative_links_and_empty_ids(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        entry(**{field: value})


def test_meta_refuses_relative_urls() -> None:
    with pytest.raises(ValueError, match="absolute"):
        meta(link="/")
    with pytest.raises(ValueError, match="end in '/'"):
        meta(self_base="https://policy.example.org/feeds")


# --- JSON Feed ------------------------------------------------------------------------------


def test_json_feed_follows_version_1_1() -> None:
    data = render_json(
        meta(icon="https://policy.example.org/i.png", logo="https://policy.example.org/l.png"),
        [entry(2), entry(1)],
    )
    assert check_json_feed(data, 2) == [entry(2).id, entry(1).id]
    feed = json.loads(data)
    assert feed["feed_url"] == f"{SITE}feed.json"
    assert feed["home_page_url"] == SITE
    assert (feed["icon"], feed["favicon"]) == (
        "https://policy.example.org/l.png",
        "https://policy.example.org/i.png",
    )
    assert feed["items"][0]["date_published"] == "2012-07-02T09:00:00+00:00"
    assert feed["items"][0]["authors"] == [{"name": "Jane Doe"}]
    assert feed["items"][0]["tags"] == ["IETF"]


# --- writing --------------------------------------------------------------------------------


def test_write_feed_set_writes_the_three_files_and_then_only_what_changed(tmp_path: Path) -> None:
    folder = f"{SITE}topics/ietf/"
    m = meta(self_base=folder, link=folder, id=folder)
    written = write_feed_set(tmp_path, "topics/ietf", m, [entry(1)])
    assert sorted(p.name for p in written) == sorted(f.name for f in FEED_FILES)
    assert write_feed_set(tmp_path, "topics/ietf", m, [entry(1)]) == []
    assert check_json_feed((tmp_path / "topics/ietf" / JSON_FILE.name).read_bytes()) == [
        entry(1).id
    ]
    changed = write_feed_set(tmp_path, "topics/ietf", m, [entry(2), entry(1)])
    assert len(changed) == 3


# --- OPML -----------------------------------------------------------------------------------


def test_opml_lists_each_feed_once_with_absolute_urls_and_folders() -> None:
    feeds = [
        OpmlFeed("Public Policy", f"{SITE}feed.xml", SITE, "All posts"),
        OpmlFeed("IETF", f"{SITE}topics/ietf/feed.xml", f"{SITE}topics/ietf/", group="Topics"),
        OpmlFeed(
            "ITU & <WCIT>", f"{SITE}topics/itu/feed.xml", f"{SITE}topics/itu/", group="Topics"
        ),
    ]
    data = render_opml("Feeds", feeds, updated=datetime(2012, 7, 25, tzinfo=UTC))
    root = xml(data)
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "Feeds"
    assert parsedate_to_datetime(root.findtext("head/dateModified")).year == 2012
    outlines = root.findall(".//outline[@type='rss']")
    assert [o.get("xmlUrl") for o in outlines] == [f.xml_url for f in feeds]
    assert [o.get("text") for o in root.find("body").findall("outline")] == [
        "Public Policy",
        "Topics",
    ]
    assert outlines[2].get("text") == "ITU & <WCIT>"


# --- anything a post can hold still makes valid feeds ---------------------------------------

AWKWARD = st.sampled_from(
    ["<", ">", "&", "]]>", "<![CDATA[", "\x00", "\x0b", "\x1f", "\ufffe", "\ud800", "&amp;",
     "<script>alert(1)</script>", '<a href="/x" onclick="y()">', "</p>", "\u2028", "😀", "é"]
)  # fmt: skip
TEXT = st.lists(st.one_of(st.text(max_size=8), AWKWARD), max_size=12).map("".join)


SLUGS = itertools.count(1)


def html_fields(rss: bytes, atom: bytes, items: bytes) -> list[str]:
    """Every field of the three documents that readers take as HTML."""
    channel = xml(rss).find("channel")
    fields = [channel.findtext("description") or ""]
    for item in channel.findall("item"):
        fields += [
            item.findtext("description") or "",
            item.findtext("content:encoded", namespaces=NS) or "",
        ]
    fields += [e.text or "" for e in xml(atom).iterfind(".//atom:content", NS)]
    fields += [i["content_html"] for i in json.loads(items)["items"]]
    return fields


def assert_harmless(fragment: str) -> None:
    if not fragment.strip():
        return
    tree = lxml.html.fragment_fromstring(fragment, create_parent="div")
    for element in tree.iter():
        assert element.tag not in ("script", "iframe", "object", "embed", "style"), fragment
        assert not [a for a in element.attrib if a.lower().startswith("on")], fragment
        for name in ("href", "src"):
            assert not element.get(name, "").lower().startswith("javascript:"), fragment


def as_feedparser_reads(text: str) -> str:
    """feedparser "repairs" text that reads as UTF-8 mis-decoded as Latin-1 (mixin.py, pop()):
    a title such as "Â¡" comes back as "¡". The feed holds the right bytes; this is the reader's
    heuristic, applied here so the round trip is still compared exactly."""
    try:
        return text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(title=TEXT, summary=TEXT, body=TEXT, author=TEXT)
def test_any_title_and_body_saved_as_the_app_does_gives_feeds_that_parse(
    db: sqlite_utils.Database, settings: Settings, title: str, summary: str, body: str, author: str
) -> None:
    post_id = save(
        db,
        settings,
        f"post-{next(SLUGS)}",
        title="T " + title,
        summary=summary,
        body=body,
        author=author,
        date=datetime(2012, 7, 25, 9, tzinfo=UTC),
    )
    post = post_store.get_posts_by_ids(db, [post_id])[0]
    one = post_entry(post, settings)
    rss, atom, items = (
        render_rss(meta(), [one]),
        render_atom(meta(), [one]),
        render_json(meta(), [one]),
    )
    assert check_xml_feed(rss, 1) == check_xml_feed(atom, 1) == check_json_feed(items, 1)
    assert json.loads(items)["items"][0]["title"] == one.title
    # Atom titles are type="html" with the text escaped: a reader unescapes them.
    shown = html.unescape(parse_feed(atom).entries[0].title)
    assert shown == as_feedparser_reads(one.title)
    for fragment in html_fields(rss, atom, items):
        assert_harmless(fragment)
