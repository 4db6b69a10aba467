"""A whole check: the settings, the site and its feeds in the output folder, each variant of an
issue as the message a member gets, and the digest template's accessibility.

:func:`run_check` is ``policyfeed check``; :func:`check_before_sending` is what ``publish`` runs
after the build and before the first message leaves (it reuses the variants publish rendered).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlite_utils import Database

from policyfeed.check import a11y
from policyfeed.check.feeds import analyse_feed, analyse_opml, is_feed_name, report_feeds
from policyfeed.check.message import check_message
from policyfeed.check.report import Report
from policyfeed.check.settings import check_settings
from policyfeed.check.site import BodyLinks, analyse_page, body_targets, page_kind, report_pages
from policyfeed.check.state import (
    CheckState,
    Seen,
    context_of,
    load_check_state,
    save_check_state,
    site_files,
)
from policyfeed.errors import NotFoundError, PolicyfeedError
from policyfeed.model import Issue, Post

if TYPE_CHECKING:
    from policyfeed.config import Settings
    from policyfeed.digest.mail import MessageTemplate
    from policyfeed.digest.variants import Variant
    from policyfeed.site.build import BuildResult

log = logging.getLogger(__name__)

#: What the template is tried with when the issue has none: every part of it gets rendered.
SAMPLE_NOTE = "A note from the editor, as an issue may carry one."
DIGEST_TEMPLATE = "email/digest.html"
_FEED_KINDS = ("rss", "atom", "json", "xml")


@dataclass(frozen=True)
class _SampleChapter:
    name: str = "A chapter"
    intro: str = "A chapter's intro line, as a chapter may have one."


# --- the site ----------------------------------------------------------------------------------


def check_site(
    report: Report,
    db: Database,
    settings: Settings,
    out_dir: Path,
    *,
    now: datetime,
    built: BuildResult | None = None,
) -> None:
    """Every page and feed of ``out_dir``; files unchanged since the last check are not read.

    Every file's size and time is looked at (a walk of the folder: 0.16 s for 11,000 files);
    only files whose size or time differs from the last check's are read. ``built``: the build
    that just ran (publish passes it), so the site is not older than the database.

    The last check's list of files is never taken for the folder's: a `policyfeed build` after
    it, or a build killed before it saved its state, wrote pages that the next build does not
    write again (their bytes are the same), so only the folder itself says what it holds.
    """
    started = time.monotonic()
    if not out_dir.is_dir():
        report.error("site", str(out_dir), "no site here: `policyfeed build` writes it")
        return
    context = context_of(settings.base_url)
    old = load_check_state(db, out_dir, context)
    listing = _walk(out_dir)
    contrast_of = contrast_specimens(out_dir, listing)
    state = CheckState(context)
    pages: dict[str, dict] = {}
    docs: dict[str, dict] = {}
    read = 0
    for rel in sorted(listing):
        kind = _kind(rel)
        size, mtime = listing[rel]
        if kind is None:  # an image or a stylesheet: links to it count, nothing to read
            state.files[rel] = Seen(size, mtime, None)
            continue
        seen = old.files.get(rel)
        facts = seen.facts if seen is not None else None
        if (
            seen is None
            or facts is None
            or (seen.size, seen.mtime_ns) != (size, mtime)
            or (rel in contrast_of and "c" not in facts)
        ):
            facts = _analyse(kind, rel, (out_dir / rel).read_bytes(), settings, rel in contrast_of)
            read += 1
        state.files[rel] = Seen(size, mtime, facts)
        (docs if facts["k"] in _FEED_KINDS else pages)[rel] = facts
    if read or {rel: (seen.size, seen.mtime_ns) for rel, seen in old.files.items()} != listing:
        save_check_state(db, out_dir, state)
    previous_ids = {
        link: entry_id
        for seen in old.files.values()
        if seen.facts is not None and seen.facts["k"] in _FEED_KINDS
        for entry_id, link in seen.facts["e"]
        if entry_id and link
    }
    files = set(listing)
    behind = built is None and _built_before_last_change(db, out_dir)
    if behind:  # its feeds miss posts, its pages show old ones: the cause, not each symptom
        report.error(
            "site",
            str(out_dir),
            f"the site in {out_dir.name}/ is older than the database (posts changed since it "
            "was built): run `policyfeed build`",
        )
    report_pages(report, pages, files, _post_body_links(db, settings.base_url))
    report_feeds(
        report,
        docs,
        files,
        base_url=settings.base_url,
        now=now,
        expected={} if behind else _expected_history(db, docs, now),
        previous_ids=previous_ids,
    )
    log.info(
        "check: %d files, %d read again, in %.2f s", len(listing), read, time.monotonic() - started
    )


def _built_before_last_change(db: Database, out_dir: Path) -> bool:
    """True when this database built ``out_dir`` and its posts changed since (the post journal
    moved on past the build's state); False too when the folder is not its build."""
    from policyfeed.site.ownership import folder_key
    from policyfeed.site.state import STATE_NAME, SiteState
    from policyfeed.store import build_state
    from policyfeed.store.site import journal_head

    raw = build_state.read(db, folder_key(out_dir), STATE_NAME)
    state = SiteState.from_bytes(raw) if raw is not None else None
    return state is not None and state.journal_seq < journal_head(db)


def _post_body_links(db: Database, base_url: str) -> BodyLinks:
    """For a page, what the post bodies it shows link to: a post's own page shows its body, an
    issue's web version the bodies of its posts. Asked only about pages with a link to a file
    that is not there, so a site without one reads no post."""
    from policyfeed.site.issue_archive import shown_posts
    from policyfeed.store.issues import archived_issue_by_number
    from policyfeed.store.posts import get_post

    def links(page: str) -> dict[str, tuple[str, str]]:
        parts = page.split("/")
        posts: list[Post] = []
        if len(parts) == 3 and parts[2] == "index.html" and parts[0] == "posts":
            try:
                posts = [get_post(db, parts[1])]
            except NotFoundError:  # a page kept for an old slug shows no body
                posts = []
        elif len(parts) == 3 and parts[2] == "index.html" and parts[0] == "issues":
            issue = archived_issue_by_number(db, int(parts[1])) if parts[1].isdigit() else None
            posts = shown_posts(db, issue) if issue is not None else []
        found: dict[str, tuple[str, str]] = {}
        for post in posts:
            for path, named in body_targets(post.slug, post.body_html, page, base_url).items():
                found.setdefault(path, named)
        return found

    return links


def _walk(out_dir: Path) -> dict[str, tuple[int, int]]:
    return {rel: (stat.st_size, stat.st_mtime_ns) for rel, stat in site_files(out_dir)}


def _kind(rel: str) -> str | None:
    if rel.endswith(".html"):
        return "page"
    if is_feed_name(rel):
        return "feed"
    if rel.endswith(".opml"):
        return "opml"
    return None


def contrast_specimens(out_dir: Path, listing: Mapping[str, object]) -> set[str]:
    """One page of each kind (site.page_kind), the first by name, whose contrast is computed; a
    renamed post's redirect page (no theme, no text to speak of) is no specimen of posts."""
    from policyfeed.site.redirects import is_redirect_file

    specimens: dict[str, str] = {}
    for rel in sorted(listing):
        if not rel.endswith(".html") or page_kind(rel) in specimens:
            continue
        if rel.startswith("posts/") and is_redirect_file(out_dir / rel):
            continue
        specimens[page_kind(rel)] = rel
    return set(specimens.values())


def _analyse(kind: str, rel: str, data: bytes, settings: Settings, contrast: bool) -> dict:
    if kind == "page":
        return analyse_page(rel, data, settings.base_url, contrast=contrast)
    if kind == "opml":
        return analyse_opml(rel, data, settings.base_url)
    return analyse_feed(rel, data, settings.base_url)


def _expected_history(
    db: Database, docs: Mapping[str, dict], now: datetime
) -> dict[str, tuple[int, str]]:
    """How many posts the site's feed and each topic's feed should hold, with their history."""
    from policyfeed.store.posts import count_published

    expected = {"": (count_published(db, now=now), "posts published by now")}
    for rel in docs:
        parts = rel.split("/")
        if len(parts) == 3 and parts[0] == "topics":
            folder = f"topics/{parts[1]}/"
            if folder not in expected:
                count = count_published(db, now=now, topic=parts[1])
                expected[folder] = (count, f"posts on the topic {parts[1]}")
    return expected


# --- messages ------------------------------------------------------------------------------


def variant_name(issue: Issue, label: str | None) -> str:
    """How the report names a variant: ``issue-3``, ``issue-3/geneva``, and with the topics
    members chose, ``issue-3/geneva/topics=ietf+dns`` or ``issue-3/topics=ietf``."""
    return f"issue-{issue.number}" + (f"/{label}" if label else "")


def sample_message(settings: Settings, template: MessageTemplate, name: str) -> bytes:
    """The message of a variant as delivery makes it, for the sample member of previews (whose
    links unsubscribe nobody)."""
    from policyfeed.digest.mail import Personaliser, Recipient
    from policyfeed.digest.sample import SAMPLE_EMAIL, SAMPLE_KEY, SAMPLE_NAME, SAMPLE_SUBSCRIBER_ID

    message_id = f"check.{name.replace('/', '.')}@{settings.domain}"
    recipient = Recipient(SAMPLE_SUBSCRIBER_ID, SAMPLE_EMAIL, SAMPLE_NAME, message_id)
    return Personaliser(settings, SAMPLE_KEY).message(template, recipient)


def render_variants(
    db: Database, settings: Settings, issue: Issue, posts: Sequence[Post], report: Report, *,
    now: datetime,
) -> dict[str, MessageTemplate]:  # fmt: skip
    """Each variant of ``issue`` rendered as publish renders it: the whole issue, each chapter
    that gets posts, and each chapter with the topics its active members chose (one per
    distinct message); one that cannot be rendered is an error in ``report``."""
    from policyfeed.digest.variants import IssueVariants, distinct_renderings
    from policyfeed.store.subscribers import active_recipients, list_chapters

    variants = IssueVariants(posts, list_chapters(db))
    chosen = {
        (chapter_id, topics)
        for _, chapter_id, topics in active_recipients(db)
        if topics is not None
    }
    every = [*variants.every_chapter(), *(variants.of(c, t) for c, t in chosen)]
    templates: dict[str, MessageTemplate] = {}
    for variant in distinct_renderings(every):
        name = variant_name(issue, variant.label)
        try:
            templates[name] = _render(issue, variant, settings, now=now)
        except PolicyfeedError as exc:
            report.error("message", name, f"cannot be rendered: {exc}")
    return templates


def _render(
    issue: Issue, variant: Variant, settings: Settings, *, now: datetime
) -> MessageTemplate:
    from policyfeed.digest.mail import build_template
    from policyfeed.digest.render import MESSAGE_PLACEHOLDERS, render_issue

    digest = render_issue(
        issue, list(variant.posts), settings, chapter=variant.chapter, whole_issue=variant.whole
    )
    return build_template(
        digest,
        settings,
        issue_number=issue.number,
        variant=variant.label or "",
        now=now,
        placeholders=MESSAGE_PLACEHOLDERS,
    )


def check_messages(
    report: Report, settings: Settings, templates: Mapping[str, MessageTemplate]
) -> None:
    for name, template in templates.items():
        check_message(report, name, sample_message(settings, template, name))


def check_digest_template(
    report: Report, settings: Settings, issue: Issue, posts: Sequence[Post]
) -> None:
    """Accessibility of the digest template, rendered with every part it has: the issue's
    posts, a note and a chapter's intro (samples where the issue has none)."""
    import lxml.html

    from policyfeed.digest.render import render_issue

    specimen = replace(issue, note=issue.note or SAMPLE_NOTE)
    try:
        digest = render_issue(specimen, posts, settings, chapter=_SampleChapter())
    except PolicyfeedError as exc:  # the variants' own rendering reports it
        log.info("check: the digest template could not be tried whole: %s", exc)
        return
    root = lxml.html.document_fromstring(digest.html)
    name = DIGEST_TEMPLATE
    if a11y.missing_lang(root):
        report.error("a11y", name, "no lang attribute on <html>: screen readers guess the language")
    for heading, previous, where in a11y.heading_skips(root):
        report.warn("a11y", name, f"heading {heading} follows {previous}, skipping a level", where)
    for what, href in a11y.unclear_links(root):
        report.warn("a11y", name, what, href)
    for low in a11y.low_contrast(root):
        report.error("a11y", name, low.describe(), low.element)


# --- the whole check --------------------------------------------------------------------------


def issue_to_check(
    db: Database, settings: Settings, *, now: datetime, number: int | None
) -> tuple[Issue, list[Post]] | None:
    """Issue ``number``; else the next issue as it would be made now; else the newest one."""
    from policyfeed.digest.issues import get_issue, issue_posts, list_issues, plan_issue

    if number is not None:
        issue = get_issue(db, number)
        return issue, issue_posts(db, issue)
    planned = plan_issue(db, settings, now=now)
    if planned is not None:
        return planned
    issues = list_issues(db)
    return (issues[0], issue_posts(db, issues[0])) if issues else None


def run_check(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    issue_number: int | None = None,
    out_dir: Path | None = None,
) -> Report:
    """``policyfeed check``: everything, into one report."""
    report = Report()
    check_settings(report, settings)
    check_site(report, db, settings, out_dir or settings.output_dir, now=now)
    found = issue_to_check(db, settings, now=now, number=issue_number)
    if found is None:
        report.warn("message", "-", "no issue to check: no post is waiting and none was made")
        return report
    issue, posts = found
    check_messages(report, settings, render_variants(db, settings, issue, posts, report, now=now))
    check_digest_template(report, settings, issue, posts)
    return report


def check_before_sending(
    db: Database,
    settings: Settings,
    *,
    issue: Issue,
    posts: Sequence[Post],
    templates: Mapping[str | None, MessageTemplate],
    now: datetime,
    site: bool = True,
    built: BuildResult | None = None,
) -> Report:
    """What ``publish`` runs before delivery: the settings, the site just built (``site``; the
    build's result in ``built``), the messages of the variants it is about to send
    (``templates`` by variant label, see :func:`variant_name`; None for the whole issue) and
    the digest template."""
    report = Report()
    check_settings(report, settings)
    if site:
        check_site(report, db, settings, settings.output_dir, now=now, built=built)
    named = {variant_name(issue, slug): template for slug, template in templates.items()}
    check_messages(report, settings, named)
    check_digest_template(report, settings, issue, posts)
    return report
