"""The records the store returns and the stages pass on: posts, topics, issues, chapters,
subscribers and deliveries. Plain data with no behaviour beyond what they say of themselves.

This module imports nothing of policyfeed, so every stage (and the store) may import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import urljoin

_PLAIN_SLUG = re.compile(r"[a-z0-9-]+")


@lru_cache(maxsize=8)
def _posts_folder(base_url: str) -> str:
    """The absolute URL of the posts' folder, ``posts/`` against ``base_url``."""
    return urljoin(base_url, "posts/")


# --- posts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    slug: str
    name: str


@dataclass
class Post:
    """A post as stored. Times are aware UTC datetimes."""

    slug: str
    title: str
    summary: str = ""
    body_html: str = ""
    body_text: str = ""
    author: str = ""
    url: str | None = None
    status: str = "draft"
    published_at: datetime | None = None
    updated_at: datetime | None = None
    created_at: datetime | None = None
    guid: str | None = None
    id: int | None = None
    topics: list[Topic] = field(default_factory=list)
    #: A language tag (``fr``, ``pt-BR``) or "" when unknown. Posts are not translated.
    language: str = ""

    def permalink(self, base_url: str) -> str:
        """The post's absolute URL: its own, or its page on the site. A ``url`` on the site
        itself is stored relative to it (``./…``, see content.urls.SITE_RELATIVE)."""
        if self.url:
            return urljoin(base_url, self.url) if self.url.startswith("./") else self.url
        if _PLAIN_SLUG.fullmatch(self.slug):
            # A segment of letters, digits and hyphens adds itself to what urljoin made of the
            # folder: joined once per base URL instead of per post (urljoin is slow).
            return f"{_posts_folder(base_url)}{self.slug}/"
        return urljoin(base_url, f"posts/{self.slug}/")


@dataclass
class PostDraft:
    """Validated, cleaned input for creating or updating a post (from the CLI or an importer)."""

    title: str
    slug: str
    summary: str = ""
    body_html: str = ""
    body_text: str = ""
    author: str = ""
    url: str | None = None
    status: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    guid: str | None = None
    topics: list[Topic] = field(default_factory=list)
    language: str = ""


_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def is_absolute_uri(value: str) -> bool:
    """Whether ``value`` is an absolute URI (RFC 3986: a scheme, then only URI characters), as
    an Atom ``id`` or an RSS ``guid`` must be. ``42`` or ``not a uri`` are not."""
    return bool(_URI.fullmatch(value)) and not _BAD_ESCAPE.search(value)


def make_guid(domain: str, published_at: datetime, slug: str) -> str:
    """A stable ``tag:`` URI (RFC 4151) from the site's domain and the first publication date."""
    return f"tag:{domain},{published_at.astimezone(UTC).date().isoformat()}:posts/{slug}"


@dataclass
class SourceState:
    """What the store knows of one ``[[sources]]`` feed: its last fetch and its items.

    ``etag`` and ``last_modified`` are the validators of the last successful fetch (sent back
    for a conditional GET); ``first_synced_at`` is None until a sync has worked once.
    ``last_temporary`` says whether the last error was one a later run may not meet.
    """

    name: str
    url: str = ""
    config: str = ""
    etag: str = ""
    last_modified: str = ""
    first_synced_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
    last_temporary: bool = False
    feed_items: int = 0
    last_created: int = 0
    last_updated: int = 0
    moved_to: str = ""
    items: int = 0


# --- issues ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One issue of the digest. ``number`` counts 1, 2, 3…; ``period`` is unique."""

    number: int
    period: str
    created_at: datetime
    updated_at: datetime
    subject: str = ""
    note: str = ""
    status: str = "draft"  # draft → approved → sending → sent; or discarded
    sent_at: datetime | None = None
    id: int | None = None  # None for an issue that is only planned (preview, dry run)
    approved_at: datetime | None = None
    review_sent_at: datetime | None = None  # when the copy for approval went to the editor
    discarded_at: datetime | None = None
    subject_edited: bool = False  # an editor wrote the subject: every variant keeps it

    @property
    def web_path(self) -> str:
        """Where the web version lives, relative to the site root."""
        return f"issues/{self.number}/"


@dataclass(frozen=True)
class ChapterVariant:
    """A chapter's view of an issue: only posts with one of ``topic_slugs`` (empty: all)."""

    slug: str
    name: str
    intro: str = ""
    topic_slugs: tuple[str, ...] = ()
    id: int | None = None
    language: str = ""  # "" : the site's
    post_language: str = ""  # "" : posts in every language


def N_(message: str) -> str:
    """Marks a sentence a page shows (a form's answer) for the catalogs (`make catalogs`
    extracts it); the page's template translates it with ``_()`` in the reader's language."""
    return message


# --- languages -------------------------------------------------------------------------------

_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def check_language(tag: str) -> str:
    """``tag`` as stored: a language tag like ``fr`` or ``pt-BR`` (primary subtag in lower
    case), or "" for none. ValueError on anything else."""
    tag = tag.strip().replace("_", "-")
    if not tag:
        return ""
    if not _LANGUAGE_TAG.fullmatch(tag):
        raise ValueError(f"a language is a tag like fr, es or pt-BR, not {tag!r}")
    primary, _, rest = tag.partition("-")
    return primary.lower() + ("-" + rest if rest else "")


def primary_language(tag: str) -> str:
    return tag.partition("-")[0].lower()


def in_language(post_language: str, wanted: str) -> bool:
    """Whether a post in ``post_language`` goes to a chapter that wants ``wanted`` posts: a
    post with no language goes to everyone; ``fr`` takes ``fr-CA`` too."""
    if not wanted or not post_language:
        return True
    post, want = post_language.lower(), wanted.lower()
    return post == want or post.startswith(want + "-")


# --- the audience ----------------------------------------------------------------------------


@dataclass
class Chapter:
    """A group of subscribers with its own variant of each issue."""

    slug: str
    name: str
    intro: str = ""
    #: Topic slugs; empty means every post of the issue.
    topics: list[str] = field(default_factory=list)
    id: int | None = None
    #: The language of its digest and its members' pages ("": the site's ``site.language``).
    language: str = ""
    #: Only posts in this language, and posts with none ("": posts in every language).
    post_language: str = ""


#: ``pending``: signed up, not confirmed yet; ``paused``: by their choice, for now. Only
#: ``active`` members are mailed the digest.
SUBSCRIBER_STATUSES = ("pending", "active", "paused", "unsubscribed", "bounced")


@dataclass
class Subscriber:
    email: str
    name: str = ""
    chapter: str | None = None  # chapter slug
    status: str = "active"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    chapter_id: int | None = None
    id: int | None = None
    confirmed_at: datetime | None = None
    #: The topic slugs the member chose (sorted); empty: what their chapter gets.
    topics: list[str] = field(default_factory=list)


# --- deliveries ------------------------------------------------------------------------------

DELIVERY_STATUSES = ("pending", "sending", "sent", "failed", "skipped")
DELIVERY_SETTLED = ("sent", "failed", "skipped")


@dataclass
class Delivery:
    id: int
    issue_id: int
    subscriber_id: int
    chapter_id: int | None
    message_id: str
    status: str
    attempts: int = 0
    last_error: str = ""
    sent_at: datetime | None = None
    #: The variant frozen for this row when delivery began (None: a row frozen before variants
    #: were recorded, which follows its chapter).
    variant_id: int | None = None

    @property
    def settled(self) -> bool:
        return self.status in DELIVERY_SETTLED
