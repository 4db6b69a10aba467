"""``policyfeed serve``: the built site, its feeds and the site's endpoints under waitress."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from policyfeed.cli import App, cli, pass_app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
@click.option(
    "--demo",
    is_flag=True,
    help="Preview locally without POLICYFEED_SECRET: links are checked with the public "
    "development key that publish uses for the outbox when no secret is set. Loopback only.",
)
@pass_app
def serve(app: App, host: str, port: int, out_dir: Path | None, demo: bool) -> None:
    """Serve the built site: pages, feeds (with their media types, ETag, Last-Modified and
    gzip), the unsubscribe endpoint, /healthz and the editors' preview of the digest at
    /preview/. Ctrl+C stops it.

    The preview is open to this machine when serve listens on a loopback address (and no
    proxy is configured); elsewhere only with HTTP Basic authentication against
    POLICYFEED_PREVIEW_PASSWORD. Without either there is none (404).

    It needs POLICYFEED_SECRET (the key the unsubscribe links were signed with) and refuses to
    start without it, except with --demo on a loopback address. Run `policyfeed build` first;
    serve shows what the output folder holds. On a public site it runs behind nginx or Caddy
    (see docs/deploy.md); connections and timeouts are set in [web].

    Example:

    \b
        policyfeed build && policyfeed serve
        POLICYFEED_SECRET=... policyfeed serve --host 127.0.0.1 --port 8080
        policyfeed serve --demo
    """
    from policyfeed.web.app import make_app
    from policyfeed.web.preview import serve_endpoints
    from policyfeed.web.server import create_server

    if demo and not _is_loopback(host):
        raise click.UsageError(f"--demo serves only on a loopback address, not {host}")
    settings = app.settings
    if not app.db_path.is_file():
        raise click.ClickException(
            f"{app.db_path}: no such database (give the site's database with --db)"
        )
    folder = out_dir or settings.output_dir
    if not folder.is_dir():
        meant = _close_folder(folder) if out_dir is not None else None
        if meant is not None:  # a typo: serving it would answer 404 to everything
            raise click.UsageError(f"{folder}: no such folder; did you mean {meant}?")
        click.echo(f"Note: {folder} does not exist yet; run `policyfeed build` first.", err=True)
    preview = serve_endpoints(settings, host)
    site = make_app(settings, app.db_path, folder, demo=demo, endpoints=preview)
    if demo and not settings.secret:
        click.echo(
            "Note: POLICYFEED_SECRET is not set: unsubscribe links are checked with the public "
            "development key (--demo).",
            err=True,
        )
    try:
        server = create_server(site, settings, host, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    click.echo(f"Serving {folder} at http://{host}:{server.effective_port}/ (Ctrl+C stops)")
    local = bool(preview) and not settings.trusted_proxies
    if local or settings.preview_password:
        who = ["this machine"] if local else []
        who += ["with POLICYFEED_PREVIEW_PASSWORD"] if settings.preview_password else []
        click.echo(
            f"Editors' preview: http://{host}:{server.effective_port}/preview/ "
            f"({', or '.join(who)})"
        )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _close_folder(folder: Path) -> Path | None:
    """A folder beside ``folder`` whose name is close to its name (a typo's target), if any."""
    import difflib

    parent = folder.parent
    try:
        names = [p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return None
    found = difflib.get_close_matches(folder.name, names, n=1, cutoff=0.75)
    return parent / found[0] if found else None
