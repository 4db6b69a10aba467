"""``policyfeed publish``: the one command a scheduler runs."""

from __future__ import annotations

from typing import Any

import click

from policyfeed.cli import App, CliError, busy_database, cli, pass_app_unchecked


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
    if value is None:
        return None
    from policyfeed.config import parse_duration
    from policyfeed.errors import ConfigError

    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command("publish")
@click.option(
    "--period",
    metavar="P",
    help="Publish this period: a time of the schedule, not a future one, as YYYY-MM-DDTHH:MM "
    "in the site's time zone (e.g. 2012-07-30T08:00), or a special issue's name.",
)
@click.option("--dry-run", is_flag=True, help="Render and report; write nothing at all.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option(
    "--max-lateness",
    metavar="D",
    callback=_duration,
    help="Refuse to mail a period scheduled longer ago than this (e.g. 2d; default from config).",
)
@click.option("--force", is_flag=True, help="Mail the period even if it is late.")
@click.option("--wait", is_flag=True, help="Wait for a run in progress instead of exiting 75.")
@click.option(
    "--resend-ambiguous",
    is_flag=True,
    help="Hand over again (same Message-ID) the messages an interrupted SMTP run left unsure.",
)
@pass_app_unchecked
def publish_command(
    app: App,
    period: str | None,
    dry_run: bool,
    as_json: bool,
    max_lateness: object,
    force: bool,
    wait: bool,
    resend_ambiguous: bool,
) -> None:
    """Make and deliver the issue of the current period; safe to run any number of times.

    The period is the latest time of the schedule (digest.schedule, a cron expression in the
    site's time zone) at or before now, or --period. If its issue was delivered, nothing
    happens; if its delivery was interrupted, it resumes; otherwise an issue is made from the
    posts waiting to go out, the site and feeds are rebuilt and every active subscriber gets
    their chapter's variant. No waiting post: nothing is written. Resuming or forcing a period
    older than --max-lateness is refused without --force. Messages go to the outbox/ Maildir
    unless an SMTP relay is configured.

    With digest.approval = "required" the issue is made as a draft and one copy goes to
    site.editor_email; nothing goes to members (awaiting_approval) until `issue approve N`,
    after which the next run delivers it (lateness counted from the approval).

    --period takes one of the schedule's times as YYYY-MM-DDTHH:MM in the site's time zone
    (2012-07-30 08:00, 2012-07-30T08:00:00 and a UTC offset are read too; a date alone
    means the schedule's time that day), never a future one; or the name of a special issue
    made with `issue new --period NAME`. Anything else is a usage error (exit 2).

    \b
    Exit codes:
      0   done: sent, resumed, already sent, nothing new, dry run, awaiting approval
          (digest.approval = "required"), discarded
      1   error: a stale period, a draft overdue for approval, a relay that refuses the
          configuration (certificate, STARTTLS, login), or SMTP hand-offs left unsure
          (named: see issue mark-sent)
      2   usage error (e.g. a --period that is not one of the schedule's)
      75  temporary: another run holds the lock, the relay is down or answers 4xx, or some
          messages wait for the next run (safe to re-run)

    Example:

    \b
        policyfeed publish
        policyfeed publish --dry-run
        policyfeed publish --json --wait
        policyfeed publish --period 2012-07-30T08:00 --force
    """
    import json
    from datetime import timedelta

    from policyfeed.errors import PolicyfeedError
    from policyfeed.publish import publish

    lateness = max_lateness if isinstance(max_lateness, timedelta) else None

    def run(progress: Any = None) -> object:
        return publish(
            app.db,
            app.settings,
            now=app.now(),
            period=period,
            dry_run=dry_run,
            max_lateness=lateness,
            force=force,
            resend_ambiguous=resend_ambiguous,
            progress=progress,
        )

    try:
        try:
            result = _run_locked(app, run, dry_run=dry_run, wait=wait, as_json=as_json)
        except Exception as exc:
            busy = busy_database(exc)
            if busy is None:
                raise
            raise busy from exc
    except PolicyfeedError as exc:
        if as_json:
            status = "busy" if exc.__class__.__name__ == "BusyError" else "error"
            click.echo(
                json.dumps({"status": status, "error": str(exc), "exit_code": exc.exit_code})
            )
        raise CliError(str(exc), exc.exit_code) from exc

    from policyfeed.publish import PublishResult

    assert isinstance(result, PublishResult)
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        for finding in result.check.get("findings", ()):  # the preflight's, as `check` says them
            click.echo(finding["line"], err=True)
        click.echo(result.summary() + _where(app, result))
    if result.status == "no_recipients":  # exit 0 for the scheduler; a person should know
        for warning in result.warnings:
            click.echo(f"Warning: {warning}", err=True)
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)


def _run_locked(app: App, run: Any, *, dry_run: bool, wait: bool, as_json: bool) -> object:
    """The run under the lock (a dry run reads only: no lock file either)."""
    from policyfeed.cli.progress import sending_progress
    from policyfeed.lock import exclusive_lock, lock_path_for

    app.check()  # here, so that --json reports a wrong path or config as JSON too
    if dry_run:
        return run()
    with (
        exclusive_lock(lock_path_for(app.db_path), wait=wait),
        sending_progress(enabled=not as_json) as progress,  # a bar on a terminal only
    ):
        return run(progress)


def _where(app: App, result: object) -> str:
    """Where a run that delivered put things (the outbox only when no relay is set)."""
    from pathlib import Path

    if getattr(result, "status", "") not in ("sent", "resumed", "partial"):
        return ""

    def shown(path: Path) -> str:
        try:
            return f"{path.relative_to(Path.cwd())}/"
        except ValueError:
            return f"{path}/"

    settings = app.settings
    mail = f"the relay {settings.smtp_host}" if settings.smtp_host else shown(settings.outbox_dir)
    return f"; site in {shown(settings.output_dir)}, messages to {mail}"
