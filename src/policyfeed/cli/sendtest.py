"""``policyfeed issue send-test N --to A --to B``: copies for editors, the ledger untouched."""

from __future__ import annotations

import click

from policyfeed.cli import App, pass_app
from policyfeed.cli.issues import issue


@issue.command("send-test")
@click.argument("number", type=click.IntRange(min=1))
@click.option(
    "--to",
    "addresses",
    required=True,
    multiple=True,
    metavar="ADDRESS",
    help="Who gets a copy (repeat for several).",
)
@click.option("--chapter", metavar="SLUG", help="A chapter's variant instead of the whole issue.")
@pass_app
def issue_send_test(app: App, number: int, addresses: tuple[str, ...], chapter: str | None) -> None:
    """Send a copy of issue NUMBER to each ADDRESS, as subscribers get it, without touching
    the delivery ledger. Drafts too: try an issue before you approve it.

    The copies go through the configured SMTP relay (one connection), or into the outbox when
    none is set. The subject starts with "[Test]", the Message-ID is new on every run (mail
    programs drop repeated ids), and the unsubscribe link in a copy unsubscribes nobody. An
    address the relay refuses does not stop the others (exit 1); when the relay is unavailable
    the rest wait (exit 75: safe to try again).

    Example:

    \b
        policyfeed issue send-test 3 --to editor@example.org
        policyfeed issue send-test 3 --to editor@example.org --to comms@example.org
        policyfeed issue send-test 3 --to editor@example.org --chapter geneva
    """
    from policyfeed.audience.subscribers import normalize_email
    from policyfeed.delivery.sendtest import SENT, send_test_copies

    recipients = []
    for address in addresses:
        try:
            recipients.append(normalize_email(address))
        except ValueError as exc:
            raise click.BadParameter(f"{address!r}: {exc}", param_hint="--to") from None
    report = send_test_copies(
        app.db, app.settings, number, recipients, chapter=chapter, now=app.now()
    )
    via = report.via
    for outcome in report.outcomes:
        if outcome.status == SENT:
            click.echo(f"Sent a test copy of issue {number} to {outcome.recipient} via {via}")
        elif outcome.status == "refused":
            click.echo(
                f"Error: the relay refused the test copy for {outcome.recipient}: {outcome.error}",
                err=True,
            )
        elif outcome.status == "blocked":
            click.echo(
                f"Error: test copy of issue {number} for {outcome.recipient} not sent: "
                f"{outcome.error}",
                err=True,
            )
        elif outcome.status == "unsure":
            click.echo(
                f"Error: the relay's answer about the test copy for {outcome.recipient} was "
                f"lost; it may have arrived: {outcome.error}",
                err=True,
            )
        else:
            click.echo(
                f"Error: test copy of issue {number} for {outcome.recipient} not sent, "
                f"try again later: {outcome.error}",
                err=True,
            )
    if report.exit_code:
        raise click.exceptions.Exit(report.exit_code)
