"""``publish``: the one command a scheduler runs. Safe to run any number of times.

One run: period → issue → render each variant members get once (a chapter's, or a chapter's
with the topics members chose: :mod:`policyfeed.digest.variants`) → site, feeds and archive →
deliver, and a :class:`PublishResult` that says truthfully what happened. The caller holds the
run lock (:mod:`policyfeed.lock`) around it.

- The issue of the period exists and every delivery is settled: nothing to do (``already_sent``).
- It exists and is not fully delivered: delivery resumes (``resumed``).
- No issue yet: one is made from the posts waiting to go out (``sent``), or, when none is
  waiting, nothing at all happens (``nothing_new``).
- Some messages could not be handed over for now: ``partial`` (exit 75, re-run later).
- The relay cannot be used as configured (certificate, STARTTLS, login, sender):
  ``relay_error`` (exit 1, the relay's complaint in ``message``).
- Everything is settled but hand-offs an interrupted run left unsure over SMTP: ``ambiguous``
  (exit 1, the rows named); they never hold up the other rows, which are settled first.

Approval (``digest.approval = "required"``): the issue is made as a draft, its copy for approval
goes once to ``site.editor_email``, and the run delivers nothing (``awaiting_approval``, exit 0;
``approval_overdue``, exit 1, once the draft has waited longer than ``max_lateness``). After
``policyfeed issue approve N`` the next run delivers it, whatever period it was made for (the
oldest approved issue first; a period still to come waits for its time, a special issue for its
``--period``), and its lateness counts from the approval. A period whose issue an editor
discarded gets nothing (``discarded``).

Lateness: a run never mails an *old* issue by surprise. Resuming an issue whose mailing began
(or which was made) more than ``max_lateness`` ago, or publishing an explicit ``--period``
scheduled longer ago than that, is refused unless ``force``; a run killed a minute ago is picked
up as usual. A new issue for the schedule's current period is not late: it carries the posts
waiting now, whatever day the run happens on (a machine that was off at the scheduled time
catches up at boot, with fresh content).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from policyfeed.audience.bounces import record_refusal
from policyfeed.audience.subscribers import unsubscribe_secret
from policyfeed.audience.verp import return_paths
from policyfeed.delivery.dkim import make_signer
from policyfeed.delivery.ledger import (
    DeliveryLedger,
    DeliveryReport,
    FrozenRow,
    FrozenVariant,
    Progress,
    make_transport,
)
from policyfeed.digest.issues import (
    approve_for_sending,
    approved_issues,
    discarded_issue,
    drafts,
    get_issue_by_period,
    issue_posts,
    mark_issue_status,
    mark_review_sent,
    plan_issue,
)
from policyfeed.digest.mail import (
    MessageTemplate,
    Personaliser,
    Recipient,
    build_template,
    message_ids,
)
from policyfeed.digest.variants import (
    IssueVariants,
    Rendering,
    Variant,
    distinct_renderings,
    variant_order,
)
from policyfeed.errors import EXIT_ERROR, EXIT_OK, EXIT_TEMPFAIL, UsageError
from policyfeed.model import Issue
from policyfeed.schedule import (
    PERIOD_SPELLING,
    Period,
    check_lateness,
    check_not_future,
    current_period,
    looks_like_a_time,
    period_from_key,
    read_period,
    typed_period,
)
from policyfeed.store import subscribers as subscriber_store
from policyfeed.store.readonly import read_only
from policyfeed.wording import counted

if TYPE_CHECKING:
    from policyfeed.check.report import Report
    from policyfeed.config import Settings
    from policyfeed.delivery.transport import SendRefused, Transport
    from policyfeed.model import Delivery, Post, Subscriber
    from policyfeed.site.build import BuildResult

log = logging.getLogger(__name__)

STATUS_EXIT = {
    "already_sent": EXIT_OK,
    "nothing_new": EXIT_OK,
    "no_recipients": EXIT_OK,  # posts wait for members; a person should look (warning)
    "dry_run": EXIT_OK,
    "sent": EXIT_OK,
    "resumed": EXIT_OK,
    "partial": EXIT_TEMPFAIL,  # some messages wait for a later run: safe to re-run
    "ambiguous": EXIT_ERROR,  # only unsure SMTP hand-offs are left: an operator decides
    "relay_error": EXIT_ERROR,  # the relay cannot be used as configured: a person fixes it
    "refused": EXIT_ERROR,  # the preflight check found errors: nothing was sent
    "awaiting_approval": EXIT_OK,  # a draft waits for an editor: nothing to do until then
    "approval_overdue": EXIT_ERROR,  # it has waited longer than max_lateness: tell a person
    "discarded": EXIT_OK,  # an editor threw the period's issue away
    "sync_deferred": EXIT_TEMPFAIL,  # a source was unreachable: no issue yet, re-run later
    "sync_error": EXIT_ERROR,  # a source is broken: no issue until a person looks
}
#: Unsure rows named in a run's message (all of them are in ``unsure`` and the ledger).
NAMED_UNSURE = 5


@dataclass
class VariantReport:
    """One variant of the issue: a chapter's (or the whole issue, chapter None), with the
    topics its members chose (None: the chapter's filter)."""

    chapter: str | None
    posts: int
    recipients: int
    bytes: int
    topics: list[str] | None = None

    @property
    def name(self) -> str:
        chosen = f" (topics {', '.join(self.topics)})" if self.topics is not None else ""
        return (self.chapter or "all") + chosen


@dataclass
class PublishResult:
    """What a run did. ``sent``, ``failed``, ``skipped`` and ``resolved`` (rows an interrupted
    run left ``sending`` that this run found delivered) count this run's work; ``ledger`` holds
    the issue's deliveries per status afterwards, and ``recipients``, ``pending`` (waiting for a
    later run) and ``ambiguous`` (unsure, ``sending``) come from it; ``unsure`` names those."""

    status: str
    period: str
    issue: int | None = None
    posts: int = 0
    recipients: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    resolved: int = 0
    pending: int = 0
    ambiguous: int = 0
    #: Members suspended (bounced) because the relay refused their address for good.
    bounced: int = 0
    duration: float = 0.0
    #: Of ``duration``, the seconds spent on the members: planning and writing their ledger
    #: rows, composing and handing over their messages.
    delivery_duration: float = 0.0
    subject: str = ""
    message: str = ""
    unsure: list[dict[str, Any]] = field(default_factory=list)
    ledger: dict[str, int] = field(default_factory=dict)
    variants: list[VariantReport] = field(default_factory=list)
    site_files: int = 0
    warnings: list[str] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)  # the preflight report (check.Report)
    #: What syncing the sources first did (``digest.sync_before_publish``), one dict a source.
    synced: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return STATUS_EXIT[self.status]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration"] = round(self.duration, 3)
        data["delivery_duration"] = round(self.delivery_duration, 3)
        return data

    def summary(self) -> str:
        """One line for a log or a terminal. Its counts are the issue's (they add up to the
        recipients); what this run did is added when it is not all of it."""
        what = f"issue {self.issue}" if self.issue else "no issue"
        head = f"{self.status}: {what}, period {self.period}"
        if self.status == "nothing_new":
            return f"{head}: no post is waiting; nothing written, nothing sent"
        if self.status in ("sync_deferred", "sync_error"):
            return (
                f"{head}: a source could not be synced, and an issue made now would miss its "
                f"new posts; none made, nothing sent ({self.message})"
            )
        if self.status == "no_recipients":
            return (
                f"{head}: {counted(self.posts, 'post')} waiting, but no active subscriber "
                "would receive an issue; none made, nothing sent"
            )
        if self.status == "already_sent":
            return (
                f"{head}: already delivered to {counted(self.recipients, 'recipient')}; "
                "nothing to do"
            )
        if self.status == "refused":
            return f"{head}: {self.message}; nothing sent"
        if self.status in ("awaiting_approval", "approval_overdue", "discarded"):
            return f"{head}: {self.message}"
        if self.status == "dry_run":
            sizes = ", ".join(
                f"{v.name} {counted(v.posts, 'post')}/{v.recipients} to/{counted(v.bytes, 'byte')}"
                for v in self.variants
            )
            counts = (
                f"{counted(self.posts, 'post')}, {counted(self.recipients, 'recipient')} "
                f"({sizes}); nothing written"
            )
        else:
            posts, recipients = counted(self.posts, "post"), counted(self.recipients, "recipient")
            counts = f"{posts}, {recipients}: " + _counts(
                self.ledger.get("sent", 0),
                self.ledger.get("failed", 0),
                self.ledger.get("skipped", 0),
                self.pending,
                self.ambiguous,
            )
            ran = (self.sent, self.failed, self.skipped)
            whole = tuple(self.ledger.get(k, 0) for k in ("sent", "failed", "skipped"))
            if ran != whole or self.resolved:
                counts += f" (this run: {_counts(*ran)}"
                counts += f", {self.resolved} found delivered)" if self.resolved else ")"
            if self.bounced:
                counts += f", {counted(self.bounced, 'member')} suspended (hard bounce)"
        tail = f" ({self.message})" if self.message else ""
        return f"{head}: {counts} in {self.duration:.1f} s{tail}"


def _counts(sent: int, failed: int, skipped: int, waiting: int = 0, unsure: int = 0) -> str:
    text = f"{sent} sent, {failed} failed, {skipped} skipped"
    if waiting:
        text += f", {waiting} waiting"
    if unsure:
        text += f", {unsure} unsure"
    return text


def _variants(db: Database, posts: Sequence[Post]) -> IssueVariants:
    """The variants of these posts for the chapters as they are now."""
    return IssueVariants(posts, subscriber_store.list_chapters(db))


def _needed_variants(db: Database, variants: IssueVariants) -> dict[Variant, int]:
    """The variant of each active member (their chapter's, or their chapter's with the topics
    they chose) with posts, and how many members get it; read member by member, never a list of
    them all."""
    needed: dict[Variant, int] = {}
    for _, chapter_id, topics in subscriber_store.iter_active_recipients(db):
        variant = variants.of(chapter_id, topics)  # made once per (chapter, topics) and kept
        if variant.posts:
            needed[variant] = needed.get(variant, 0) + 1
    return needed


def _planned_rows(
    db: Database,
    settings: Settings,
    issue: Issue,
    variants: IssueVariants,
    rendered: Collection[Rendering],
    skipped: list[int],
) -> Iterator[FrozenRow]:
    """A row for each active member with the variant they get frozen in it, or skipped when
    that leaves no post (counted in ``skipped[0]``), one member at a time. A member whose
    variant was not rendered by this run (they joined or chose topics while it rendered) waits
    for the next issue, as every member who joins once delivery has begun does."""
    message_id_of = message_ids(
        settings, period=issue.period, issue_number=issue.number, made=issue.created_at
    )
    # Per variant, not per member: whether this run rendered it, and what its rows freeze.
    frozen_of: dict[Variant, FrozenVariant | None] = {}  # a Variant hashes by identity
    for subscriber_id, chapter_id, topics in subscriber_store.iter_active_recipients(db):
        variant = variants.of(chapter_id, topics)
        message_id = message_id_of(subscriber_id)
        if variant.posts:
            if variant not in frozen_of:
                frozen_of[variant] = (
                    FrozenVariant(variant.key[0], variant.topics, variant.post_ids)
                    if variant.rendering in rendered
                    else None
                )
            frozen = frozen_of[variant]
            if frozen is None:
                log.info("subscriber %s joined as the issue rendered: next issue", subscriber_id)
                continue
            yield FrozenRow(subscriber_id, chapter_id, message_id, variant=frozen)
        else:
            skipped[0] += 1
            reason = variant.nothing_reason()
            yield FrozenRow(subscriber_id, chapter_id, message_id, "skipped", reason)


class _RowVariants:
    """The variant of each delivery row: the one frozen with it when delivery began, or, for a
    row frozen before variants were recorded, its chapter's as the chapter is now."""

    def __init__(self, variants: IssueVariants, frozen: dict[int, FrozenVariant]) -> None:
        self.variants = variants
        self.frozen = frozen

    def __call__(self, row: Delivery) -> Variant:
        return self.of(row.variant_id, row.chapter_id)

    def of(self, variant_id: int | None, chapter_id: int | None) -> Variant:
        frozen = self.frozen.get(variant_id) if variant_id is not None else None
        if frozen is None:
            return self.variants.of(chapter_id, None)
        return self.variants.frozen(frozen.chapter_id, frozen.topics, frozen.post_ids)


def _unsettled_variants(ledger: DeliveryLedger, row_variant: _RowVariants) -> list[Variant]:
    """The variants of the rows still to deliver (one per distinct variant, not per row)."""
    return [
        row_variant.of(variant_id, chapter_id)
        for variant_id, chapter_id in ledger.unsettled_variants()
    ]


def _has_recipients(db: Database) -> bool:
    """Whether any subscriber is active (a chapter whose topics leave it nothing this time
    still counts: that is the chapter's choice, recorded as skipped)."""
    return bool(subscriber_store.active_subscriber_ids(db))


def _render(
    issue: Issue, variant: Variant, settings: Settings, *, now: datetime
) -> tuple[MessageTemplate, tuple[str, ...]]:
    """Render and inline one variant, once, and build its message template."""
    from policyfeed.digest.render import MESSAGE_PLACEHOLDERS, render_issue

    digest = render_issue(
        issue, list(variant.posts), settings, chapter=variant.chapter, whole_issue=variant.whole
    )
    template = build_template(
        digest,
        settings,
        issue_number=issue.number,
        variant=variant.label or "",
        now=now,
        placeholders=MESSAGE_PLACEHOLDERS,
    )
    return template, digest.warnings


def _render_variants(
    issue: Issue, shown: Sequence[Variant], settings: Settings, *, now: datetime
) -> tuple[dict[Rendering, MessageTemplate], list[str]]:
    """The template of each of these variants (one per distinct message, see
    :func:`policyfeed.digest.variants.distinct_renderings`), rendered once each; and the
    renderer's warnings."""
    templates: dict[Rendering, MessageTemplate] = {}
    warnings: list[str] = []
    for variant in shown:
        templates[variant.rendering], notes = _render(issue, variant, settings, now=now)
        warnings.extend(notes)
    return templates, warnings


def _resolve_period(
    db: Database, settings: Settings, now: datetime, text: str | None
) -> tuple[Period | None, str, bool]:
    """(the period as a time, None for a special issue; its key; whether it is explicit, i.e.
    ``--period`` named a period other than the schedule's current one).

    ``--period`` takes a time of the schedule (not a future one), the key of an issue that
    exists or was discarded (a time from an earlier schedule, or a special issue's name), and
    nothing else.
    """
    current = current_period(settings.schedule, settings.tz, now)
    if text is None:
        return current, current.key, False
    if not looks_like_a_time(text):
        name = text.strip()
        if get_issue_by_period(db, name) is None and discarded_issue(db, name) is None:
            raise UsageError(
                f"{text!r} is not a period, nor the name of a special issue; give "
                f"{PERIOD_SPELLING} (the latest is {current.key})",
                source="--period",
            )
        return None, name, True
    typed = typed_period(text, settings.tz)
    if isinstance(typed, Period) and (
        get_issue_by_period(db, typed.key) is not None or discarded_issue(db, typed.key) is not None
    ):
        period = typed  # an issue made for it already, perhaps under an earlier schedule
    else:
        period = read_period(text, settings.schedule, settings.tz)
    check_not_future(period, now)
    return period, period.key, period.key != current.key


def publish(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    period: str | None = None,
    dry_run: bool = False,
    max_lateness: timedelta | None = None,
    force: bool = False,
    resend_ambiguous: bool = False,
    transport: Transport | None = None,
    progress: Progress | None = None,
    clock: Callable[[], datetime] | None = None,
    timer: Callable[[], float] = time.monotonic,
) -> PublishResult:
    """Publish the issue of the period (the schedule's for ``now``, or ``period``).

    ``transport`` defaults to the configured one (the outbox without an SMTP relay). ``clock``
    stamps ledger changes (default: ``now`` for all of them). The caller holds the run lock.
    """
    started = timer()
    clock = clock or (lambda: now)
    lateness = settings.max_lateness_delta if max_lateness is None else max_lateness
    scheduled, key, explicit = _resolve_period(db, settings, now, period)
    _check_output_folder(db, settings)
    _check_base_url(settings)
    synced = _sync_first(db, settings, now=now, key=key, dry_run=dry_run)
    if synced is not None and synced.stop is not None:
        synced.stop.duration = timer() - started
        return synced.stop
    if not dry_run:
        _sign_up_messages(db, settings, now=now, clock=clock, transport=transport)
    with read_only(db) if dry_run else contextlib.nullcontext():
        result = _publish(
            db,
            settings,
            now=now,
            key=key,
            scheduled=scheduled,
            explicit=explicit,
            dry_run=dry_run,
            lateness=lateness,
            force=force,
            resend_ambiguous=resend_ambiguous,
            transport=transport,
            progress=progress,
            clock=clock,
        )
    if synced is not None:
        result.synced = synced.reports
        result.warnings.extend(synced.warnings)
    result.duration = timer() - started
    return result


@dataclass
class _Synced:
    reports: list[dict[str, Any]]
    warnings: list[str]
    stop: PublishResult | None = None


def _sync_first(
    db: Database, settings: Settings, *, now: datetime, key: str, dry_run: bool
) -> _Synced | None:
    """``digest.sync_before_publish``: sync every source before the issue is made, so that it
    takes what they published since. A source that fails stops the run before an issue is
    made (an issue made now would miss its posts for good): ``sync_deferred`` (exit 75) when
    only temporary failures happened, ``sync_error`` (exit 1) otherwise. An issue that exists
    already (delivery to resume, or sent) does not wait for the sources."""
    if not settings.sync_before_publish or not settings.sources:
        return None
    if dry_run:
        note = "sources not synced (a dry run writes nothing): a real run takes their new posts too"
        return _Synced([], [note])
    from policyfeed.content.sync import sync_sources

    result = sync_sources(db, settings, now=now)
    reports = [report.as_json() for report in result.reports]
    failures = [report.line() for report in result.failed]
    for line in failures:
        log.warning("source not synced: %s", line)
    if not failures:
        return _Synced(reports, [])
    if get_issue_by_period(db, key) is not None:
        return _Synced(reports, [f"source not synced: {line}" for line in failures])
    status = "sync_deferred" if result.exit_code == EXIT_TEMPFAIL else "sync_error"
    stop = PublishResult(status, key, message="; ".join(failures), synced=reports)
    return _Synced(reports, [], stop)


def _publish(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    key: str,
    scheduled: Period | None,
    explicit: bool,
    dry_run: bool,
    lateness: timedelta,
    force: bool,
    resend_ambiguous: bool,
    transport: Transport | None,
    progress: Progress | None,
    clock: Callable[[], datetime],
) -> PublishResult:
    # A missing or broken DKIM key stops the run before anything is written (a dry run too).
    signer = make_signer(settings)
    issue = get_issue_by_period(db, key)
    if not explicit:
        issue = _approved_first(db, settings, issue, now) or issue
        key = issue.period if issue is not None else key
    if issue is not None and issue.status == "draft" and settings.approval == "required":
        return _await_approval(
            db, settings, issue, now=now, lateness=lateness, dry_run=dry_run, transport=transport
        )
    if issue is not None:
        ledger = DeliveryLedger(db, issue.id or 0, clock=clock)
        posts = issue_posts(db, issue)
        counts = ledger.counts()
        if issue.status == "sent":
            return PublishResult(
                "already_sent",
                key,
                issue.number,
                posts=len(posts),
                recipients=sum(counts.values()),
                subject=issue.subject,
                ledger=counts,
            )
        # Late is measured from when this issue's mailing began (or it was approved, or made):
        # a crashed run picked up minutes later goes on; one picked up days later does not.
        began = ledger.started_at or issue.approved_at or issue.created_at
        check_lateness(
            f"issue {issue.number} (period {key}) began going out", began, now, lateness,
            force=force,
        )  # fmt: skip
        resuming = ledger.started
        secret = "" if dry_run else unsubscribe_secret(settings)
    else:
        discarded = discarded_issue(db, key)
        if discarded is not None:
            return PublishResult(
                "discarded", key, discarded.number, subject=discarded.subject,
                message="an editor discarded this period's issue; nothing made or sent (make "
                "another with `policyfeed issue new`)",
            )  # fmt: skip
        if explicit and scheduled is not None:
            check_lateness(
                f"period {key} was scheduled", scheduled.scheduled_at, now, lateness, force=force
            )
        planned = plan_issue(db, settings, now=now, period=key)
        if planned is None:
            return PublishResult("nothing_new", key)
        if not _has_recipients(db):
            # An issue nobody receives would use the posts up: members who join later would
            # never get them. Make none; the posts wait.
            warning = (
                "no active subscriber would receive the issue: "
                f"{counted(len(planned[1]), 'post')} "
                f"{'keeps' if len(planned[1]) == 1 else 'keep'} waiting for the next run"
            )
            log.warning("%s", warning)
            return PublishResult("no_recipients", key, posts=len(planned[1]), warnings=[warning])
        if dry_run:
            issue, posts = planned
            result = _dry_run(db, settings, issue, posts, now=now, rows=None)
            if settings.approval == "required":
                result.message = (
                    f"approval required: a real run makes issue {issue.number} a draft, sends "
                    f"its copy for approval to {settings.editor_email} and delivers nothing "
                    f"until `policyfeed issue approve {issue.number}`"
                )
            return result
        secret = unsubscribe_secret(settings)  # refuse a missing secret before writing anything
        from policyfeed.digest.issues import create_issue

        issue = create_issue(db, settings, period=key, now=now)
        if issue is None:
            return PublishResult("nothing_new", key)
        log.info("created issue %s for period %s", issue.number, key)
        if settings.approval == "required":
            return _await_approval(
                db, settings, issue, now=now, lateness=lateness, dry_run=False,
                transport=transport,
            )  # fmt: skip
        posts = issue_posts(db, issue)
        ledger = DeliveryLedger(db, issue.id or 0, clock=clock)
        resuming = False

    if dry_run:
        if resuming:
            rows, frozen = ledger.rows(), ledger.variants()
            return _dry_run(db, settings, issue, posts, now=now, rows=rows, frozen=frozen)
        return _dry_run(db, settings, issue, posts, now=now, rows=None)

    variants = _variants(db, posts)
    planning = time.perf_counter()
    if resuming:  # each row keeps the variant frozen with it when delivery began
        row_variant = _RowVariants(variants, ledger.variants())
        needed: Iterable[Variant] = _unsettled_variants(ledger, row_variant)
    else:
        needed = _needed_variants(db, variants)
    spent = time.perf_counter() - planning

    # Render what this run will send, before anything else is written: a digest too large to
    # send stops the run with the issue still undelivered and no ledger rows. Once per
    # distinct message, never per recipient.
    shown = distinct_renderings(needed)
    templates, warnings = _render_variants(issue, shown, settings, now=now)
    for warning in warnings:
        log.warning("%s", warning)

    built = _build_site(db, settings, now)
    site_files = len(built.written)
    check = _preflight(db, settings, issue, posts, shown, templates, now=now, built=built)
    if check.errors:  # before the ledger is frozen: a fixed template next run sends as usual;
        # the issue stays as it was (a draft, or approved by an editor), not on the web
        return PublishResult(
            "refused", key, issue.number, posts=len(posts), subject=issue.subject,
            message=check.summary(), site_files=site_files, warnings=warnings,
            check=check.as_json(),
        )  # fmt: skip

    delivering = time.perf_counter()
    skipped_early = 0
    if not resuming:
        skipped = [0]
        rendered = {variant.rendering for variant in shown}
        ledger.freeze(_planned_rows(db, settings, issue, variants, rendered, skipped))
        skipped_early = skipped[0]
        row_variant = _RowVariants(variants, ledger.variants())
    else:  # the posts frozen for a row were removed since (or, for a row frozen before
        # variants were recorded, its chapter's topics now leave it nothing)
        skipped_early = ledger.skip_unsettled(
            lambda row: not row_variant(row).posts,
            lambda row: (
                "no posts for "
                + ("the chapter" if row.variant_id is None else "its variant")
                + " any more"
            ),
        )
    if issue.status == "draft":  # no approval required: this run approves it as it begins
        issue = approve_for_sending(db, issue, clock())
    if issue.status != "sending":
        issue = mark_issue_status(db, issue, "sending", clock())
        # Its delivery began: now its web version and the feeds of issues show it, before the
        # first message (whose "view in browser" link leads there) leaves.
        site_files += len(_build_site(db, settings, now).written)

    personaliser = Personaliser(settings, secret)

    def compose(row: Delivery, subscriber: Subscriber) -> bytes:
        template = templates[row_variant(row).rendering]
        recipient = Recipient(row.subscriber_id, subscriber.email, subscriber.name, row.message_id)
        message = personaliser.message(template, recipient)
        return signer.sign(message) if signer is not None else message

    envelope_of = return_paths(settings, secret)

    def envelope(row: Delivery) -> str:
        return envelope_of(row.id, row.subscriber_id)

    def refused(row: Delivery, exc: SendRefused) -> bool:
        outcome = record_refusal(
            db, row, str(exc), phase=exc.phase, now=clock(), soft_limit=settings.bounces_soft_limit
        )
        return bool(outcome and outcome.suspended)

    transport = transport or make_transport(settings)
    try:
        report = ledger.deliver(
            transport,
            compose,
            sender=settings.sender,
            resend_ambiguous=resend_ambiguous,
            progress=progress,
            return_path=envelope,
            on_refused=refused,
        )
    finally:
        transport.close()
    spent += time.perf_counter() - delivering

    if report.settled:
        issue = mark_issue_status(db, issue, "sent", clock())
        status = "resumed" if resuming else "sent"
    elif report.blocked:
        status = "relay_error"
    elif report.ledger.get("pending", 0):
        status = "partial"
    else:
        status = "ambiguous"
    return PublishResult(
        status,
        key,
        issue.number,
        posts=len(posts),
        recipients=report.total,
        sent=report.sent,
        failed=report.failed,
        skipped=report.skipped + skipped_early,
        resolved=report.resolved,
        pending=report.ledger.get("pending", 0),
        ambiguous=report.ledger.get("sending", 0),
        bounced=report.bounced,
        subject=issue.subject,
        message=_delivery_message(report, issue.number),
        unsure=[
            {"subscriber_id": u.subscriber_id, "email": u.email, "message_id": u.message_id}
            for u in report.unsure
        ],
        ledger=report.ledger,
        site_files=site_files,
        warnings=warnings,
        check=check.as_json(),
        delivery_duration=spent,
    )


def _preflight(
    db: Database,
    settings: Settings,
    issue: Issue,
    posts: Sequence[Post],
    shown: Sequence[Variant],
    templates: dict[Rendering, MessageTemplate],
    *,
    now: datetime,
    site: bool = True,
    built: BuildResult | None = None,
) -> Report:
    """``policyfeed check`` on what this run is about to send (see policyfeed.check.run): each
    distinct message, named by its variant (``vancouver``, ``vancouver/topics=ietf``)."""
    from policyfeed.check.run import check_before_sending

    named = {variant.label: templates[variant.rendering] for variant in shown}
    return check_before_sending(
        db, settings, issue=issue, posts=posts, templates=named, now=now, site=site, built=built
    )


def _check_base_url(settings: Settings) -> None:
    """Refuse to run (a dry run too: it would promise what the run refuses) while
    site.base_url is a loopback or placeholder address: the posts published and the issue
    made would carry links and ids on it that readers and mailboxes keep."""
    from policyfeed.config import require_public_base_url

    require_public_base_url(settings.base_url, "publish")


def _check_output_folder(db: Database, settings: Settings) -> None:
    """Refuse, before any issue is made, an output folder that holds another site: the build
    would replace it (``policyfeed build --force`` takes such a folder over)."""
    from policyfeed.errors import ConflictError
    from policyfeed.site.ownership import output_folder_problem

    problem = output_folder_problem(db, settings.output_dir)
    if problem:
        raise ConflictError(problem)


def _sign_up_messages(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    clock: Callable[[], datetime],
    transport: Transport | None,
) -> None:
    """Send the sign-up's messages that the relay could not take when they were asked for, and
    purge sign-ups nobody confirmed in time. A relay still down only leaves them waiting (the
    digest's own delivery reports it)."""
    from policyfeed.audience.signup import tidy
    from policyfeed.delivery.notices import send_waiting_notices
    from policyfeed.store import transaction

    with transaction(db):
        tidy(db, settings, now=now)
    send_waiting_notices(db, settings, clock=clock, transport=transport)


def _delivery_message(report: DeliveryReport, number: int) -> str:
    """Why delivery is not complete, in one line: what stopped it, who waits, who is unsure."""
    parts = [reason for reason in (report.blocked, report.deferred) if reason]
    if report.waiting:
        parts.append(
            f"{report.waiting} recipient(s) answered with a temporary failure "
            f"({report.waiting_reason}); they wait for the next run"
        )
    if report.unsure:
        shown = report.unsure[:NAMED_UNSURE]
        named = ", ".join(f"{u.email or u.subscriber_id} <{u.message_id}>" for u in shown)
        if len(report.unsure) > len(shown):
            named += f" and {len(report.unsure) - len(shown)} more"
        parts.append(
            f"{len(report.unsure)} message(s) may or may not have reached the relay: {named}; "
            "look them up in the relay's log: `policyfeed issue mark-sent "
            f"{number} MESSAGE-ID` records those that arrived, then `policyfeed publish "
            "--resend-ambiguous` hands the others over again (same Message-ID)"
        )
    return "; ".join(parts)


def _build_site(db: Database, settings: Settings, now: datetime) -> BuildResult:
    """Feeds, pages and the issue archive, so the web version exists before the mail arrives."""
    from policyfeed.site.build import build_site

    return build_site(db, settings, settings.output_dir, now)


def _dry_run(
    db: Database,
    settings: Settings,
    issue: Issue,
    posts: list[Post],
    *,
    now: datetime,
    rows: list[Delivery] | None,
    frozen: dict[int, FrozenVariant] | None = None,
) -> PublishResult:
    """Render every variant and count recipients; nothing is written anywhere."""
    variants = _variants(db, posts)
    if rows is None:
        needed = [v for v, count in _needed_variants(db, variants).items() for _ in range(count)]
    else:
        row_variant = _RowVariants(variants, frozen or {})
        needed = [v for v in (row_variant(r) for r in rows if not r.settled) if v.posts]
    shown = distinct_renderings(needed)
    templates, warnings = _render_variants(issue, shown, settings, now=now)
    members: dict[tuple[object, ...], list[Variant]] = {}
    for variant in needed:
        members.setdefault(variant.key, []).append(variant)
    reports: list[VariantReport] = []
    sizes: dict[Rendering, int] = {}
    for group in sorted(members.values(), key=lambda g: variant_order(g[0])):
        variant = group[0]
        if variant.rendering not in sizes:
            sample = Personaliser(settings, settings.secret or "dry-run").message(
                templates[variant.rendering],
                Recipient(0, "recipient@example.org", "", f"dry-run@{settings.domain}"),
            )
            sizes[variant.rendering] = len(sample)
        reports.append(
            VariantReport(
                variant.chapter.slug if variant.chapter else None,
                len(variant.posts),
                len(group),
                sizes[variant.rendering],
                list(variant.topics) if variant.topics is not None else None,
            )
        )
    check = _preflight(db, settings, issue, posts, shown, templates, now=now, site=False)
    return PublishResult(
        "refused" if check.errors else "dry_run",  # a real run would send nothing
        issue.period,
        issue.number,
        posts=len(posts),
        recipients=sum(v.recipients for v in reports),
        subject=issue.subject,
        message=f"dry run, {check.summary()}" if check.errors else "",
        variants=reports,
        warnings=warnings,
        check=check.as_json(),
    )


# --- approval -----------------------------------------------------------------------------


def _approved_first(
    db: Database, settings: Settings, current: Issue | None, now: datetime
) -> Issue | None:
    """The approved issue this run delivers before the period's own (None: the period's):
    the oldest one waiting, unless the period's issue is part-way out (it resumes first). An
    issue for a scheduled time still to come waits for it; a special issue waits for its
    ``publish --period NAME``, as it does without approval."""
    if current is not None and current.status == "sending":
        return None
    for waiting in approved_issues(db):
        scheduled = period_from_key(waiting.period, settings.tz)
        if scheduled is not None and scheduled.scheduled_at <= now:
            return waiting
    return None


def _await_approval(
    db: Database,
    settings: Settings,
    issue: Issue,
    *,
    now: datetime,
    lateness: timedelta,
    dry_run: bool,
    transport: Transport | None,
) -> PublishResult:
    """A draft waiting for an editor: its copy for approval goes to the editor once, nothing
    goes to members; overdue once it has waited longer than ``lateness``."""
    from policyfeed.delivery.approval import send_for_approval
    from policyfeed.errors import DeliveryError, PolicyfeedError
    from policyfeed.schedule import human_duration

    editor = settings.editor_email
    if issue.review_sent_at is not None:
        copy = f"its copy for approval went to {editor}"
    elif dry_run:
        copy = f"a real run sends its copy for approval to {editor}"
    else:
        report = send_for_approval(
            db, settings, issue, now=now, lateness=lateness, transport=transport
        )
        outcome = report.outcomes[0]
        if outcome.status != "sent":
            what = (
                f"issue {issue.number} is a draft waiting for approval, but its copy for "
                f"approval to {editor} did not go out ({outcome.error})"
            )
            if outcome.status == "refused":
                raise PolicyfeedError(f"{what}; check site.editor_email")
            raise DeliveryError(f"{what}; the next run tries again")
        issue = mark_review_sent(db, issue, now)
        copy = f"its copy for approval went to {editor} ({report.via})"
    age = now - issue.created_at
    overdue = age > lateness
    if overdue:
        message = (
            f"issue {issue.number} has waited {human_duration(age)} for approval, longer than "
            f"the allowed lateness ({human_duration(lateness)}); nothing sent: approve it to "
            f"send it at the next run (`policyfeed issue approve {issue.number}`), or discard it"
        )
    else:
        message = (
            f"issue {issue.number} is a draft waiting for approval ({copy}); nothing sent until "
            f"`policyfeed issue approve {issue.number}`"
        )
    warnings = [
        f"issue {other.number} (period {other.period}) has also waited "
        f"{human_duration(now - other.created_at)} for approval"
        for other in drafts(db)
        if other.id != issue.id and now - other.created_at > lateness
    ]
    posts = issue_posts(db, issue)
    return PublishResult(
        "approval_overdue" if overdue else "awaiting_approval",
        issue.period,
        issue.number,
        posts=len(posts),
        subject=issue.subject,
        message=message,
        warnings=warnings,
    )
