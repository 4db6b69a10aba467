"""Turning an issue into an email: the views of its posts, premailer, the text part, the size
guard. Templates come from :mod:`policyfeed.templating`.

A digest is rendered and its CSS inlined ONCE per issue variant (the whole issue, or a chapter's
share of it). The result still holds placeholders such as :data:`UNSUBSCRIBE_URL_TOKEN`; delivery
personalises a message by substituting them, never by rendering again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from policyfeed.content.plaintext import (
    absolute_link,
    excerpt,
    html_fragment,
    html_to_mail_text,
    shorten,
    tidy_text,
    wrap_text,
)
from policyfeed.content.posts import absolute_links, sanitize_html
from policyfeed.content.text import clean_line
from policyfeed.content.urls import site_url
from policyfeed.errors import DigestTooLargeError
from policyfeed.model import Issue, Post
from policyfeed.templating import format_date, render_template, text_direction

if TYPE_CHECKING:
    from policyfeed.config import Settings

#: Stands for the recipient's unsubscribe URL in both parts. Delivery replaces it per recipient:
#: with the HTML-escaped URL in ``html`` and the bare URL in ``text``.
UNSUBSCRIBE_URL_TOKEN = "%%UNSUBSCRIBE_URL%%"
#: Stands for the recipient's preferences page (the sign-up's ``/preferences?t=…``), the same way.
PREFERENCES_URL_TOKEN = "%%PREFERENCES_URL%%"
PLACEHOLDERS = (UNSUBSCRIBE_URL_TOKEN, PREFERENCES_URL_TOKEN)
#: What :func:`policyfeed.digest.mail.build_template` substitutes per recipient, by field.
MESSAGE_PLACEHOLDERS = {
    "unsubscribe_url": UNSUBSCRIBE_URL_TOKEN,
    "preferences_url": PREFERENCES_URL_TOKEN,
}
#: Room counted for each placeholder once substituted (a token URL is far shorter).
PLACEHOLDER_URL_BYTES = 300

#: Gmail clips an HTML part above about 102 KB and hides what follows, the unsubscribe link
#: included. Counted in bytes of 1000, which is on the safe side.
CLIP_BYTES = 102_000
WARN_BYTES = 90_000

SUMMARY_CHARS = 320
EMAIL_CONTENT_WIDTH = 552  # 600px column minus its padding: widest image Outlook should get

HTML_TEMPLATE = "email/digest.html"
TEXT_TEMPLATE = "email/digest.txt"
SUBJECT_TEMPLATE = "email/subject.txt"


class ChapterLike(Protocol):
    """What a digest shows of a chapter: its name and its intro line (and, if it has one, its
    ``language``: the digest's fixed words and dates are in it)."""

    @property
    def name(self) -> str: ...

    @property
    def intro(self) -> str: ...


@dataclass(frozen=True)
class RenderedDigest:
    """One rendered variant of an issue, ready to be personalised and sent.

    ``html`` has its CSS inlined; ``html`` and ``text`` both contain :data:`UNSUBSCRIBE_URL_TOKEN`.
    ``size_bytes`` is the HTML part as sent (UTF-8, placeholders counted at their longest).
    """

    subject: str
    html: str
    text: str
    size_bytes: int
    warnings: tuple[str, ...] = ()
    summaries_only: bool = False
    chapter: str | None = None  # the chapter's slug, None for the whole issue


@dataclass(frozen=True)
class PostView:
    """A post as the templates show it: every value ready to print."""

    title: str
    url: str
    date: str
    date_iso: str
    author: str
    topics: tuple[str, ...]
    summary: str
    short_summary: str
    body_html: Any  # markupsafe.Markup: cleaned HTML, safe to print unescaped
    text_body: str  # wrapped plain text with [n] link references
    text_summary: str
    text_links: tuple[str, ...]


# --- post bodies for mail clients ----------------------------------------------------------


def email_body_html(body_html: str, base_url: str) -> str:
    """A post body made safe for mail clients: cleaned again, every image with alt text and a
    width that fits the column, only absolute http(s)/mailto links, wide tables scrollable."""
    import lxml.html

    root = html_fragment(sanitize_html(absolute_links(body_html, base_url), base_url))
    for img in list(root.iter("img")):
        if not absolute_link(img.get("src")) or urlsplit(img.get("src", "")).scheme == "mailto":
            img.drop_tree()
            continue
        if img.get("alt") is None:
            img.set("alt", "")
        width = img.get("width", "")
        if not width.isdigit() or int(width) > EMAIL_CONTENT_WIDTH:
            img.attrib.pop("height", None)
            if width.isdigit():
                img.set("width", str(EMAIL_CONTENT_WIDTH))
            else:
                img.attrib.pop("width", None)
        img.set("style", "max-width:100%;height:auto;border:0;")
    for link in root.iter("a"):
        if link.get("href") is not None and not absolute_link(link.get("href")):
            del link.attrib["href"]
    for table in list(root.iter("table")):
        parent = table.getparent()
        if parent is None or parent.get("class") == "scroll":
            continue
        holder = lxml.html.Element("div", {"class": "scroll", "style": "overflow-x:auto;"})
        table.addprevious(holder)
        holder.tail, table.tail = table.tail, None
        holder.append(table)
    html = lxml.html.tostring(root, encoding="unicode")
    return html.removeprefix("<div>").removesuffix("</div>")


# --- views -----------------------------------------------------------------------------------


def post_summary(post: Post) -> str:
    """The summary templates show: the post's own, else the start of its text."""
    return " ".join(post.summary.split()) or excerpt(post.body_text, SUMMARY_CHARS)


def post_views(
    posts: Sequence[Post], settings: Settings, *, with_text: bool = True, language: str = ""
) -> list[PostView]:
    """Everything the digest and archive templates show of each post (``with_text=False``:
    skip the plain-text versions, for web pages); dates in ``language`` ("": the site's)."""
    from markupsafe import Markup

    views = []
    for post in posts:
        summary = post_summary(post)
        body_html = email_body_html(post.body_html, settings.base_url)
        text_body, links = html_to_mail_text(body_html) if with_text else ("", [])
        views.append(
            PostView(
                title=clean_line(post.title),
                url=post.permalink(settings.base_url),
                date=format_date(post.published_at, settings.tz, language or settings.language),
                date_iso=post.published_at.isoformat() if post.published_at else "",
                author=clean_line(post.author),
                topics=tuple(clean_line(topic.name) for topic in post.topics),
                summary=summary,
                short_summary=shorten(summary, SUMMARY_CHARS),
                body_html=Markup(body_html),
                text_body=text_body or (wrap_text(summary) if with_text else ""),
                text_summary=wrap_text(shorten(summary, SUMMARY_CHARS)) if with_text else "",
                text_links=tuple(links),
            )
        )
    return views


def site_context(settings: Settings, language: str = "") -> dict[str, Any]:
    """The site as templates show it; ``language`` ("": the site's) and its direction."""
    logo = site_url(settings, settings.logo)
    language = language or settings.language
    return {
        "title": settings.title,
        "description": settings.description,
        "url": settings.base_url,
        "host": settings.domain,
        "language": language,
        "dir": text_direction(language),
        "logo": logo,
        "postal_address": " ".join(settings.postal_address.split()),
        "archive_url": settings.absolute("issues/"),
    }


@dataclass(frozen=True)
class NoteView:
    """The editor's note (Markdown) as the templates show it."""

    html: Any  # markupsafe.Markup: cleaned HTML, safe to print unescaped
    text: str  # wrapped plain text with [n] link references
    links: tuple[str, ...]
    plain: str  # one line of text: the inbox preheader, feed summaries


def note_view(note: str, settings: Settings) -> NoteView:
    """The note's Markdown as HTML cleaned like a post body (the same allow-list, absolute
    links), and its plain-text readings. A line break in the note is a line break."""
    import markdown
    from markupsafe import Markup

    from policyfeed.content.posts import html_to_text

    if not note.strip():
        return NoteView(Markup(""), "", (), "")
    source = markdown.markdown(note, extensions=["extra", "sane_lists", "nl2br"])
    html = email_body_html(source, settings.base_url)
    text, links = html_to_mail_text(html)
    return NoteView(Markup(html), text, tuple(links), " ".join(html_to_text(html).split()))


def issue_context(issue: Issue, settings: Settings, language: str = "") -> dict[str, Any]:
    note = note_view(issue.note, settings)
    return {
        "number": issue.number,
        "period": issue.period,
        "subject": issue.subject,
        "note": issue.note,
        "note_html": note.html,
        "note_text": note.text,
        "note_links": note.links,
        "note_plain": note.plain,
        "date": format_date(issue.created_at, settings.tz, language or settings.language),
        "date_iso": issue.created_at.isoformat(),
        "web_url": settings.absolute(issue.web_path),
    }


def digest_language(chapter: ChapterLike | None, settings: Settings) -> str:
    """The language of a chapter's variant: the chapter's, else the site's."""
    return getattr(chapter, "language", "") or settings.language


def _chapter_context(chapter: ChapterLike | None) -> dict[str, str] | None:
    if chapter is None:
        return None
    return {"name": chapter.name, "intro": " ".join(chapter.intro.split())}


def render_subject(
    issue: Issue, posts: Sequence[Post], settings: Settings, *, chapter: ChapterLike | None = None
) -> str:
    """The subject line from ``email/subject.txt``: one line, white space folded."""
    language = digest_language(chapter, settings)
    text = render_template(
        settings,
        SUBJECT_TEMPLATE,
        language=language,
        site=site_context(settings, language),
        issue=issue_context(issue, settings, language),
        chapter=_chapter_context(chapter),
        posts=post_views(posts[:1], settings, with_text=False, language=language) if posts else [],
        post_count=len(posts),
    )
    return shorten(clean_line(text), 200)


def preheader_text(issue: Issue, posts: Sequence[Post], settings: Settings) -> str:
    """The line inbox lists show after the subject: the note's text, else the post titles."""
    source = note_view(issue.note, settings).plain or " · ".join(post.title for post in posts)
    return shorten(source, 140)


def inline_css(html: str) -> str:
    """Inline the CSS of a ``<style>`` block into the elements, keeping media queries in a
    ``<style>`` block. No network access and no external files."""
    import logging

    import premailer

    transformer = premailer.Premailer(
        html,
        base_url=None,
        disable_link_rewrites=True,
        keep_style_tags=False,  # leftover rules (media queries, :hover) are kept in a <style>
        allow_network=False,
        allow_loading_external_files=False,
        external_styles=None,
        remove_classes=False,
        align_floating_images=False,
        disable_basic_attributes=["height"],  # no height="auto" on images
        strip_important=False,  # media queries need !important to beat the inlined styles
        cssutils_logging_level=logging.CRITICAL,
    )
    return str(transformer.transform())


def _size_as_sent(html: str) -> int:
    size = len(html.encode("utf-8"))
    for token in PLACEHOLDERS:
        size += html.count(token) * (PLACEHOLDER_URL_BYTES - len(token))
    return size


def _render_variant(settings: Settings, context: dict[str, Any]) -> tuple[str, str]:
    language = context["site"]["language"]
    html = inline_css(render_template(settings, HTML_TEMPLATE, language=language, **context))
    text = tidy_text(render_template(settings, TEXT_TEMPLATE, language=language, **context))
    return html, text


def render_issue(
    issue: Issue,
    posts: Sequence[Post],
    settings: Settings,
    *,
    chapter: ChapterLike | None = None,
    review: Mapping[str, Any] | None = None,
    whole_issue: bool = True,
) -> RenderedDigest:
    """Render one variant of an issue: the whole issue, or ``chapter``'s (pass its posts, e.g.
    from :func:`policyfeed.digest.issues.posts_for_chapter`; its intro line is shown).
    ``review``: the box at the top of the copy an editor gets to approve a draft (see
    :func:`policyfeed.digest.review.review_context`); members' copies have none.
    ``whole_issue`` False: ``posts`` are a share of the issue (a member's topics), so the
    subject names them rather than the issue's own (an editor's subject is every variant's).

    Size guard: above WARN_BYTES a warning; at CLIP_BYTES or more the posts are shown as
    summaries only; if that is still too large, DigestTooLargeError.
    """
    if issue.subject and ((chapter is None and whole_issue) or issue.subject_edited):
        subject = issue.subject  # an editor's subject is every variant's
    else:
        subject = render_subject(issue, posts, settings, chapter=chapter)
    slug = getattr(chapter, "slug", None) if chapter is not None else None
    language = digest_language(chapter, settings)
    warnings: list[str] = []
    summaries_only = False
    context = {
        "site": site_context(settings, language),
        "issue": {**issue_context(issue, settings, language), "subject": subject},
        "chapter": _chapter_context(chapter),
        "posts": post_views(posts, settings, language=language),
        "summaries_only": False,
        "unsubscribe_url": UNSUBSCRIBE_URL_TOKEN,
        # Without the sign-up's endpoints there is no preferences page to link to.
        "preferences_url": PREFERENCES_URL_TOKEN if settings.signup_enabled else "",
        "preheader": preheader_text(issue, posts, settings),
        "review": dict(review) if review else None,
    }
    html, text = _render_variant(settings, context)
    size = _size_as_sent(html)
    if size >= CLIP_BYTES:
        full_size = size
        summaries_only = context["summaries_only"] = True
        html, text = _render_variant(settings, context)
        size = _size_as_sent(html)
        where = f"issue {issue.number}" + (f" ({chapter.name})" if chapter is not None else "")
        if size >= CLIP_BYTES:
            raise DigestTooLargeError(
                f"{where}: the HTML is {size:,} bytes even with summaries only, and mail clients "
                f"clip messages above {CLIP_BYTES:,} bytes (hiding the unsubscribe link); leave "
                "posts out (--exclude) or shorten the note or the titles"
            )
        warnings.append(
            f"{where}: full posts made {full_size:,} bytes of HTML (clipped above "
            f"{CLIP_BYTES:,}); sent with summaries only, linking to the full posts"
        )
    if size > WARN_BYTES:
        warnings.append(
            f"issue {issue.number}: the HTML is {size:,} bytes, close to the {CLIP_BYTES:,} "
            "at which mail clients clip it"
        )
    return RenderedDigest(
        subject=subject,
        html=html,
        text=text,
        size_bytes=size,
        warnings=tuple(warnings),
        summaries_only=summaries_only,
        chapter=slug,
    )
