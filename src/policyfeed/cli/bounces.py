"""``policyfeed bounces …``: read returned mail into the list's bounces and complaints."""

from __future__ import annotations

import json

import click

from policyfeed.cli import App, CliError, cli, echo_json, pass_app


@cli.group()
def bounces() -> None:
    """Bounces and complaints: read the bounce mailbox, see what came back.

    Example:

    \b
        policyfeed bounces process ~/Maildir/bounces
        policyfeed bounces list
    """


@bounces.command("process")
@click.argument("mailbox", required=False, metavar="[MAILBOX]")
@click.option("--dry-run", is_flag=True, help="Read and report; record and move nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--wait", is_flag=True, help="Wait for a run in progress instead of exiting 75.")
@pass_app
def bounces_process(
    app: App, mailbox: str | None, dry_run: bool, as_json: bool, wait: bool
) -> None:
    """Read the bounce mailbox: record each bounce and complaint, then move it aside.

    MAILBOX is a Maildir folder, an mbox file, or imaps://USER@HOST[:PORT]/FOLDER (imap://
    for STARTTLS; the password from POLICYFEED_IMAP_PASSWORD); default bounces.mailbox.
    Delivery status notifications (RFC 3464), plain-text bounces and feedback reports (RFC
    5965) are tied to their delivery by the signed return path. A hard bounce (5.x.x) suspends
    the member at once (status bounced); bounces.soft_limit soft ones in a row (4.x.x, mailbox
    full, policy) do too; a complaint unsubscribes them, and so does an unsubscribe request by
    mail (the List-Unsubscribe mailto:). Auto-replies and delay warnings are ignored. Each
    message goes to the Processed folder once recorded (Unmatched: it names none of our
    deliveries); a second run never records anything twice.

    \b
    Exit codes: 0 done (also nothing to do), 1 error (a missing mailbox, a refused login,
    an untrusted certificate), 2 usage, 75 temporary (the server is unreachable or the
    connection dropped, another run holds the lock: what was recorded stays; run again).

    Example:

    \b
        policyfeed bounces process ~/Maildir
        policyfeed bounces process --dry-run /var/mail/bounces
        POLICYFEED_IMAP_PASSWORD=… policyfeed bounces process \\
            imaps://bounces@mail.example.org/INBOX --json
    """
    from policyfeed.audience.bounce_processing import process_mailbox
    from policyfeed.audience.mailboxes import open_mailbox
    from policyfeed.audience.subscribers import unsubscribe_secret
    from policyfeed.errors import ConfigError, PolicyfeedError
    from policyfeed.lock import exclusive_lock, lock_path_for
    from policyfeed.store.readonly import read_only

    settings = app.settings
    spec = mailbox or settings.bounces_mailbox
    try:
        if not spec:
            raise ConfigError(
                "no mailbox: give one (a Maildir folder, an mbox file or imaps://…) or set "
                "bounces.mailbox"
            )
        if not app.db_path.is_file():
            from policyfeed.errors import NotFoundError

            raise NotFoundError(f"{app.db_path}: no such database (`policyfeed init` makes one)")
        if not spec.lower().startswith(("imap://", "imaps://")) and _same_folder(
            spec, settings.outbox_dir
        ):
            raise ConfigError(
                f"{spec} is policyfeed's outbox (the mail going out), not a bounce mailbox; "
                "give the mailbox bounces arrive in"
            )
        secret = unsubscribe_secret(settings)
        lock = lock_path_for(app.db_path).with_suffix(".bounces-lock")
        with exclusive_lock(lock, wait=wait):
            source = open_mailbox(spec, settings)
            if dry_run:
                with read_only(app.db):
                    result = process_mailbox(
                        app.db, settings, source, secret=secret, now=app.now(), dry_run=True
                    )
            else:
                result = process_mailbox(app.db, settings, source, secret=secret, now=app.now())
    except PolicyfeedError as exc:
        if as_json:
            click.echo(
                json.dumps({"status": "error", "error": str(exc), "exit_code": exc.exit_code})
            )
        raise CliError(str(exc), exc.exit_code) from exc
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        for event in result.events:
            if event.outcome in ("hard", "soft", "complaint", "unsubscribe"):
                issue = f" (issue {event.issue})" if event.issue else ""
                would = "would be " if dry_run else ""
                action = (
                    f" -> {would}bounced"
                    if event.suspended
                    else f" -> {would}unsubscribed"
                    if event.unsubscribed
                    else ""
                )
                click.echo(f"  {event.outcome:<9} {event.email}{issue}: {event.detail}{action}")
        click.echo(result.summary())
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)


def _same_folder(spec: str, folder: object) -> bool:
    from pathlib import Path

    try:
        return Path(spec).expanduser().resolve() == Path(str(folder)).resolve()
    except OSError:
        return False


@bounces.command("list")
@click.option("--email", metavar="ADDRESS", help="Only this member's.")
@click.option(
    "--kind", type=click.Choice(["hard", "soft", "complaint"]), help="Only bounces of this kind."
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_app
def bounces_list(app: App, email: str | None, kind: str | None, limit: int, as_json: bool) -> None:
    """The latest bounces and complaints recorded, newest first.

    Bounces an editor cleared with `subscribers reactivate` are marked "cleared".

    Example:

    \b
        policyfeed bounces list
        policyfeed bounces list --email ana@example.org --json
    """
    from policyfeed.store import bounces as store

    rows = store.events(app.db, email=email, kind=kind, limit=limit)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No bounces or complaints recorded.")
        return
    width = max(len(r["email"]) for r in rows)
    click.echo(f"{'WHEN (UTC)':<20}  {'KIND':<9}  {'STATUS':<7}  {'EMAIL':<{width}}  ISSUE  DETAIL")
    for r in rows:
        kind_text = r["kind"] + ("*" if r["cleared"] else "")
        issue = str(r["issue"]) if r["issue"] is not None else "-"
        click.echo(
            f"{r['at']:<20}  {kind_text:<9}  {r['status'] or '-':<7}  {r['email']:<{width}}  "
            f"{issue:>5}  {r['detail'][:60]}"
        )
    if any(r["cleared"] for r in rows):
        click.echo("* cleared: the member was reactivated; it no longer counts")
