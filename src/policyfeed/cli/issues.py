"""``policyfeed issue …``: create, list, show, preview and render digest issues."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from policyfeed.cli import App, cli, echo_json, pass_app
from policyfeed.wording import counted

if TYPE_CHECKING:
    from policyfeed.digest.render import RenderedDigest
    from policyfeed.model import Issue, Post


@cli.group("issue")
def issue() -> None:
    """Create, list, show, preview and render the digest's issues.

    Example:

    \b
        policyfeed issue new --dry-run
        policyfeed issue preview
        policyfeed issue list
        policyfeed issue show 1
    """


def _variant(
    app: App, issue_: Issue, posts: list[Post], chapter_slug: str | None
) -> RenderedDigest:
    from policyfeed.digest.issues import get_chapter, posts_for_chapter
    from policyfeed.digest.render import render_issue

    chapter = get_chapter(app.db, chapter_slug) if chapter_slug else None
    if chapter is not None:
        posts = posts_for_chapter(posts, chapter.topic_slugs, chapter.post_language)
    return render_issue(issue_, posts, app.settings, chapter=chapter)


def _warn(digest: RenderedDigest) -> None:
    for warning in digest.warnings:
        click.echo(f"Warning: {warning}", err=True)


def _echo_posts(app: App, posts: list[Post]) -> None:
    width = max((len(p.slug) for p in posts), default=0)
    for index, post in enumerate(posts, 1):
        date = app.local(post.published_at, "%Y-%m-%d")
        click.echo(f"{index:>3}. {date}  {post.slug:<{width}}  {post.title}")


NOTE_HELP = "The editor's note at the top of the issue (Markdown)."


def _note_option(fn: Any) -> Any:
    fn = click.option(
        "--note-file",
        type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
        help="Read the note from a Markdown file (- for standard input).",
    )(fn)
    return click.option("--note", help=NOTE_HELP)(fn)


def _read_note(note: str | None, note_file: Path | None) -> str | None:
    """The note given by --note or --note-file (None: neither was given)."""
    if note_file is None:
        return note
    if note is not None:
        raise click.UsageError("use --note or --note-file, not both")
    if str(note_file) == "-":
        import sys

        return sys.stdin.read()
    from policyfeed.content.importers import read_text

    return read_text(note_file)


def _issue_dict(app: App, issue_: Issue, post_count: int) -> dict[str, Any]:
    return {
        "number": issue_.number,
        "period": issue_.period,
        "status": issue_.status,
        "subject": issue_.subject,
        "note": issue_.note,
        "posts": post_count,
        "created_at": issue_.created_at.isoformat(),
        "approved_at": issue_.approved_at.isoformat() if issue_.approved_at else None,
        "sent_at": issue_.sent_at.isoformat() if issue_.sent_at else None,
        "discarded_at": issue_.discarded_at.isoformat() if issue_.discarded_at else None,
        "web_url": app.settings.absolute(issue_.web_path),
    }


def count_line(counts: dict[str, int]) -> str:
    """``5 sent, 1 failed, 0 skipped, 2 pending, 0 sending (unsure)``: every status, in order."""
    order = ("sent", "failed", "skipped", "pending", "sending")
    parts = [f"{counts.get(status, 0)} {status}" for status in order]
    parts[-1] += " (unsure)"
    return ", ".join(parts)


@issue.command("new")
@_note_option
@click.option("--exclude", "exclude", multiple=True, metavar="SLUG", help="Leave a post out.")
@click.option(
    "--pin", "pin", multiple=True, metavar="SLUG", help="Put a post first (repeat: in order)."
)
@click.option(
    "--period",
    metavar="P",
    help="A time of the schedule as YYYY-MM-DDTHH:MM (site time zone; may be ahead), or a "
    "special issue's name like wcit-special (default: the schedule's period for now).",
)
@click.option("--dry-run", is_flag=True, help="Show what the issue would hold; record nothing.")
@pass_app
def issue_new(
    app: App, note: str | None, note_file: Path | None, exclude: tuple[str, ...],
    pin: tuple[str, ...], period: str | None, dry_run: bool,
) -> None:  # fmt: skip
    """Create the next issue from the published posts that are in no issue yet.

    Posts dated in the future wait. Excluded posts stay waiting for the next issue. The
    note is Markdown, cleaned like a post. The digest is rendered first, so an issue too large
    to send is refused before it is recorded.

    --period names one of the schedule's times (the scheduled run then sends the issue at
    that time), or a special issue outside the schedule: a name of lower-case letters, digits
    and hyphens, mailed only by `policyfeed publish --period NAME`.

    Example:

    \b
        policyfeed issue new --note "**WCIT** is coming: read on." \\
            --pin wcit-preparation-ask-your-government --exclude old-draft-post
        policyfeed issue new --note-file note.md
        policyfeed issue new --dry-run
        policyfeed issue new --period wcit-special --note "WCIT opens on Monday"
    """
    from policyfeed.digest.issues import create_issue, default_period, period_key, prepare_issue
    from policyfeed.digest.render import render_issue

    note = _read_note(note, note_file) or ""
    settings, now = app.settings, app.now()
    key = period_key(settings, period) if period else default_period(settings, now)
    # The same checks as the real command, so a dry run promises only what it would do.
    planned = prepare_issue(
        app.db, settings, now=now, period=key, note=note, exclude=exclude, pin=pin
    )
    if planned is None:
        click.echo("Nothing new: no published posts are waiting for an issue.")
        return
    issue_, posts = planned
    digest = render_issue(issue_, posts, settings)  # refuses a digest that would be clipped
    _warn(digest)
    if dry_run:
        click.echo(
            f"Would create issue {issue_.number} (period {key}) with {counted(len(posts), 'post')}:"
        )
    else:
        created = create_issue(
            app.db, settings, period=key, now=now, note=note, exclude=exclude, pin=pin
        )
        if created is None:  # another run took the posts meanwhile
            click.echo("Nothing new: no published posts are waiting for an issue.")
            return
        issue_ = created
        click.echo(
            f"Created issue {issue_.number} (period {key}) with {counted(len(posts), 'post')}:"
        )
    _echo_posts(app, posts)
    click.echo(f"Subject: {issue_.subject}")
    from policyfeed.schedule import looks_like_a_time, next_period, period_from_key

    scheduled = period_from_key(key, settings.tz)
    upcoming = next_period(settings.schedule, settings.tz, now)
    if scheduled is not None and scheduled.scheduled_at > upcoming.scheduled_at:
        click.echo(
            f"Warning: period {key} is more than one scheduled time ahead (the next is "
            f"{upcoming.key}): the scheduled run mails this issue only then, so its posts wait "
            f"for it and skip every issue before it (`policyfeed issue discard "
            f"{issue_.number}` puts them back)",
            err=True,
        )
    if not looks_like_a_time(key):
        click.echo(
            f"A special issue: the scheduled run never mails it; "
            f"`policyfeed publish --period {key}` does."
        )
    if dry_run:
        click.echo("Dry run: nothing recorded.")


@issue.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_app
def issue_list(app: App, as_json: bool) -> None:
    """List the issues, newest first.

    Example:

    \b
        policyfeed issue list
    """
    from policyfeed.digest.issues import issue_post_counts, list_issues

    found = list_issues(app.db)
    counts = issue_post_counts(app.db)
    if as_json:
        echo_json([_issue_dict(app, i, counts.get(i.number, 0)) for i in found])
        return
    if not found:
        click.echo("No issues yet.")
        return
    width = max(len(i.period) for i in found)
    shown = max(7, *(len(i.status) for i in found))
    click.echo(f"{'ISSUE':>5}  {'PERIOD':<{width}}  {'STATUS':<{shown}}  {'POSTS':>5}  SUBJECT")
    for item in found:
        click.echo(
            f"{item.number:>5}  {item.period:<{width}}  {item.status:<{shown}}  "
            f"{counts.get(item.number, 0):>5}  {item.subject}"
        )


@issue.command("show")
@click.argument("number", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="JSON, with the posts.")
@pass_app
def issue_show(app: App, number: int, as_json: bool) -> None:
    """Show one issue, where its mailing stands and its posts, in order (`issue deliveries
    NUMBER` lists each message).

    Example:

    \b
        policyfeed issue show 1
    """
    from policyfeed.delivery.ledger import DeliveryLedger
    from policyfeed.digest.issues import get_issue, issue_posts

    issue_ = get_issue(app.db, number)
    posts = issue_posts(app.db, issue_)
    data = _issue_dict(app, issue_, len(posts))
    counts = DeliveryLedger(app.db, issue_.id or 0, clock=app.now).counts()
    if as_json:
        data["deliveries"] = counts
        data["posts"] = [
            {"slug": p.slug, "title": p.title, "url": p.permalink(app.settings.base_url)}
            for p in posts
        ]
        echo_json(data)
        return
    click.echo(f"{'issue:':<9}{issue_.number}")
    for key in ("period", "status", "subject"):
        click.echo(f"{key + ':':<9}{data[key]}")
    click.echo(f"{'created:':<9}{app.local(issue_.created_at)}")
    click.echo(f"{'sent:':<9}{app.local(issue_.sent_at)}")
    if issue_.approved_at:
        click.echo(f"{'approved:':<9}{app.local(issue_.approved_at)}")
    if issue_.discarded_at:
        click.echo(f"{'discarded:':<9}{app.local(issue_.discarded_at)}")
    click.echo(f"{'web:':<9}{data['web_url']}")
    total = sum(counts.values())
    mailed = f"{total}: {count_line(counts)}" if total else "none yet"
    click.echo(f"{'mailed:':<9}{mailed}")
    if issue_.note:
        click.echo(f"{'note:':<9}{issue_.note}")
    click.echo(f"\n{counted(len(posts), 'post')}:")
    _echo_posts(app, posts)


@issue.command("preview")
@click.argument("number", type=click.IntRange(min=1), required=False)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="preview",
    show_default=True,
    help="Folder for the HTML and text files.",
)
@click.option("--chapter", metavar="SLUG", help="A chapter's variant instead of the whole issue.")
@click.option("--note", default="", help="Next issue only: the editor's note to try.")
@click.option("--exclude", multiple=True, metavar="SLUG", help="Next issue only: leave out.")
@click.option("--pin", multiple=True, metavar="SLUG", help="Next issue only: put first.")
@pass_app
def issue_preview(
    app: App, number: int | None, out_dir: Path, chapter: str | None, note: str,
    exclude: tuple[str, ...], pin: tuple[str, ...],
) -> None:  # fmt: skip
    """Write the HTML and text of the next issue (or issue NUMBER) and print their paths.

    Records nothing. The links are a sample member's: they look like a member's, but the
    unsubscribe link in them unsubscribes nobody.

    Example:

    \b
        policyfeed issue preview --note "Draft note"
        policyfeed issue preview 3 --chapter geneva --out /tmp/digest
    """
    from policyfeed.digest.issues import get_issue, issue_posts, plan_issue
    from policyfeed.digest.sample import with_sample_links
    from policyfeed.output import write_text_if_changed

    if number is None:
        planned = plan_issue(
            app.db, app.settings, now=app.now(), note=note, exclude=exclude, pin=pin
        )
        if planned is None:
            click.echo("Nothing new: no published posts are waiting for an issue.")
            return
        issue_, posts = planned
    else:
        if note or exclude or pin:
            raise click.UsageError("--note, --exclude and --pin shape the next issue only")
        issue_ = get_issue(app.db, number)
        posts = issue_posts(app.db, issue_)
    digest = _variant(app, issue_, posts, chapter)
    _warn(digest)
    digest = with_sample_links(digest, app.settings)
    stem = f"issue-{issue_.number}" + (f"-{chapter}" if chapter else "")
    html_path, text_path = out_dir / f"{stem}.html", out_dir / f"{stem}.txt"
    write_text_if_changed(html_path, digest.html)
    write_text_if_changed(text_path, digest.text)
    click.echo(str(html_path))
    click.echo(str(text_path))


@issue.command("render")
@click.argument("number", type=click.IntRange(min=1))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "text", "eml"]),
    default="html",
    show_default=True,
    help="The HTML part, the text part, or a whole message to open in a mail program.",
)
@click.option("--chapter", metavar="SLUG", help="A chapter's variant instead of the whole issue.")
@pass_app
def issue_render(app: App, number: int, fmt: str, chapter: str | None) -> None:
    """Print issue NUMBER as HTML, text or a .eml message on standard output.

    Each shows a sample member's message: the links look like a member's (the .eml carries
    the List-Unsubscribe headers too), but the unsubscribe link in them unsubscribes nobody.

    Example:

    \b
        policyfeed issue render 1 --format text
        policyfeed issue render 1 --format eml > issue-1.eml
    """
    from policyfeed.digest.issues import get_issue, issue_posts
    from policyfeed.digest.sample import sample_message, with_sample_links

    issue_ = get_issue(app.db, number)
    digest = _variant(app, issue_, issue_posts(app.db, issue_), chapter)
    _warn(digest)
    if fmt == "eml":
        click.echo(sample_message(digest, issue_, app.settings), nl=False)
        return
    sample = with_sample_links(digest, app.settings)
    click.echo(sample.html if fmt == "html" else sample.text, nl=False)
