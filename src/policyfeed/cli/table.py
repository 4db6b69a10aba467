"""The root group as plain data: its help, its options' help and the table of its commands.

Both :mod:`policyfeed.cli.root` (the click group) and :mod:`policyfeed.cli.quickhelp` (its
``--help`` without click) are made from these, so they cannot say different things; this module
imports nothing, so that a bare ``policyfeed --help`` stays as fast as Python's start.
"""

from __future__ import annotations

#: The root group's help (``policyfeed --help``), already as click cleans a docstring.
ROOT_HELP = """\
Publish a policy blog from one SQLite file: RSS, Atom and JSON feeds, a static archive,
and HTML email digests for chapter members.

\b
Exit codes: 0 done (also "nothing new" / "already sent"), 1 error, 2 usage,
75 temporary failure (busy, relay down, partly sent: safe to re-run).

Example:

\b
    policyfeed init
    policyfeed posts add --title "WCIT: what is at stake" --body-file wcit.md --publish
    policyfeed build
    policyfeed publish"""

#: The help of the root group's own options.
DB_HELP = "SQLite database file (env POLICYFEED_DB)."
CONFIG_HELP = "Site configuration (env POLICYFEED_CONFIG; default ./policyfeed.toml if present)."
VERBOSE_HELP = "More log output on stderr (-vv for debug)."
DEFAULT_DB_NAME = "posts.db"

#: Each top-level command: the modules that define it and its subcommands (the first one
#: defines the command), and the first paragraph of its help as ``policyfeed --help`` shows it
#: (tests/test_layout.py checks both against the commands once loaded).
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "bounces": (
        ("bounces",),
        "Bounces and complaints: read the bounce mailbox, see what came back.",
    ),
    "build": (
        ("build",),
        "Write the feeds (RSS, Atom, JSON Feed), archive pages, OPML and the static pages.",
    ),
    "chapters": (
        ("subscribers",),
        "Chapters: groups of subscribers, each with its own variant of every issue.",
    ),
    "check": (
        ("check",),
        "Check what would go out: the feeds and pages the build wrote, each variant of an issue "
        "as the message a member gets, the templates' accessibility, and the settings mail needs.",
    ),
    "dkim": (("dkim",), "DKIM signing: make a key pair, show the DNS record to publish."),
    "init": (
        ("site",),
        "Create the database and a policyfeed.toml (an existing config is kept).",
    ),
    "issue": (
        ("issues", "editing", "deliveries", "sendtest"),
        "Create, list, show, preview and render the digest's issues.",
    ),
    "posts": (("posts",), "Write, import, list, search and publish posts."),
    "publish": (
        ("publish",),
        "Make and deliver the issue of the current period; safe to run any number of times.",
    ),
    "serve": (
        ("serve",),
        "Serve the built site: pages, feeds (with their media types, ETag, Last-Modified and "
        "gzip), the unsubscribe endpoint, /healthz and the editors' preview of the digest at "
        "/preview/. Ctrl+C stops it.",
    ),
    "sources": (
        ("sources",),
        "Sync posts from the feeds of the blogs you already have ([[sources]] in the config).",
    ),
    "subscribers": (
        ("subscribers",),
        "Subscribers: add, import, list, choose their topics, unsubscribe, remove, forget, "
        "export one member's data.",
    ),
    "topics": (
        ("topics",),
        "Topics: list them, or add one with the slug you choose (posts name topics by name).",
    ),
}
