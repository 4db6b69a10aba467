"""Feeds shaped like the ones WordPress, Ghost and Drupal publish, written for the sync tests.

Each writer takes the blog's address and a list of :class:`Item` and returns the document as
those systems write it: WordPress's RSS 2.0 with content:encoded in CDATA, dc:creator, several
categories, a comments link and comments feed per post, and (with a plugin) a next page;
Ghost's RSS with an ObjectId guid, media:content and root-relative images; Drupal's RSS with
xml:base, escaped HTML in description, "12 at https://…" guids and taxonomy categories;
WordPress's Atom feed with xml:base on each content, categories as terms and rel="replies".
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime


@dataclass
class Item:
    title: str
    slug: str
    number: int
    published: datetime
    body: str = ""
    summary: str = ""
    author: str = "Ann Editor"
    categories: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.body:
            self.body = f"<p>What happened at {html.escape(self.title)}.</p>"
        if not self.summary:
            self.summary = f"About {self.title}"


def rfc822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def sample_items(count: int = 3, start: int = 1) -> list[Item]:
    titles = [
        ("ITU Council and WTSA", "itu-council-and-wtsa", ["ITU / WCIT"]),
        ("IETF 84 in Vancouver", "ietf-84-in-vancouver", ["IETF", "Uncategorized"]),
        ("The Beijing Treaty", "the-beijing-treaty", ["Intellectual property"]),
        ("WCIT preparation", "wcit-preparation", ["ITU / WCIT"]),
        ("ACTA and the TPPA", "acta-and-the-tppa", ["Intellectual property", "Trade"]),
        ("Internet governance forum", "internet-governance-forum", ["Internet governance"]),
        ("Open standards", "open-standards", ["IETF"]),
        ("Access for all", "access-for-all", ["Access"]),
    ]
    items = []
    for number in range(start, start + count):
        title, slug, categories = titles[(number - 1) % len(titles)]
        if number > len(titles):
            title, slug = f"{title} ({number})", f"{slug}-{number}"
        items.append(
            Item(
                title,
                slug,
                100 + number,
                datetime(2012, 7, 1 + number, 9, 0, tzinfo=UTC),
                categories=list(categories),
            )
        )
    return items


def wordpress_feed(base: str, items: list[Item], *, next_page: str = "") -> str:
    """``base`` ends in "/" (``http://127.0.0.1:PORT/``); newest item first, as WordPress does."""
    entries = []
    for item in sorted(items, key=lambda i: i.published, reverse=True):
        link = f"{base}{item.published:%Y/%m/%d}/{item.slug}/"
        categories = "".join(f"<category><![CDATA[{c}]]></category>" for c in item.categories)
        body = (
            f'{item.body}\n<p><img src="wp-content/uploads/2012/07/{item.slug}.jpg" '
            f'alt="{html.escape(item.title)}" width="640" height="480" '
            f'srcset="wp-content/uploads/2012/07/{item.slug}-300x225.jpg 300w" '
            f'class="aligncenter size-large" /></p>\n<p>The post <a href="{link}">{item.title}</a> '
            f'appeared first on <a href="/">the chapter blog</a>.</p>'
        )
        entries.append(
            f"""
	<item>
		<title>{html.escape(item.title)}</title>
		<link>{link}</link>
		<comments>{link}#respond</comments>
		<dc:creator><![CDATA[{item.author}]]></dc:creator>
		<pubDate>{rfc822(item.published)}</pubDate>
		{categories}
		<guid isPermaLink="false">{base}?p={item.number}</guid>
		<description><![CDATA[{item.summary} [&#8230;]]]></description>
		<content:encoded><![CDATA[{body}]]></content:encoded>
		<wfw:commentRss>{link}feed/</wfw:commentRss>
		<slash:comments>3</slash:comments>
	</item>"""
        )
    paging = f'\n\t<atom:link href="{next_page}" rel="next" />' if next_page else ""
    newest = max((i.published for i in items), default=datetime(2012, 7, 1, tzinfo=UTC))
    return f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"
	xmlns:content="http://purl.org/rss/1.0/modules/content/"
	xmlns:wfw="http://wellformedweb.org/CommentAPI/"
	xmlns:dc="http://purl.org/dc/elements/1.1/"
	xmlns:atom="http://www.w3.org/2005/Atom"
	xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"
	xmlns:slash="http://purl.org/rss/1.0/modules/slash/"
	>

<channel>
	<title>Chapter blog</title>
	<atom:link href="{base}feed/" rel="self" type="application/rss+xml" />{paging}
	<link>{base}</link>
	<description>News from the chapter</description>
	<lastBuildDate>{rfc822(newest)}</lastBuildDate>
	<language>en-US</language>
	<sy:updatePeriod>hourly</sy:updatePeriod>
	<sy:updateFrequency>1</sy:updateFrequency>
	<generator>https://wordpress.org/?v=6.4.2</generator>
{"".join(entries)}
	</channel>
</rss>
"""


def wordpress_comments_feed(base: str, item: Item) -> str:
    """The comments feed a WordPress post links (wfw:commentRss): not posts, never synced."""
    link = f"{base}{item.published:%Y/%m/%d}/{item.slug}/"
    return f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"
	xmlns:content="http://purl.org/rss/1.0/modules/content/"
	xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
	<title>Comments on: {html.escape(item.title)}</title>
	<link>{link}</link>
	<description>News from the chapter</description>
	<item>
		<title>By: A reader</title>
		<link>{link}#comment-7</link>
		<dc:creator><![CDATA[A reader]]></dc:creator>
		<pubDate>{rfc822(item.published)}</pubDate>
		<guid isPermaLink="false">{base}?p={item.number}#comment-7</guid>
		<description><![CDATA[Great post!]]></description>
	</item>
</channel>
</rss>
"""


def ghost_feed(base: str, items: list[Item]) -> str:
    entries = []
    for item in sorted(items, key=lambda i: i.published, reverse=True):
        image = f"/content/images/2012/07/{item.slug}.png"
        entries.append(
            f"<item><title><![CDATA[{item.title}]]></title>"
            f"<description><![CDATA[{item.summary}]]></description>"
            f"<link>{base}{item.slug}/</link>"
            f'<guid isPermaLink="false">5f8d0d55b54764421b71{item.number:04x}</guid>'
            + "".join(f"<category><![CDATA[{c}]]></category>" for c in item.categories)
            + f"<dc:creator><![CDATA[{item.author}]]></dc:creator>"
            f"<pubDate>{rfc822(item.published)}</pubDate>"
            f'<media:content url="{base.rstrip("/")}{image}" medium="image"/>'
            f'<content:encoded><![CDATA[<img src="{image}" alt="{html.escape(item.title)}">'
            f"{item.body}]]></content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:atom="http://www.w3.org/2005/Atom" version="2.0" '
        'xmlns:media="http://search.yahoo.com/mrss/"><channel>'
        "<title><![CDATA[Ghost Blog]]></title><description><![CDATA[Thoughts]]></description>"
        f"<link>{base}</link><image><url>{base}favicon.png</url><title>Ghost Blog</title>"
        f"<link>{base}</link></image><generator>Ghost 5.75</generator>"
        f"<lastBuildDate>Wed, 25 Jul 2012 10:00:00 GMT</lastBuildDate>"
        f'<atom:link href="{base}rss/" rel="self" type="application/rss+xml"/><ttl>60</ttl>'
        + "".join(entries)
        + "</channel></rss>"
    )


def drupal_feed(base: str, items: list[Item]) -> str:
    entries = []
    for item in sorted(items, key=lambda i: i.published, reverse=True):
        body = f'{item.body}<p><img src="/sites/default/files/{item.slug}.png" alt=""></p>'
        categories = "".join(
            f'<category domain="{base}taxonomy/term/{n}">{html.escape(c)}</category>'
            for n, c in enumerate(item.categories, start=3)
        )
        entries.append(
            f"""
    <item>
      <title>{html.escape(item.title)}</title>
      <link>{base}node/{item.number}</link>
      <description>{html.escape(body)}</description>
      <pubDate>{item.published.strftime("%a, %d %b %Y %H:%M:%S +0000")}</pubDate>
      <dc:creator>{html.escape(item.author)}</dc:creator>
      <guid isPermaLink="false">{item.number} at {base.rstrip("/")}</guid>
      {categories}
      <comments>{base}node/{item.number}#comments</comments>
    </item>"""
        )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xml:base="{base}" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">
  <channel>
    <title>Drupal chapter site</title>
    <link>{base}</link>
    <description></description>
    <language>en</language>
    <atom:link href="{base}rss.xml" rel="self" type="application/rss+xml" />
{"".join(entries)}
  </channel>
</rss>
"""


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wordpress_atom_feed(
    base: str, items: list[Item], *, next_page: str = "", edited: dict[str, datetime] | None = None
) -> str:
    """WordPress's Atom feed (``/feed/atom/``): xml:base on the feed and on each content, CDATA
    in title, summary and content, a relative image, categories as ``term``, the comments as
    ``rel="replies"`` links (thr:), and (with a plugin) a ``rel="next"`` page. ``edited`` gives
    an entry's ``updated`` by slug (else its publication)."""
    entries = []
    edited = edited or {}
    for item in sorted(items, key=lambda i: i.published, reverse=True):
        link = f"{base}{item.published:%Y/%m/%d}/{item.slug}/"
        categories = "".join(
            f'\n\t\t<category scheme="{base}" term="{html.escape(c)}" />' for c in item.categories
        )
        body = (
            f'{item.body}\n<p><img src="wp-content/uploads/2012/07/{item.slug}.jpg" '
            f'alt="{html.escape(item.title)}" width="640" height="480" /></p>'
        )
        entries.append(
            f"""
	<entry>
		<author>
			<name>{html.escape(item.author)}</name>
		</author>
		<title type="html"><![CDATA[{item.title}]]></title>
		<link rel="alternate" type="text/html" href="{link}" />
		<id>{base}?p={item.number}</id>
		<updated>{rfc3339(edited.get(item.slug, item.published))}</updated>
		<published>{rfc3339(item.published)}</published>{categories}
		<summary type="html"><![CDATA[{item.summary} [&#8230;]]]></summary>
		<content type="html" xml:base="{link}"><![CDATA[{body}]]></content>
		<link rel="replies" type="text/html" href="{link}#comments" thr:count="3" />
		<link rel="replies" type="application/atom+xml" href="{link}feed/atom/" thr:count="3" />
		<thr:total>3</thr:total>
	</entry>"""
        )
    paging = f'\n\t<link rel="next" href="{next_page}" />' if next_page else ""
    newest = max((i.published for i in items), default=datetime(2012, 7, 1, tzinfo=UTC))
    return f"""<?xml version="1.0" encoding="UTF-8"?><feed
  xmlns="http://www.w3.org/2005/Atom"
  xmlns:thr="http://purl.org/syndication/thread/1.0"
  xml:lang="en-US"
  xml:base="{base}wp-atom.php"
   >
	<title type="text">Chapter blog</title>
	<subtitle type="text">News from the chapter</subtitle>

	<updated>{rfc3339(newest)}</updated>

	<link rel="alternate" type="text/html" href="{base}" />
	<id>{base}feed/atom/</id>
	<link rel="self" type="application/atom+xml" href="{base}feed/atom/" />{paging}

	<generator uri="https://wordpress.org/" version="6.4.2">WordPress</generator>
{"".join(entries)}
</feed>
"""
