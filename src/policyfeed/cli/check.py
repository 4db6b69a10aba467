"""``policyfeed check``: the preflight of what would go out."""

from __future__ import annotations

from pathlib import Path

import click

from policyfeed.cli import App, cli, echo_json, pass_app


@cli.command("check")
@click.option(
    "--issue", "number", type=click.IntRange(min=1), metavar="N", help="Check issue N's messages."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The built site to check (default: build.output_dir, public/).",
)
@click.option("--json", "as_json", is_flag=True, help="The findings as one JSON object.")
@pass_app
def check_command(app: App, number: int | None, out_dir: Path | None, as_json: bool) -> None:
    """Check what would go out: the feeds and pages the build wrote, each variant of an issue
    as the message a member gets, the templates' accessibility, and the settings mail needs.

    Without --issue, the messages checked are those of the next issue (the posts waiting now),
    or of the newest issue when none is waiting. One line per finding,
    `ERROR|WARN area file/variant: what, where`, grouped by area; the last line counts them.
    `publish` runs the same check before any message leaves and sends nothing on an error.
    Pages and feeds that did not change since the last check are not read again.

    \b
    Exit codes: 0 no errors (warnings allowed), 1 errors, 2 usage.

    Example:

    \b
        policyfeed check
        policyfeed check --issue 3 --json
    """
    from policyfeed.check.run import run_check

    report = run_check(app.db, app.settings, now=app.now(), issue_number=number, out_dir=out_dir)
    if as_json:
        echo_json(report.as_json())
    else:
        for line in report.lines():
            click.echo(line)
    if report.errors:
        raise click.exceptions.Exit(1)
