"""Site-level commands: init (and build, serve in their modules)."""

from __future__ import annotations

from pathlib import Path

import click

from policyfeed.cli import App, cli, pass_app_unchecked


@cli.command()
@click.option("--title", default="Policy blog", show_default=True, help="Site title.")
@click.option(
    "--base-url", default="http://127.0.0.1:8000/", show_default=True, help="Public site URL."
)
@pass_app_unchecked
def init(app: App, title: str, base_url: str) -> None:
    """Create the database and a policyfeed.toml (an existing config is kept).

    Example:

    \b
        policyfeed init --title "Public Policy" --base-url https://policy.example.org/
    """
    from policyfeed.config import (
        DEFAULT_CONFIG_TEXT,
        check_config_text,
        load_settings,
        toml_string,
    )
    from policyfeed.output import write_text_if_changed

    config_path = app.config_path or Path("policyfeed.toml")
    if config_path.exists():
        load_settings(config_path)  # fail now, not later, if the file is wrong
        click.echo(f"Kept {config_path} (already there)")
    else:
        if not base_url.endswith("/"):
            base_url += "/"
        text = DEFAULT_CONFIG_TEXT.format(title=toml_string(title), base_url=toml_string(base_url))
        check_config_text(text, config_path)  # a bad --base-url leaves nothing behind
        write_text_if_changed(config_path, text)
        click.echo(f"Wrote {config_path}")
    app.db_path.parent.mkdir(parents=True, exist_ok=True)
    app.may_create_db = True
    app.db  # noqa: B018 - opening creates and migrates
    click.echo(f"Database ready: {app.db_path}")
