"""``policyfeed issue approve|edit|discard N``: an editor's hand on an issue before it goes out.

Each holds the run lock (the one ``publish`` holds), so no run is between reading the issue and
sending it meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from policyfeed.cli import App, pass_app
from policyfeed.cli.issues import _echo_posts, _note_option, _read_note, issue
from policyfeed.wording import counted

if TYPE_CHECKING:
    from policyfeed.digest.editing import Edited


@contextlib.contextmanager
def _no_publish_running(app: App) -> Iterator[None]:
    from policyfeed.errors import BusyError, NotFoundError
    from policyfeed.lock import exclusive_lock, lock_path_for

    if not app.db_path.is_file():
        raise NotFoundError(f"{app.db_path}: no such database (give the site's with --db)")
    try:
        with exclusive_lock(lock_path_for(app.db_path)):
            yield
    except BusyError:
        raise BusyError(
            "a publish run is under way: an issue is not changed while one may be sending it; "
            "try again when it is over"
        ) from None


def _warn(edited: Edited) -> None:
    for warning in edited.warnings:
        click.echo(f"Warning: {warning}", err=True)


def _recipients(app: App, edited: Edited) -> int:
    from policyfeed.digest.issues import variant_shares

    return sum(s.recipients for s in variant_shares(app.db, edited.posts) if s.posts)


@issue.command("approve")
@click.argument("number", type=click.IntRange(min=1))
@pass_app
def issue_approve(app: App, number: int) -> None:
    """Approve draft issue NUMBER: the next `policyfeed publish` delivers it (a special
    issue, made with `issue new --period NAME`: `policyfeed publish --period NAME`).

    Every chapter's version is rendered first (an issue too large to send is refused now),
    and every post in it must still be published. Its lateness (digest.max_lateness) counts
    from now. Change an approved issue with `issue edit` (it becomes a draft again), or throw
    it away with `issue discard`.

    Example:

    \b
        policyfeed issue send-test 3 --to editor@example.org
        policyfeed issue approve 3
    """
    from policyfeed.digest.editing import approve_issue

    with _no_publish_running(app):
        edited = approve_issue(app.db, app.settings, number, now=app.now())
    _warn(edited)
    from policyfeed.schedule import looks_like_a_time

    found = edited.issue
    # A special issue (a named period) is never mailed by the scheduled run: only
    # `publish --period NAME` sends it.
    special = not looks_like_a_time(found.period)
    sender = (
        f"`policyfeed publish --period {found.period}`"
        if special
        else "the next `policyfeed publish`"
    )
    if not edited.changed:
        approved = app.local(found.approved_at)
        click.echo(f"Issue {number} was approved on {approved}; {sender} delivers it.")
        return
    never = "the scheduled run never mails it; " if special else ""
    click.echo(
        f"Approved issue {number} (period {found.period}, {counted(len(edited.posts), 'post')}): "
        f"{never}{sender} delivers it to {counted(_recipients(app, edited), 'member')}."
    )


@issue.command("edit")
@click.argument("number", type=click.IntRange(min=1))
@click.option("--subject", help='The subject line ("" gives back the one made from the posts).')
@_note_option
@click.option(
    "--pin", multiple=True, metavar="SLUG", help="Put a post first, adding it if it waits."
)
@click.option("--exclude", multiple=True, metavar="SLUG", help="Leave a post out: it waits.")
@pass_app
def issue_edit(
    app: App, number: int, subject: str | None, note: str | None, note_file: Path | None,
    pin: tuple[str, ...], exclude: tuple[str, ...],
) -> None:  # fmt: skip
    """Change issue NUMBER before it goes out: its subject, its note (Markdown; "" removes
    it), the posts put first (--pin: one of its own, or one waiting for an issue) or left out
    (--exclude: it waits for the next issue).

    Refused once its delivery has begun. An approved issue becomes a draft again (approve it
    once more). Every version is rendered before anything is written.

    Example:

    \b
        policyfeed issue edit 3 --subject "WCIT: the week in Dubai"
        policyfeed issue edit 3 --note-file note.md --pin wcit-preparation-ask-your-government
        policyfeed issue edit 3 --exclude old-draft-post --note ""
    """
    from policyfeed.digest.editing import edit_issue

    note = _read_note(note, note_file)
    if subject is None and note is None and not pin and not exclude:
        raise click.UsageError("nothing to change: give --subject, --note, --pin or --exclude")
    with _no_publish_running(app):
        edited = edit_issue(
            app.db, app.settings, number, now=app.now(), subject=subject, note=note, pin=pin,
            exclude=exclude,
        )  # fmt: skip
    _warn(edited)
    if not edited.changed:
        click.echo(f"Nothing changed: issue {number} is so already.")
        return
    posts = counted(len(edited.posts), "post")
    click.echo(f"Edited issue {number} (period {edited.issue.period}), {posts}:")
    _echo_posts(app, edited.posts)
    click.echo(f"Subject: {edited.issue.subject}")
    if edited.was_approved:
        click.echo(
            f"It is a draft again: approve it once more (policyfeed issue approve {number})."
        )


@issue.command("discard")
@click.argument("number", type=click.IntRange(min=1))
@pass_app
def issue_discard(app: App, number: int) -> None:
    """Throw away issue NUMBER before it goes out: its posts wait for the next issue.

    Refused once its delivery has begun. The issue stays listed as discarded (its number is
    not used again); no page of the archive shows it, and `publish` makes no other issue for
    its period by itself (`issue new` can).

    Example:

    \b
        policyfeed issue discard 3
    """
    from policyfeed.digest.editing import discard_issue

    with _no_publish_running(app):
        edited = discard_issue(app.db, number, now=app.now())
    found = edited.issue
    if not edited.changed:
        click.echo(f"Issue {number} was discarded on {app.local(found.discarded_at)} already.")
        return
    click.echo(
        f"Discarded issue {number} (period {found.period}): its "
        f"{counted(len(edited.posts), 'post')} {'waits' if len(edited.posts) == 1 else 'wait'} "
        "for the next issue."
    )
