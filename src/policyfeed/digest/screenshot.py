"""A picture of the digest for the README:
``python -m policyfeed.digest.screenshot docs/digest.png``.

Renders the demo site's first issue (or, when the database has none, the issue ``publish`` would
make at the first scheduled time after the newest post) and screenshots it in headless Chromium
at 800px wide, with Playwright driving the system's Chromium (never a downloaded one). The
database is copied first: the committed demo database is never changed.
"""

from __future__ import annotations

import html as html_lib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyfeed.errors import PolicyfeedError
from policyfeed.output import write_if_changed

if TYPE_CHECKING:
    from policyfeed.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking")


@contextmanager
def chromium(executable: Path = CHROMIUM) -> Iterator[Any]:
    """A headless Chromium browser (Playwright, sync API) that loads nothing from the network."""
    if not executable.exists():
        raise PolicyfeedError(f"{executable} not found: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def offline_page(browser: Any, width: int, height: int = 900, **options: Any) -> Iterator[Any]:
    """A page of exactly ``width`` CSS pixels whose requests (images…) are all refused."""
    context = browser.new_context(viewport={"width": width, "height": height}, **options)
    try:
        page = context.new_page()
        page.route("**/*", lambda route: route.abort())
        yield page
    finally:
        context.close()


def demo_digest_html(db_path: Path, settings: Settings) -> str:
    """The HTML of the demo's first issue, with the unsubscribe link pointing at the site."""
    from policyfeed.digest.issues import get_issue_by_period, issue_posts, list_issues, plan_issue
    from policyfeed.digest.render import PREFERENCES_URL_TOKEN, UNSUBSCRIBE_URL_TOKEN, render_issue
    from policyfeed.schedule import next_period
    from policyfeed.store import open_db
    from policyfeed.store.posts import latest_published

    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "posts.db"
        shutil.copyfile(db_path, copy)
        db = open_db(copy)
        try:
            issues = list_issues(db)
            if issues:
                issue = issues[-1]
                posts = issue_posts(db, issue)
            else:
                newest = latest_published(db, now=_far_future(), limit=1)
                if not newest or newest[0].published_at is None:
                    raise PolicyfeedError(f"{db_path}: no published posts to show")
                when = next_period(settings.schedule, settings.tz, newest[0].published_at)
                planned = plan_issue(db, settings, now=when.scheduled_at, period=when.key)
                assert planned is not None and get_issue_by_period(db, when.key) is None
                issue, posts = planned
            digest = render_issue(issue, posts, settings)
        finally:
            db.conn.close()
    endpoint = html_lib.escape(settings.unsubscribe_endpoint)
    preferences = html_lib.escape(settings.app_endpoint("preferences/link"))
    return digest.html.replace(UNSUBSCRIBE_URL_TOKEN, endpoint).replace(
        PREFERENCES_URL_TOKEN, preferences
    )


def _far_future() -> Any:
    from datetime import UTC, datetime

    return datetime(9999, 1, 1, tzinfo=UTC)


def screenshot_html(html: str, width: int = 800, executable: Path = CHROMIUM) -> bytes:
    """A full-page PNG of ``html`` at ``width`` CSS pixels."""
    with chromium(executable) as browser, offline_page(browser, width) as page:
        page.set_content(html, wait_until="load")
        png: bytes = page.screenshot(full_page=True, type="png")
    return png


def write_digest_screenshot(
    out: Path, *, db_path: Path, config_path: Path | None, width: int = 800
) -> bool:
    """Render the demo digest and save its screenshot; True when the file changed."""
    from policyfeed.config import load_settings

    settings = load_settings(config_path)
    return write_if_changed(out, screenshot_html(demo_digest_html(db_path, settings), width))


def main(argv: list[str] | None = None) -> None:
    """Command-line glue for ``make docs``."""
    import click

    @click.command()
    @click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
    @click.option(
        "--db", "db_path", type=click.Path(exists=True, path_type=Path), default="posts.db"
    )
    @click.option("--config", "config_path", type=click.Path(path_type=Path))
    @click.option("--width", type=click.IntRange(min=200), default=800, show_default=True)
    def screenshot(out: Path, db_path: Path, config_path: Path | None, width: int) -> None:
        """Save a screenshot of the demo digest to OUT (PNG).

        Example:

        \b
            python -m policyfeed.digest.screenshot docs/digest.png
        """
        try:
            changed = write_digest_screenshot(
                out, db_path=db_path, config_path=config_path, width=width
            )
        except PolicyfeedError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"{'Wrote' if changed else 'Unchanged'} {out}")

    screenshot.main(args=argv, prog_name="python -m policyfeed.digest.screenshot")


if __name__ == "__main__":  # pragma: no cover
    main()
