"""``policyfeed issue deliveries N``: what became of each message of an issue."""

from __future__ import annotations

from typing import Any

import click

from policyfeed.cli import App, echo_json, pass_app
from policyfeed.cli.issues import count_line, issue
from policyfeed.model import DELIVERY_STATUSES


@issue.command("deliveries")
@click.argument("number", type=click.IntRange(min=1))
@click.option(
    "--status",
    type=click.Choice(DELIVERY_STATUSES),
    help="Only the deliveries with this status.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_app
def issue_deliveries(app: App, number: int, status: str | None, as_json: bool) -> None:
    """List the deliveries of issue NUMBER: one per member it went (or goes) to, with its
    status, attempts, Message-ID and the relay's last answer.

    \b
    Statuses:
      pending  waits for the next run (a temporary answer is in LAST ERROR)
      sending  being handed to the relay when a run stopped: it may or may not have
               arrived; look its Message-ID up in the relay's log: `policyfeed issue
               mark-sent N MESSAGE-ID` records one that arrived, then
               `policyfeed publish --resend-ambiguous` sends the others again
      sent     handed over
      failed   refused for good (the relay's answer is in LAST ERROR)
      skipped  not mailed (why is in LAST ERROR)

    Example:

    \b
        policyfeed issue deliveries 3
        policyfeed issue deliveries 3 --status failed
        policyfeed issue deliveries 3 --status sending --json
    """
    from policyfeed.delivery.ledger import DeliveryLedger
    from policyfeed.digest.issues import get_issue

    issue_ = get_issue(app.db, number)
    ledger = DeliveryLedger(app.db, issue_.id or 0, clock=app.now)
    rows = ledger.listing(status)
    if as_json:
        echo_json([_as_json(row) for row in rows])
        return
    counts = ledger.counts()
    total = sum(counts.values())
    if not total:
        click.echo(f"Issue {number} has no deliveries yet: its mailing has not begun.")
        return
    if rows:
        _table(app, rows)
    if status is None:
        click.echo(f"{total} deliveries: {count_line(counts)}")
    else:
        click.echo(f"{len(rows)} of {total} deliveries are {status}.")


def _as_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "sent_at": row["sent_at"].isoformat() if row["sent_at"] else None,
        "updated_at": row["updated_at"].isoformat() if row["updated_at"] else None,
    }


def _table(app: App, rows: list[dict[str, Any]]) -> None:
    headers = ("STATUS", "ATTEMPTS", "UPDATED", "ADDRESS", "MESSAGE-ID", "LAST ERROR")
    lines = [
        (
            row["status"],
            str(row["attempts"]),
            app.local(row["updated_at"]),
            row["email"],
            row["message_id"],
            " ".join(row["last_error"].split()),
        )
        for row in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    for line in (headers, *lines):
        cells = [
            cell.rjust(widths[i]) if i == 1 else cell.ljust(widths[i])
            for i, cell in enumerate(line[:-1])
        ]
        click.echo("  ".join([*cells, line[-1]]).rstrip())


@issue.command("mark-sent")
@click.argument("number", type=click.IntRange(min=1))
@click.argument("message_ids", nargs=-1, required=True, metavar="MESSAGE-ID...")
@pass_app
def issue_mark_sent(app: App, number: int, message_ids: tuple[str, ...]) -> None:
    """Record that unsure messages of issue NUMBER did reach the relay, so that they are never
    handed over again.

    A message is unsure (status sending) when a run stopped while handing it to the relay:
    look its Message-ID up in the relay's log. Mark the ones that arrived with this command,
    then `policyfeed publish --resend-ambiguous` sends the others again. Only unsure messages
    of the issue can be marked; if one Message-ID is not, nothing is marked (exit 1).

    Example:

    \b
        policyfeed issue deliveries 3 --status sending
        policyfeed issue mark-sent 3 issue-3.sub-42.1f2e3d4c5b6a@policy.example.org
    """
    from policyfeed.delivery.ledger import DeliveryLedger
    from policyfeed.digest.issues import get_issue
    from policyfeed.wording import counted

    issue_ = get_issue(app.db, number)
    ledger = DeliveryLedger(app.db, issue_.id or 0, clock=app.now)
    marked = ledger.mark_unsure_sent(message_ids)
    left = ledger.counts()
    unsettled = left.get("pending", 0) + left.get("sending", 0)
    from policyfeed.schedule import looks_like_a_time

    # A special issue goes out only when named; the scheduled run never mails it.
    command = "policyfeed publish" + (
        "" if looks_like_a_time(issue_.period) else f" --period {issue_.period}"
    )
    then = (
        f"the next `{command}` finishes the issue"
        if not unsettled
        else f"{counted(unsettled, 'message')} of it still to settle: `{command}"
        + (" --resend-ambiguous" if left.get("sending", 0) else "")
        + "` sends the rest"
    )
    click.echo(f"Marked {counted(marked, 'message')} of issue {number} as sent; {then}.")
