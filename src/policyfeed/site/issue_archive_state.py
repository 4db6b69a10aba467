"""What the last build of the digest's web archive left, and whether the next build can trust it.

The state (kept in the database per output folder, :mod:`policyfeed.store.build_state`)
records where the post and issue journals stood (``post_journal``, ``issue_journal``), how many
posts each issue's web version showed (for the index, which then needs no posts), and which
issues the feeds of issues hold. It is trusted only for the same settings and templates and
the same database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from policyfeed.output import is_marked
from policyfeed.site.ownership import folder_key
from policyfeed.store import build_state
from policyfeed.store import issues as store
from policyfeed.store.site import journal_head, journal_post_at

if TYPE_CHECKING:
    from policyfeed.config import Settings

STATE_NAME = "archive"
#: The mark a build sets in the output before it changes the archive (output.BatchWriter.mark).
ARCHIVE_PART = "archive"
STATE_VERSION = 1
#: A file every archive build writes: when it is gone, so is the archive the state describes.
SENTINEL = "issues/index.html"
#: Bump when the layout of the archive changes, so that the next build is a full one.
LAYOUT_VERSION = "3"  # 2: drafts and discarded issues are not archived; 3: nor approved ones
ARCHIVE_TEMPLATES = (
    "archive/base.html",
    "archive/issue.html",
    "archive/index.html",
    "archive/entry.html",
    "site/_subscribe_box.html",
    "site/_signup_fields.html",
)
#: A journal position: (sequence number, the post or issue changed there).
Position = tuple[int, int | None]


@dataclass
class ArchiveState:
    """What a finished archive build wrote into an output folder, saved for the next build.

    ``posts`` and ``issues`` are journal positions: (sequence number, the post or issue changed
    there), which tells whether the saved state is from this database.
    """

    context: str
    posts: Position
    issues: Position
    counts: dict[int, int] = field(default_factory=dict)  # posts shown, by issue id
    feed: list[int] = field(default_factory=list)  # ids of the issues in the feeds, newest first

    def to_bytes(self) -> bytes:
        data = {
            "version": STATE_VERSION,
            "context": self.context,
            "posts": list(self.posts),
            "issues": list(self.issues),
            "counts": {str(k): self.counts[k] for k in sorted(self.counts)},
            "feed": self.feed,
        }
        return (json.dumps(data, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ArchiveState | None:
        """The saved state, or None when it is unreadable or from another version."""
        try:
            data: dict[str, Any] = json.loads(raw)
            if data.get("version") != STATE_VERSION:
                return None

            def position(value: Any) -> Position:
                return int(value[0]), None if value[1] is None else int(value[1])

            return cls(
                context=str(data["context"]),
                posts=position(data["posts"]),
                issues=position(data["issues"]),
                counts={int(k): int(v) for k, v in data["counts"].items()},
                feed=[int(i) for i in data["feed"]],
            )
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None


def archive_fingerprint(settings: Settings, extra: str = "") -> str:
    """Everything besides the issues and posts that shapes the archive (``extra``: the subscribe
    box): when it changes, build in full."""
    from policyfeed.templating import output_fingerprint

    return output_fingerprint(
        settings, layout=f"{LAYOUT_VERSION}\0{extra}", templates=ARCHIVE_TEMPLATES
    )


def journal_positions(db: Database) -> tuple[Position, Position]:
    posts = journal_head(db)
    issues = store.issue_journal_head(db)
    return (
        (posts, journal_post_at(db, posts) if posts else None),
        (issues, store.issue_journal_at(db, issues) if issues else None),
    )


def load_archive_state(
    db: Database,
    out_dir: Path,
    context: str,
    positions: tuple[Position, Position],
) -> ArchiveState | None:
    """The last build's state if it can be trusted for an incremental build, else None."""
    raw = build_state.read(db, folder_key(out_dir), STATE_NAME)
    if raw is None or not (out_dir / SENTINEL).is_file():
        return None
    if is_marked(out_dir, ARCHIVE_PART):  # the last build was killed while changing it
        return None
    state = ArchiveState.from_bytes(raw)
    if state is None or state.context != context:
        return None
    (posts_head, _), (issues_head, _) = positions
    if state.posts[0] > posts_head or state.issues[0] > issues_head:
        return None
    if state.posts[0] and journal_post_at(db, state.posts[0]) != state.posts[1]:
        return None  # another database, or one rebuilt since
    if state.issues[0] and store.issue_journal_at(db, state.issues[0]) != state.issues[1]:
        return None
    return state


def save_archive_state(db: Database, out_dir: Path, state: ArchiveState) -> bool:
    return build_state.write(db, folder_key(out_dir), STATE_NAME, state.to_bytes())
