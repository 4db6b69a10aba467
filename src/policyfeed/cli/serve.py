"""``policyfeed serve``: preview the built site, its feeds and the unsubscribe endpoint."""

from __future__ import annotations

from pathlib import Path

import click

from policyfeed.cli import App, cli, pass_app


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0 picks a free one).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to serve (default: build.output_dir, public/).",
)
@pass_app
def serve(app: App, host: str, port: int, out_dir: Path | None) -> None:
    """Serve the built site on localhost: pages, feeds (with their media types, ETag,
    Last-Modified and gzip) and the unsubscribe endpoint. Ctrl+C stops it.

    Run `policyfeed build` first; serve shows what the output folder holds.

    Example:

    \b
        policyfeed build && policyfeed serve
        policyfeed serve --port 8080
    """
    from waitress.server import create_server

    from policyfeed.web.app import make_app

    settings = app.settings
    folder = out_dir or settings.output_dir
    if not folder.is_dir():
        click.echo(f"Note: {folder} does not exist yet; run `policyfeed build` first.", err=True)
    try:
        server = create_server(make_app(settings, app.db_path, folder), host=host, port=port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    click.echo(f"Serving {folder} at http://{host}:{server.effective_port}/ (Ctrl+C stops)")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
