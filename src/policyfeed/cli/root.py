"""The root command group and what every command shares: the :class:`App`, the lazy command
table, library errors turned into exit codes. Imported (with click) by any command, by a
command's help and by ``from policyfeed.cli import cli``; a bare ``policyfeed --help`` never
needs it (see :mod:`policyfeed.cli`).
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterator, MutableMapping
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from policyfeed import __version__
from policyfeed.cli.table import (
    COMMANDS,
    CONFIG_HELP,
    DB_HELP,
    DEFAULT_DB_NAME,
    ROOT_HELP,
    VERBOSE_HELP,
)
from policyfeed.errors import PolicyfeedError

if TYPE_CHECKING:
    import sqlite_utils

    from policyfeed.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A library error shown as ``Error: …`` with the exit code its class carries."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]


class App:
    """What every command needs: where the database and config are, loaded on first use."""

    def __init__(self, db_path: Path, config_path: Path | None, verbose: int) -> None:
        self.db_path = db_path
        self.config_path = config_path
        self.verbose = verbose
        self.overrides: dict[str, Any] = {}
        #: Only ``init`` makes a database; every other command refuses a path that has none.
        self.may_create_db = False

    @cached_property
    def settings(self) -> Settings:
        import os

        from policyfeed.config import load_settings, unknown_environment

        for warning in unknown_environment(os.environ):
            click.echo(f"Warning: {warning}", err=True)
        return load_settings(self.config_path, overrides=self.overrides)

    @cached_property
    def db(self) -> sqlite_utils.Database:
        from policyfeed.store import open_db

        if not self.may_create_db:
            self.require_db()
        db = open_db(self.db_path)
        self._adopt_base_url(db)
        return db

    def _adopt_base_url(self, db: sqlite_utils.Database) -> None:
        """Keep the stored links to the site's own pages relative to site.base_url (see
        policyfeed.content.relink): converted at the first open after an upgrade or a change
        of base URL. Skipped when the settings cannot be read (the command says why if it
        needs them) or the database cannot be written now (the next open converts)."""
        import logging
        import sqlite3

        from policyfeed.content.relink import adopt_base_url
        from policyfeed.errors import ConfigError

        try:
            base_url = self.settings.base_url
        except ConfigError:
            return
        try:
            done = adopt_base_url(db, base_url)
        except sqlite3.OperationalError:
            return
        if done is not None and done.posts:
            logging.getLogger("policyfeed").info(
                "links to %s in %d posts now stored relative to it", base_url, done.posts
            )

    def require_db(self) -> None:
        """Refuse a database path with no database: opening it would create an empty one, and
        every command would then report an empty site as the truth. An empty file is refused
        too: SQLite would silently make it a new database (``: > posts.db`` by mistake)."""
        from policyfeed.errors import NotFoundError

        if self.db_path.exists():
            if self.db_path.is_file() and self.db_path.stat().st_size == 0:
                raise NotFoundError(
                    f"{self.db_path}: the file is empty, not a policyfeed database. Check --db "
                    f"and POLICYFEED_DB; to start a new site in it: "
                    f"policyfeed --db {self.db_path} init"
                )
            return

        hint = _similar_database(self.db_path)
        init = (
            "policyfeed init"
            if self.db_path == DEFAULT_DB
            else f"policyfeed --db {self.db_path} init"
        )
        raise NotFoundError(
            f"{self.db_path}: no such database{f' (did you mean {hint}?)' if hint else ''}. "
            f"Check --db and POLICYFEED_DB, or create it with: {init}"
        )

    def check(self) -> None:
        """What a command checks before it does anything: the settings load (a bad key is
        reported before half a table is printed) and the database exists."""
        self.settings  # noqa: B018 - loading is the check
        self.require_db()

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    def local(self, moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A stored UTC time shown in the site's time zone."""
        return moment.astimezone(self.settings.tz).strftime(fmt) if moment else "-"


DEFAULT_DB = Path(DEFAULT_DB_NAME)
SQLITE_MAGIC = b"SQLite format 3\x00"


def _similar_database(path: Path) -> str:
    """The name of a database beside ``path`` whose name is close to it, or ""."""
    import difflib

    folder = path.parent
    try:
        names = [p.name for p in folder.iterdir() if p.is_file() and p.name != path.name]
    except OSError:
        return ""
    databases = []
    for name in names:
        try:
            with open(folder / name, "rb") as fh:
                if fh.read(16) == SQLITE_MAGIC:
                    databases.append(name)
        except OSError:
            continue
    found = difflib.get_close_matches(path.name, databases, n=1, cutoff=0.6)
    return str(folder / found[0]) if found else ""


_find_app = click.make_pass_decorator(App)


def pass_app(fn: F) -> F:
    """Pass the :class:`App` to a command after :meth:`App.check` (settings load, the database
    exists). A command that needs no database uses :func:`pass_app_unchecked` and checks what
    it needs itself."""

    @functools.wraps(fn)
    def checked(app: App, *args: Any, **kwargs: Any) -> Any:
        app.check()
        return fn(app, *args, **kwargs)

    return _find_app(checked)  # type: ignore[return-value]


#: Pass the App without checking anything (``init``, and ``publish``, which reports even these
#: errors as JSON with --json).
pass_app_unchecked = _find_app


def busy_database(exc: BaseException) -> PolicyfeedError | None:
    """SQLite's "database is locked" (another writer held it past busy_timeout) as the
    temporary failure it is (exit 75), or None for any other error."""
    import sqlite3

    from policyfeed.errors import BusyError

    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return BusyError(f"the database is busy ({text}); try again later")
    return None


EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process that SIGPIPE stopped


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands, each imported on first use: its modules register it (``@cli.command``)
    when they are imported. Looks like the dict click keeps, so nothing else needs to know."""

    def __init__(self, table: dict[str, tuple[tuple[str, ...], str]]) -> None:
        self._table = table
        self._loaded: dict[str, click.Command] = {}

    def loaded(self, name: str) -> click.Command | None:
        """The command if its modules were imported already (nothing is imported here)."""
        return self._loaded.get(name)

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded and name in self._table:
            for module in self._table[name][0]:
                importlib.import_module(f"policyfeed.cli.{module}")
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._table) | set(self._loaded)))

    def __len__(self) -> int:
        return len(set(self._table) | set(self._loaded))

    def __contains__(self, name: object) -> bool:
        return name in self._table or name in self._loaded


class PolicyfeedGroup(click.Group):
    """Turns library errors into ``Error: …`` and the right exit code; its commands load when
    they run (see :class:`LazyCommands`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of commands in ``--help``, from :data:`COMMANDS` for those not loaded (the
        same lines click makes from a command's help)."""
        assert isinstance(self.commands, LazyCommands)
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.loaded(name) or click.Command(name, help=COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PolicyfeedError as exc:
            raise CliError(str(exc), exc.exit_code) from exc
        except BrokenPipeError:
            # The reader closed the pipe (``| head``): say nothing, end like a Unix tool that
            # SIGPIPE stopped, and keep Python from complaining when it flushes at exit.
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            ctx.exit(EXIT_BROKEN_PIPE)
        except OSError as exc:  # a folder that cannot be written, a full disk: one line
            where = exc.filename or ""
            raise CliError(f"{where}: {exc.strerror or exc}" if where else str(exc), 1) from exc
        except Exception as exc:
            busy = busy_database(exc)
            if busy is None:
                raise
            raise CliError(str(busy), busy.exit_code) from exc


@click.group(cls=PolicyfeedGroup, help=ROOT_HELP)
@click.version_option(__version__, prog_name="policyfeed")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB_NAME,
    show_default=True,
    envvar="POLICYFEED_DB",
    help=DB_HELP,
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="POLICYFEED_CONFIG",
    help=CONFIG_HELP,
)
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@click.pass_context
def cli(ctx: click.Context, db_path: Path, config_path: Path | None, verbose: int) -> None:
    """Set up logging and the :class:`App` for the command that runs (the help is ROOT_HELP)."""
    import logging  # not for --help, which never gets here

    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = App(db_path, config_path, verbose)


def run() -> None:
    """Run the command line with click (:func:`policyfeed.cli.main` decides)."""
    try:
        cli.main(prog_name="policyfeed", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)


def echo_json(value: Any) -> None:
    import json

    click.echo(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False))
