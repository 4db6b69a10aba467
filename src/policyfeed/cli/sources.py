"""``policyfeed sources …``: copy posts from other blogs' feeds (``[[sources]]`` in the config)."""

from __future__ import annotations

from typing import Any

import click

from policyfeed.cli import App, CliError, cli, echo_json, pass_app


@cli.group()
def sources() -> None:
    """Sync posts from the feeds of the blogs you already have ([[sources]] in the config).

    Example:

    \b
        policyfeed sources sync
        policyfeed sources list
    """


@sources.command("sync")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option(
    "--announce-existing",
    is_flag=True,
    help="On a source's first sync, let the next digest take what it finds "
    "(by default the back catalogue counts as already announced).",
)
@click.option(
    "--allow-blanking",
    is_flag=True,
    help="Let an item changed upstream empty a published post's title, body, topics or author.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--wait", is_flag=True, help="Wait for a run in progress instead of exiting 75.")
@pass_app
def sources_sync(
    app: App, names: tuple[str, ...], announce_existing: bool, allow_blanking: bool,
    as_json: bool, wait: bool,
) -> None:  # fmt: skip
    """Fetch each source's feed and add or update its posts (all sources, or those NAMEd).

    A conditional GET (ETag, Last-Modified) asks only for what changed. New items become
    published posts that keep their original address; items changed upstream update their
    post; items gone from the feed are left alone. The first sync of a source marks what it
    finds as already announced, so the next digest does not mail the whole back catalogue
    (--announce-existing lets it). Each source is synced whole or not at all: a malformed or
    truncated feed, a 404 or a timeout is one line naming the source, and the others still
    sync.

    \b
    Exit codes:
      0   every source synced (or had not changed)
      1   a source is broken (malformed feed, 404/410, too large, refused update)
      75  only temporary failures (timeout, refused connection, 5xx): run again later

    Example:

    \b
        policyfeed sources sync
        policyfeed sources sync blog --announce-existing
    """
    from policyfeed.content.sync import sync_sources
    from policyfeed.lock import exclusive_lock, lock_path_for

    settings = app.settings
    if not settings.sources:
        raise CliError(
            'no [[sources]] in the config: add one per feed, e.g. [[sources]] name = "blog" '
            'url = "https://blog.example.org/feed/"',
            1,
        )
    with exclusive_lock(lock_path_for(app.db_path), wait=wait):
        result = sync_sources(
            app.db,
            settings,
            now=app.now(),
            names=names,
            announce_existing=announce_existing,
            allow_blanking=allow_blanking,
        )
    if as_json:
        echo_json(
            {
                "exit_code": result.exit_code,
                "sources": [report.as_json() for report in result.reports],
            }
        )
    else:
        for report in result.reports:
            if report.status == "failed":
                click.echo(f"Error: {report.line()}", err=True)
            else:
                click.echo(report.line())
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_app
def sources_list(app: App, as_json: bool) -> None:
    """Each source: its feed, when it last synced, its last error, and its posts.

    Example:

    \b
        policyfeed sources list
    """
    from policyfeed.store.sources import all_source_states

    states = all_source_states(app.db)
    shown = [
        (source.name, source.url, states.pop(source.name, None), True)
        for source in app.settings.sources
    ]
    shown += [(name, state.url, state, False) for name, state in states.items()]
    rows = [_row(*entry) for entry in shown]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No sources: add [[sources]] to the config (one per feed).")
        return
    width = max(4, *(len(r["name"]) for r in rows))
    click.echo(f"{'NAME':<{width}}  {'POSTS':>5}  {'IN FEED':>7}  {'LAST SUCCESS':<16}  LAST ERROR")
    for row, (_, _, state, _) in zip(rows, shown, strict=True):
        success = app.local(state.last_success_at) if state and state.last_success_at else "never"
        error = "-"
        if state and state.last_error:
            kind = "temporary" if state.last_temporary else "error"
            error = f"{app.local(state.last_error_at)} {kind}: {state.last_error}"
        click.echo(
            f"{row['name']:<{width}}  {row['posts']:>5}  {row['feed_items']:>7}  "
            f"{success:<16}  {error}"
        )
        notes = [row["url"]]
        if not row["configured"]:
            notes.append("not in the config any more")
        if row["moved_to"]:
            notes.append(f"moved permanently to {row['moved_to']}: update its url")
        click.echo(f"{'':<{width}}  {'; '.join(notes)}")


def _row(name: str, url: str, state: Any, configured: bool) -> dict[str, Any]:
    def stamp(moment: Any) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "name": name,
        "url": url,
        "configured": configured,
        "posts": state.items if state else 0,
        "feed_items": state.feed_items if state else 0,
        "first_synced_at": stamp(state.first_synced_at) if state else None,
        "last_success_at": stamp(state.last_success_at) if state else None,
        "last_attempt_at": stamp(state.last_attempt_at) if state else None,
        "last_error": state.last_error if state else "",
        "last_error_at": stamp(state.last_error_at) if state else None,
        "last_temporary": state.last_temporary if state else False,
        "moved_to": state.moved_to if state else "",
    }
