"""The Post model, input validation, and the HTML clean-up every post passes on the way in."""

from __future__ import annotations

import contextvars
import functools
import html as _html
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3

from policyfeed.content.text import clean_line, clean_text
from policyfeed.content.urls import SITE_RELATIVE, absolute, site_relative, to_uri
from policyfeed.errors import InputError
from policyfeed.model import Post, PostDraft, Topic, check_language

STATUSES = ("draft", "published")
BODY_FORMATS = ("html", "markdown")

_SLUG_OK = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")

#: The URL schemes a link or an image in a post may use; any other (javascript:, data:…) goes.
URL_SCHEMES = ("http", "https", "mailto", "tel", "ftp")
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dfn", "div",
    "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
}  # fmt: skip
# Elements whose text stands on lines of its own in the plain-text reading of a body.
# Each starts and ends a line of a post's text: an excerpt or a search hit never runs two of them
# together ("Room Plenary Liffey A dig +dnssec").
TEXT_BLOCKS = (
    "p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "td", "th", "caption",
    "pre", "dt", "dd", "figcaption", "div", "table", "ul", "ol", "dl", "figure", "hr",
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    # ids stay (footnotes and "#section" links point at them); pages show them prefixed with
    # the post's slug (prefix_ids) so that two posts on a page, or a post and the page around
    # it, cannot collide.
    "*": {"lang", "dir", "title", "id"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "ol": {"start"},
    "blockquote": {"cite"},
    "q": {"cite"},
}


def strip_forbidden(text: str) -> str:
    """Remove what no feed, page or message may carry (:func:`text.clean_text`): characters
    XML 1.0 forbids, C1 controls, Unicode noncharacters."""
    return clean_text(text)


def _transliterated(text: str) -> str:
    """``text`` in ASCII letters: accents dropped as before (``café`` is ``cafe``), every other
    script transliterated by anyascii (``Κοινωνία`` is ``Koinonia``, ``互联网`` is ``Hu Lian Wang``:
    syllable scripts get a space between syllables so that slugs keep word breaks)."""
    if text.isascii():
        return text
    from anyascii import anyascii

    out = []
    for char in text:
        if char.isascii():
            out.append(char)
            continue
        plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
        if plain or unicodedata.category(char).startswith("M"):
            out.append(plain)  # a letter with an accent, or the accent alone
            continue
        spelled = anyascii(char)
        out.append(f" {spelled} " if len(spelled) > 1 and spelled[0].isupper() else spelled)
    return "".join(out)


def slugify(text: str) -> str:
    """A URL slug: ASCII letters, digits and single hyphens, at most 100 characters, from text
    in any script (see :func:`_transliterated`); ASCII text gives the slugs it always gave."""
    slug = re.sub(r"[^a-z0-9]+", "-", _transliterated(text).lower()).strip("-")
    return slug[:100].rstrip("-")


def check_slug(slug: str) -> str:
    if not _SLUG_OK.match(slug):
        raise ValueError(
            f"slug {slug!r} must be lower-case letters, digits and hyphens (at most 100)"
        )
    return slug


#: The URL relative links are resolved against, for the sanitiser at work in this thread: one
#: sanitiser serves every base URL (building one costs more than cleaning a post, and a feed
#: entry resolves against its own link).
_BASE_URL: contextvars.ContextVar[str] = contextvars.ContextVar("policyfeed_base_url")


@functools.lru_cache(maxsize=4)
def _cleaner(with_cite: bool, keep_fragments: bool = True) -> nh3.Cleaner:
    """The sanitiser; relative URLs resolve against :data:`_BASE_URL`."""

    def resolve(value: str) -> str | None:
        value = value.strip()
        if not value:
            return None
        if value.startswith("#") and keep_fragments:
            return value  # a footnote or a section of the post itself, not of the home page
        absolute = urljoin(_BASE_URL.get(), value)
        return absolute if urlsplit(absolute).scheme in URL_SCHEMES else None

    def absolutize(tag: str, attribute: str, value: str) -> str | None:
        return resolve(value) if attribute == "cite" else value

    return nh3.Cleaner(
        tags=ALLOWED_TAGS,
        # <noscript> goes with its content: we never run scripts, and a parser that does
        # reads its markup as text, which then showed as literal tags.
        clean_content_tags={
            "script",
            "style",
            "iframe",
            "object",
            "embed",
            "template",
            "noscript",
        },
        attributes=ALLOWED_ATTRIBUTES,
        # href and src go through the sanitiser's own URL handling (relative ones to resolve);
        # only a cite attribute needs the slower per-attribute callback.
        attribute_filter=absolutize if with_cite else None,
        url_relative=resolve,
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener",
        strip_comments=True,
    )


def sanitize_html(html: str, base_url: str, *, keep_fragments: bool = True) -> str:
    """Allow-list HTML clean-up; relative URLs made absolute against ``base_url``, but links to
    a fragment of the post itself (``#fn:1``), which stay as they are unless not
    ``keep_fragments`` (feeds, whose readers would resolve them against the feed).

    Removes script, style, iframe, noscript, forms, event handlers, ``style`` attributes and any
    URL scheme but those of :data:`URL_SCHEMES`.
    """
    cleaner = _cleaner("cite" in html, keep_fragments)
    token = _BASE_URL.set(base_url)
    try:
        cleaned = cleaner.clean(strip_forbidden(html))
    finally:
        _BASE_URL.reset(token)
    # Character references (&#1;) are decoded by the parser, so forbidden characters can appear
    # only now.
    return strip_forbidden(cleaned).strip()


# In sanitised HTML every attribute is name="value" with no raw quote inside the value, so a
# tag's attributes read one after the other with these two expressions.
_OPEN_TAG = re.compile(r'<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=>"/]+(?:="[^"]*")?)*)(\s*/?)>')
_ATTRIBUTE = re.compile(r'(\s+)([^\s=>"/]+)(?:="([^"]*)")?')


def prefix_ids(html: str, prefix: str) -> str:
    """Sanitised HTML with every ``id`` prefixed, and the ``#fragment`` links that point at
    them changed to match (links to other fragments are left alone)."""
    if 'id="' not in html:
        return html
    ids = set()
    for found in _OPEN_TAG.finditer(html):
        for attribute in _ATTRIBUTE.finditer(found.group(2)):
            if attribute.group(2) == "id" and attribute.group(3):
                ids.add(_html.unescape(attribute.group(3)))

    def attributes(match: re.Match[str]) -> str:
        space, name, value = match.group(1), match.group(2), match.group(3)
        if value is None:
            return match.group(0)
        if name == "id" and value:
            value = prefix + value
        elif name == "href" and value.startswith("#") and _html.unescape(value[1:]) in ids:
            value = "#" + prefix + value[1:]
        return f'{space}{name}="{value}"'

    def opening(match: re.Match[str]) -> str:
        rewritten = _ATTRIBUTE.sub(attributes, match.group(2))
        return f"<{match.group(1)}{rewritten}{match.group(3)}>"

    return _OPEN_TAG.sub(opening, html)


#: The attributes of sanitised HTML that hold a URL (see ALLOWED_ATTRIBUTES).
URL_ATTRIBUTES = ("href", "src", "cite")


def _rewrite_urls(html: str, change: Callable[[str], str | None]) -> str:
    """Sanitised HTML with each URL attribute's value passed through ``change`` (which gets and
    returns the URL unescaped; None leaves it as it was)."""

    def attributes(match: re.Match[str]) -> str:
        space, name, value = match.group(1), match.group(2), match.group(3)
        if value is None or name not in URL_ATTRIBUTES:
            return match.group(0)
        changed = change(_html.unescape(value))
        if changed is None:
            return match.group(0)
        return f'{space}{name}="{changed.replace("&", "&amp;").replace(chr(34), "&quot;")}"'

    def opening(match: re.Match[str]) -> str:
        rewritten = _ATTRIBUTE.sub(attributes, match.group(2))
        return f"<{match.group(1)}{rewritten}{match.group(3)}>"

    return _OPEN_TAG.sub(opening, html)


def site_relative_links(html: str, base_url: str) -> str:
    """Sanitised HTML as it is stored: links and images that point at the site's own pages
    (under ``base_url``) made relative to it (``./posts/x/``), so that a later change of the
    base URL takes effect at the next build. Every other URL stays absolute."""
    host = urlsplit(base_url).hostname
    if not host or host not in html.lower():
        return html
    return _rewrite_urls(html, lambda url: site_relative(url, base_url))


def absolute_links(html: str, base_url: str) -> str:
    """Stored HTML as it goes out (feeds, pages, mail): the site's own links resolved against
    ``base_url`` (the one of this build)."""
    if '="' + SITE_RELATIVE not in html:
        return html

    def change(url: str) -> str | None:
        return absolute(url, base_url) if url.startswith(SITE_RELATIVE) else None

    return _rewrite_urls(html, change)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment (for search); entities decoded, white space folded."""
    if not html.strip():
        return ""
    import lxml.html  # imported here to keep --help light

    fragment = lxml.html.fragment_fromstring(html, create_parent="div")
    for br in fragment.iter("br"):
        br.tail = "\n" + (br.tail or "")
    for block in fragment.iter(*TEXT_BLOCKS):
        # A block starts and ends a line, wherever the parser decided it closes.
        block.text = "\n" + (block.text or "")
        block.tail = "\n" + (block.tail or "")
    text = fragment.text_content()
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


# Sanitised HTML is well-formed and double-quotes every attribute value, and its text escapes
# "<", so two regular expressions read it exactly (four times faster than parsing it again).
_CLEAN_BLOCK_END = re.compile(
    r"<br>|</?(?:" + "|".join(TEXT_BLOCKS) + r')(?:\s(?:[^>"]|"[^"]*")*)?>'
)
_CLEAN_TAG = re.compile(r'<(?:[^>"]|"[^"]*")*>')


def clean_html_to_text(html: str) -> str:
    """:func:`html_to_text` for HTML that came out of :func:`sanitize_html`."""
    marked = _CLEAN_BLOCK_END.sub(lambda m: "\n" + m.group(0) + "\n", html)
    text = _html.unescape(_CLEAN_TAG.sub("", marked))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def markdown_to_html(text: str) -> str:
    import markdown

    return markdown.markdown(text, extensions=["extra", "sane_lists"], output_format="html")


def parse_datetime(value: Any, tz: tzinfo) -> datetime:
    """Read a date or date-time; values without a zone are read in ``tz``. Returns UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0, 0))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("empty date")
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            try:
                moment = parsedate_to_datetime(text)  # RFC 2822, as in RSS
                if moment.tzinfo is None:  # "-0000": UTC, local zone unknown (RFC 2822 3.3)
                    moment = moment.replace(tzinfo=UTC)
            except (TypeError, ValueError, IndexError):
                raise ValueError(
                    f"unparsable date {value!r} (use ISO 8601, e.g. 2012-07-25 or "
                    "2012-07-25T09:00:00+02:00)"
                ) from None
    else:
        raise ValueError(f"unparsable date {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC).replace(microsecond=0)


def _text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int | float):
        raise ValueError(f"{key} must be text, not {type(value).__name__}")
    return strip_forbidden(str(value)).strip()


@functools.lru_cache(maxsize=1024)
def _named_topic(text: str) -> Topic | None:
    """The topic a plain name stands for, if any (an import names the same few topics
    thousands of times: each is cleaned and slugified once)."""
    name = clean_line(text)
    return Topic(slug=slugify(name), name=name) if name else None


def parse_topics(value: Any) -> list[Topic]:
    """Topics from a list or a comma/semicolon separated string; de-duplicated, in order.

    A list item is a name, or ``{"name": …, "slug": …}`` to choose the slug. A name with no
    letter or digit in any script gives a topic without a slug: the store then takes the topic
    of that name (``policyfeed topics add NAME --slug SLUG`` makes one).
    """
    if value is None or value == "":
        return []
    items = value if isinstance(value, list | tuple) else re.split(r"[;,]", str(value))
    topics: dict[str, Topic] = {}
    for item in items:
        if not isinstance(item, dict):
            named = _named_topic(str(item))
            if named is not None:
                topics.setdefault(named.slug or f"name:{named.name}", named)
            continue
        unknown = sorted(set(item) - {"name", "slug"})
        if unknown or not isinstance(item.get("name", ""), str):
            raise ValueError(f'a topic is a name or {{"name": …, "slug": …}}, not {item!r}')
        given = check_slug(str(item.get("slug") or "").strip()) if item.get("slug") else ""
        name = clean_line(str(item.get("name") or given))
        if not name:
            continue
        slug = given or slugify(name)
        topics.setdefault(slug or f"name:{name}", Topic(slug=slug, name=name))
    return list(topics.values())


def blanked_fields(current: Post, draft: PostDraft) -> list[str]:
    """What saving ``draft`` over the published post ``current`` would empty, in the order
    title, body, topics, author (nothing for a draft: it is nobody's yet)."""
    if current.status != "published":
        return []
    pairs = (
        ("title", current.title, draft.title),
        ("body", current.body_html, draft.body_html),
        ("topics", current.topics, draft.topics),
        ("author", current.author, draft.author),
    )
    return [name for name, before, after in pairs if before and not after]


def refuse_blanking(current: Post, draft: PostDraft, *, source: str = "", where: str = "") -> None:
    """Raise InputError when saving ``draft`` would empty what the published post ``current``
    shows (a feed item cut short, a record missing a column): that is never done silently."""
    fields = blanked_fields(current, draft)
    if fields:
        listed = fields[0] if len(fields) == 1 else ", ".join(fields[:-1]) + " and " + fields[-1]
        raise InputError(
            f"would empty the {listed} of published post {current.slug!r} "
            "(pass --allow-blanking if that is meant)",
            source=source or None,
            where=where or None,
        )


def draft_from_record(
    record: Mapping[str, Any],
    *,
    base_url: str,
    tz: tzinfo,
    source: str,
    where: str,
    site_url: str | None = None,
) -> PostDraft:
    """Validate and clean one input record; errors name ``source`` and ``where`` (record/line).

    Relative URLs are resolved against ``base_url``; links to the site's own pages (under
    ``site_url``, the site's base URL, by default ``base_url``) are then stored relative to it
    (:func:`site_relative_links`), and a ``url`` that is the post's own page is not stored.

    Keys: title (required), slug, summary, body (HTML), body_markdown or format=markdown, author,
    url, topics, status, published_at (or date), updated_at, guid, language (a tag like fr).
    """
    try:
        title = clean_line(_text(record, "title"))
        if not title:
            raise ValueError("missing title")
        slug = _text(record, "slug") or slugify(title)
        check_slug(slug)
        body_format = (_text(record, "format") or "html").lower()
        if body_format not in BODY_FORMATS:
            raise ValueError(f"format must be html or markdown, not {body_format!r}")
        body = _text(record, "body") or _text(record, "body_html")
        if _text(record, "body_markdown"):
            body, body_format = _text(record, "body_markdown"), "markdown"
        if body_format == "markdown":
            body = markdown_to_html(body)
        site = site_url or base_url
        body_html = site_relative_links(sanitize_html(body, base_url), site)
        summary = clean_line(_text(record, "summary"))
        if "<" in summary or "&" in summary:
            # Summaries are plain text; imported ones may carry markup.
            summary = clean_line(clean_html_to_text(sanitize_html(summary, base_url)))
        url = _text(record, "url") or None
        if url:
            parts = urlsplit(urljoin(base_url, url))
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"url must be http(s), not {url!r}")
            url = to_uri(parts.geturl())  # IDNA host, percent-encoded path: a URI, once
            own = site_relative(url, site)
            if own == f"{SITE_RELATIVE}posts/{slug}/":
                url = None  # the post's own page: its permalink says so at any base URL
            elif own is not None:
                url = own
        status = _text(record, "status").lower() or None
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be draft or published, not {status!r}")
        raw_published = record.get("published_at") or record.get("date")
        published_at = parse_datetime(raw_published, tz) if raw_published else None
        raw_updated = record.get("updated_at") or record.get("updated")
        updated_at = parse_datetime(raw_updated, tz) if raw_updated else None
        if status is None and published_at is not None:
            status = "published"
        return PostDraft(
            title=title,
            slug=slug,
            summary=summary,
            body_html=body_html,
            body_text=clean_html_to_text(body_html),
            author=clean_line(_text(record, "author")),
            url=url,
            status=status,
            published_at=published_at,
            updated_at=updated_at,
            guid=_text(record, "guid") or _text(record, "id") or None,
            topics=parse_topics(record.get("topics", record.get("tags"))),
            language=check_language(_text(record, "language")),
        )
    except ValueError as exc:
        raise InputError(str(exc), source=source, where=where) from None
