"""``bounces process``: read a mailbox of returned mail, record what it says, move it aside.

For each message: read it (:func:`policyfeed.audience.reports.parse_report`), tie it to a
delivery by a signed token (:func:`policyfeed.audience.bounces.match_report`), record the bounce
or complaint (committed), and only then move the message into the processed folder (or the
unmatched one). A run stopped at any point loses nothing and records nothing twice: a message
still in the mailbox is recognised by its digest and only moved.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from policyfeed.audience.bounces import (
    HARD,
    SOFT,
    Verdict,
    classify,
    match_report,
    record_bounce,
    record_complaint,
    report_key,
)
from policyfeed.audience.reports import AUTOREPLY, BOUNCE, DSN, FEEDBACK, parse_report
from policyfeed.audience.tokens import read_token
from policyfeed.errors import EXIT_OK, EXIT_TEMPFAIL, TemporaryError
from policyfeed.store import bounces as store
from policyfeed.store import subscribers as subscriber_store
from policyfeed.store import transaction

if TYPE_CHECKING:
    from policyfeed.audience.mailboxes import Mailbox
    from policyfeed.config import Settings

log = logging.getLogger(__name__)

#: Outcomes of one message, and the folder each goes to.
OUTCOMES = ("hard", "soft", "complaint", "unsubscribe", "ignored", "unmatched", "already")
#: The subject of the ``mailto:`` unsubscribe in List-Unsubscribe (RFC 2369): "unsubscribe TOKEN".
_MAILTO_UNSUBSCRIBE = re.compile(r"\s*unsubscribe\s+([0-9]{1,12}\.[A-Za-z0-9_-]{8,40})\s*", re.I)
PROCESSED, UNMATCHED = "processed", "unmatched"


@dataclass(frozen=True)
class Decision:
    """What one message is and what recording it did (or, in a dry run, would do)."""

    outcome: str  # one of OUTCOMES
    detail: str
    email: str = ""
    issue: int | None = None
    status: str = ""
    suspended: bool = False
    unsubscribed: bool = False

    @property
    def folder(self) -> str:
        return UNMATCHED if self.outcome == "unmatched" else PROCESSED


@dataclass
class ProcessResult:
    """What one run did, for the operator (``summary``) and for scripts (``as_json``)."""

    source: str
    dry_run: bool = False
    messages: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    suspended: int = 0
    unsubscribed: int = 0
    events: list[Decision] = field(default_factory=list)
    #: Why the run stopped early (a temporary failure), if it did.
    stopped: str = ""

    @property
    def status(self) -> str:
        if self.stopped:
            return "partial"
        return "dry_run" if self.dry_run else "done"

    @property
    def exit_code(self) -> int:
        return EXIT_TEMPFAIL if self.stopped else EXIT_OK

    def add(self, decision: Decision) -> None:
        self.messages += 1
        self.counts[decision.outcome] += 1
        self.suspended += decision.suspended
        self.unsubscribed += decision.unsubscribed
        self.events.append(decision)

    def summary(self) -> str:
        head = f"{self.status}: {self.messages} message(s) from {self.source}"
        if not self.messages:
            return f"{head}: " + (f"stopped: {self.stopped}" if self.stopped else "nothing to do")
        c = self.counts
        parts = [
            f"{c['hard']} hard bounce(s)",
            f"{c['soft']} soft",
            f"{c['complaint']} complaint(s)",
            f"{c['unsubscribe']} unsubscribe request(s)",
            f"{c['ignored']} ignored",
            f"{c['unmatched']} unmatched",
        ]
        if c["already"]:
            parts.append(f"{c['already']} recorded before")
        verb = "would be" if self.dry_run else "were"
        tail = (
            f"; {self.suspended} member(s) {verb} suspended (bounced), "
            f"{self.unsubscribed} unsubscribed"
        )
        if self.dry_run:
            tail += "; nothing recorded, nothing moved"
        if self.stopped:
            tail += f"; stopped early: {self.stopped}"
        return f"{head}: {', '.join(parts)}{tail}"

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "source": self.source,
            "messages": self.messages,
            **self.counts,
            "suspended": self.suspended,
            "unsubscribed": self.unsubscribed,
            "events": [asdict(e) | {"folder": e.folder} for e in self.events],
            "message": self.stopped,
        }


def decide(
    db: Database,
    settings: Settings,
    secret: str,
    raw: bytes,
    *,
    source: str,
    now: datetime,
    dry_run: bool = False,
) -> Decision:
    """Read one returned message and record what it says (unless ``dry_run``)."""
    key = report_key(raw)
    if store.is_recorded(db, key):
        return Decision("already", "recorded by an earlier run")
    report = parse_report(raw)
    if report.kind == AUTOREPLY:
        return Decision("ignored", f"{report.note}: {report.subject[:80]}")
    if report.kind == FEEDBACK and not report.is_complaint:
        return Decision("ignored", f"{report.note}: not a complaint")
    verdict: Verdict | None = None
    diagnostic = ""
    if report.kind in (DSN, BOUNCE):
        failed = report.failed
        if not failed:
            actions = ", ".join(sorted({r.action or "none" for r in report.recipients}))
            return Decision("ignored", f"{report.note} without a failure ({actions or 'empty'})")
        first = failed[0]
        diagnostic = first.diagnostic or first.status
        verdict = classify(first.status, first.diagnostic) or Verdict(
            SOFT, first.status, "a failure that does not say why"
        )
    elif report.kind != FEEDBACK:
        asked = _MAILTO_UNSUBSCRIBE.fullmatch(report.subject)
        if asked:
            return _mailto_unsubscribe(db, settings, secret, asked.group(1), now, dry_run)
        return Decision("unmatched", report.note)

    match = match_report(db, settings, secret, report)
    if match is None:
        return Decision("unmatched", f"{report.note}: names none of our deliveries")
    subscriber = subscriber_store.subscriber_by_id(db, match.subscriber_id)
    email = subscriber.email if subscriber else ""
    issue = _issue_number(db, match.delivery.issue_id) if match.delivery else None
    if report.is_complaint:
        decision = Decision(
            "complaint", f"{report.feedback_type} report from {report.reporter}"[:200], email, issue
        )
        if dry_run:
            return decision
        outcome = record_complaint(
            db,
            subscriber_id=match.subscriber_id,
            delivery=match.delivery,
            feedback_type=report.feedback_type,
            reporter=report.reporter,
            source="mailbox",
            source_key=key,
            now=now,
        )
        return Decision(
            "complaint" if outcome.recorded else "already",
            decision.detail,
            email,
            issue,
            unsubscribed=outcome.unsubscribed,
        )
    assert verdict is not None
    detail = f"{verdict.reason}: {diagnostic}"[:300]
    if dry_run:
        would = verdict.kind == HARD and subscriber is not None and subscriber.status == "active"
        return Decision(verdict.kind, detail, email, issue, verdict.status, suspended=would)
    outcome = record_bounce(
        db,
        subscriber_id=match.subscriber_id,
        delivery=match.delivery,
        verdict=verdict,
        diagnostic=diagnostic,
        source="mailbox",
        source_key=key,
        now=now,
        soft_limit=settings.bounces_soft_limit,
    )
    if not outcome.recorded:
        return Decision("already", "recorded by an earlier run", email, issue)
    if verdict.kind == SOFT:
        detail += f" ({outcome.streak} in a row, {settings.bounces_soft_limit} suspend)"
    return Decision(verdict.kind, detail, email, issue, verdict.status, suspended=outcome.suspended)


def _mailto_unsubscribe(
    db: Database, settings: Settings, secret: str, token: str, now: datetime, dry_run: bool
) -> Decision:
    """A member's unsubscribe by mail (the List-Unsubscribe ``mailto:``): their token names
    them, as the one-click link's does."""
    member = read_token(secret, token, settings.list_identifier)
    subscriber = subscriber_store.subscriber_by_id(db, member) if member is not None else None
    if subscriber is None:
        return Decision("unmatched", "an unsubscribe request whose token names nobody")
    changed = subscriber.status != "unsubscribed"
    if changed and not dry_run:
        with transaction(db):
            changed = subscriber_store.unsubscribe(db, subscriber.id or 0, now=now)
    detail = "asked by mail (List-Unsubscribe mailto)"
    return Decision("unsubscribe", detail, subscriber.email, unsubscribed=changed)


def _issue_number(db: Database, issue_id: int) -> int | None:
    row = db.execute("SELECT number FROM issues WHERE id = ?", [issue_id]).fetchone()
    return int(row[0]) if row else None


def process_mailbox(
    db: Database,
    settings: Settings,
    mailbox: Mailbox,
    *,
    secret: str,
    now: datetime,
    dry_run: bool = False,
    progress: Callable[[Decision], None] | None = None,
) -> ProcessResult:
    """Read every message of ``mailbox``: record it, then move it aside (see the module)."""
    result = ProcessResult(mailbox.description, dry_run=dry_run)
    folders = {
        PROCESSED: settings.bounces_processed_folder,
        UNMATCHED: settings.bounces_unmatched_folder,
    }
    try:
        for item in mailbox.messages():
            decision = decide(
                db, settings, secret, item.raw, source=mailbox.description, now=now,
                dry_run=dry_run,
            )  # fmt: skip
            log.info("%s: %s (%s)", item.key, decision.outcome, decision.detail)
            if not dry_run:
                mailbox.move(item, folders[decision.folder])
            result.add(decision)
            if progress is not None:
                progress(decision)
        mailbox.close()
    except TemporaryError as exc:
        _close_quietly(mailbox)
        if not result.messages:
            # Nothing was read (the server could not be reached, the mbox is locked): a failure
            # to report as such, not a "partial" run of no messages.
            raise
        result.stopped = str(exc)
    except BaseException:
        _close_quietly(mailbox)
        raise
    return result


def _close_quietly(mailbox: Mailbox) -> None:
    try:
        mailbox.close()
    except Exception as exc:  # the first error is the one to report
        log.warning("closing %s: %s", mailbox.description, exc)
