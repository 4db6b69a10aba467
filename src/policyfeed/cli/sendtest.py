"""``policyfeed issue send-test N --to ADDRESS``: one copy to an editor, the ledger untouched."""

from __future__ import annotations

import click

from policyfeed.cli import App, pass_app
from policyfeed.cli.issues import issue


@issue.command("send-test")
@click.argument("number", type=click.IntRange(min=1))
@click.option("--to", "address", required=True, metavar="ADDRESS", help="Who gets the copy.")
@click.option("--chapter", metavar="SLUG", help="A chapter's variant instead of the whole issue.")
@pass_app
def issue_send_test(app: App, number: int, address: str, chapter: str | None) -> None:
    """Send one copy of issue NUMBER to ADDRESS, as subscribers get it, without touching
    the delivery ledger.

    It goes through the configured SMTP relay, or into the outbox when none is set. The subject
    starts with "[Test]", the Message-ID is new on every run (mail programs drop repeated ids),
    and the unsubscribe link in the copy unsubscribes nobody. Exit 75 when the relay is
    unavailable (safe to try again).

    Example:

    \b
        policyfeed issue send-test 3 --to editor@example.org
        policyfeed issue send-test 3 --to editor@example.org --chapter geneva
    """
    from policyfeed.audience.subscribers import normalize_email
    from policyfeed.delivery.sendtest import send_test_copy

    try:
        recipient = normalize_email(address)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    copy = send_test_copy(app.db, app.settings, number, recipient, chapter=chapter, now=app.now())
    click.echo(f"Sent a test copy of issue {number} to {recipient} via {copy.via}")
