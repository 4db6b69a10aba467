"""``policyfeed build``: feeds, archive pages, OPML and the static pages."""

from __future__ import annotations

from pathlib import Path

import click

from policyfeed.cli import App, CliError, cli, pass_app


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: build.output_dir, public/).",
)
@click.option(
    "--full",
    is_flag=True,
    help="Render every page, not only what changed since the last build.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Build into a folder that holds files this database did not build (refused otherwise).",
)
@pass_app
def build(app: App, out_dir: Path | None, full: bool, force: bool) -> None:
    """Write the feeds (RSS, Atom, JSON Feed), archive pages, OPML and the static pages.

    Only what changed since the last build is rendered, and a file is rewritten only when its
    bytes change. Posts dated in the future are left out until then. A folder that holds
    files this database did not build (another site, a mistyped --out) is refused unless
    --force. The build state is kept in the database, never in the output folder. With a WebSub hub
    configured (build.websub_hub), the hub is told which feeds changed; if it cannot be
    reached the build still succeeds, exits 75, and the next build tells it again.

    Example:

    \b
        policyfeed build
        policyfeed build --out /var/www/policy
    """
    from policyfeed.site.build import build_site
    from policyfeed.wording import counted

    settings = app.settings
    target = out_dir or settings.output_dir
    result = build_site(app.db, settings, target, app.now(), full=full, force=force)
    click.echo(
        f"Built {target}: {counted(result.posts, 'post')}, "
        f"{counted(len(result.written), 'file')} written, "
        f"{len(result.removed)} removed{' (full build)' if result.full else ''}"
    )
    for url in result.hub_notified:
        click.echo(f"Notified {settings.websub_hub} of {url}")
    if result.hub_error:
        raise CliError(f"{result.hub_error} (the next build tries again)", 75)
