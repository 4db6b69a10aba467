"""Shared by the bounce tests: a published issue, its deliveries, and returned mail about them.

The fixtures in tests/fixtures/bounces/ are templates; :func:`returned` fills one in with a real
delivery's return path, Message-ID and unsubscribe link, read back from the message the outbox
holds (what the mail system would have received).
"""

from __future__ import annotations

import email
import email.policy
import mailbox
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import sqlite_utils

from policyfeed.config import Settings
from policyfeed.delivery.outbox import OutboxTransport
from policyfeed.publish import PublishResult, publish

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bounces"
SECRET = "the bounce tests' own secret"
FORGED_TOKEN = "1.1.abcdefghijklm"


@dataclass(frozen=True)
class Sent:
    """One delivered message, as the outbox holds it."""

    email: str
    return_path: str
    message_id: str
    unsubscribe_url: str
    raw: bytes


def with_secret(settings: Settings, **changes: object) -> Settings:
    return replace(settings, secret=SECRET, **changes)  # type: ignore[arg-type]


def sent_messages(settings: Settings) -> dict[str, Sent]:
    """Recipient address → what the outbox holds for them."""
    found: dict[str, Sent] = {}
    for path in OutboxTransport(settings.outbox_dir).messages():
        raw = path.read_bytes()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        address = message["To"].addresses[0].addr_spec
        links = [link.strip(" <>") for link in str(message["List-Unsubscribe"]).split(",")]
        found[address] = Sent(
            address,
            str(message["Return-Path"]).strip("<> "),
            str(message["Message-ID"]).strip("<> "),
            links[0],
            raw,
        )
    return found


def publish_week(
    db: sqlite_utils.Database, settings: Settings, now: datetime, week: int = 0
) -> PublishResult:
    """Publish the issue of ``week`` weeks after ``now``; from week 1 on, a new post (with no
    topic: only members without a chapter get it) is waiting for it first."""
    moment = now + timedelta(days=7 * week)
    if week:
        stamp = (moment - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with db.conn:
            db.execute(
                "INSERT INTO posts (slug, title, body_html, status, published_at, updated_at, "
                "created_at) VALUES (?, ?, '<p>News.</p>', 'published', ?, ?, ?)",
                [f"week-{week}", f"News of week {week}", stamp, stamp, stamp],
            )
    for leftover in (settings.outbox_dir / "new").glob("*"):
        leftover.unlink()  # the outbox then holds this week's messages only
    result = publish(db, settings, now=moment)
    assert result.status == "sent", result.summary()
    return result


def returned(name: str, sent: Sent) -> bytes:
    """The fixture ``name`` about the delivery ``sent``."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for key, value in (
        ("RETURN_PATH", sent.return_path),
        ("RECIPIENT", sent.email),
        ("MESSAGE_ID", sent.message_id),
        ("UNSUBSCRIBE_URL", sent.unsubscribe_url),
        ("FORGED_TOKEN", FORGED_TOKEN),
        ("TOKEN", sent.unsubscribe_url.rsplit("t=", 1)[1]),
    ):
        text = text.replace("{{" + key + "}}", value)
    assert "{{" not in text, name
    return text.encode("utf-8")


def maildir_with(folder: Path, *messages: bytes) -> Path:
    """A Maildir holding ``messages`` in new/, as a delivery agent leaves them."""
    box = mailbox.Maildir(str(folder), create=True)
    for raw in messages:
        box.add(raw)
    return folder


def maildir_files(folder: Path) -> dict[str, list[bytes]]:
    """Subfolder ("" for the inbox) → the bytes of the messages in it."""
    found: dict[str, list[bytes]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.parent.name in ("new", "cur"):
            where = path.parent.parent.name if path.parent.parent != folder else ""
            found.setdefault(where.lstrip("."), []).append(path.read_bytes())
    return found


def subscriber_status(db: sqlite_utils.Database, address: str) -> str:
    row = db.execute("SELECT status FROM subscribers WHERE email = ?", [address]).fetchone()
    return str(row[0])
