"""The benchmarks behind ``make bench``: one table of figures, each a ratio against a baseline.

Every figure is the median of several runs of policyfeed, paired with the median of a baseline
measured in the same run (runs interleaved, so a busy moment on a shared machine hits both), and
judged as a ratio against its target. Absolute times are shown but not judged (the machine is
shared), except where a target names one.

Usage:
    python benchmarks/run.py            # the full figures (about 20 minutes on 2 cores)
    python benchmarks/run.py --quick    # smaller data and fewer runs, for a first look
    python benchmarks/run.py --only help,import

The table (Markdown) goes to stdout, progress to stderr, and every sample to
benchmarks/results/latest.json. Generated data lives in a temporary folder, removed at the end
(``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_delivery  # noqa: E402
import generate  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

RESULTS = HERE / "results" / "latest.json"
NOT_AVAILABLE = "not available yet"
PEER_MISSING = "peer missing"
SECRET = "benchmark-secret-not-for-production"
BUILD_BUDGET = 120.0  # seconds of timed rebuilds before the build figure stops at 3 runs
COMMAND_TIMEOUT = 900  # seconds; a hung command fails its figure instead of the whole run


# --- sizes -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    """How big the data is and how many times each figure is measured."""

    big_posts: int = 100_000
    small_posts: int = 100
    big_subscribers: int = 10_000
    small_subscribers: int = 10
    # An import of 100,000 posts takes minutes per run; its cost per post is about flat, so the
    # full run imports 20,000 (three times) to stay within its time. --import-posts changes it.
    import_posts: int = 20_000
    personalise_messages: int = 10_000
    smtp_messages: int = 2_000
    help_runs: int = 15
    import_runs: int = 3
    build_runs: int = 5
    publish_runs: int = 5
    personalise_runs: int = 7
    smtp_runs: int = 3
    memory_runs: int = 3
    # Delivery into the outbox (bench_delivery.py): the big list's size and runs.
    huge_subscribers: int = 100_000
    biglist_runs: int = 3
    # SMTP through a relay whose replies come 20 ms late, 8 connections against one.
    smtp_far_members: int = 400
    smtp_far_runs: int = 3
    # DKIM signing costs milliseconds a message (an RSA-2048 signature in pure Python).
    dkim_messages: int = 500
    dkim_runs: int = 5
    # The peers (Hugo, Pelican): the issue's sizes.
    peer_posts: int = 10_000
    peer_small_posts: int = 1_000
    peer_runs: int = 3


FULL = Sizes()
QUICK = Sizes(
    big_posts=10_000,
    big_subscribers=1_000,
    import_posts=5_000,
    smtp_messages=500,
    help_runs=7,
    build_runs=3,
    publish_runs=3,
    personalise_runs=5,
    dkim_messages=200,
    dkim_runs=3,
    peer_posts=2_000,
    peer_small_posts=500,
    peer_runs=2,
    huge_subscribers=10_000,
    biglist_runs=2,
    smtp_far_members=100,
    smtp_far_runs=2,
)


# --- figures -----------------------------------------------------------------------------------
@dataclass
class Figure:
    """One line of the table: policyfeed against its baseline, judged by a ratio."""

    key: str
    label: str
    baseline_label: str
    unit: str  # "s", "MB" or "msg/s"
    limit: float | None  # the ratio target (None: reported, not judged)
    higher_is_better: bool = False  # throughput: the ratio must be at least ``limit``
    absolute_limit: float | None = None  # a target on the measured value itself (same unit)
    measured: float | None = None  # median
    baseline: float | None = None  # median
    runs: int = 0
    samples: list[float] = field(default_factory=list)
    baseline_samples: list[float] = field(default_factory=list)
    note: str = ""
    unavailable: str = ""  # why the figure cannot be measured yet
    error: str = ""  # why measuring it failed
    missing_peer: bool = False  # ``unavailable`` says which peer could not be installed

    @property
    def ratio(self) -> float | None:
        if self.measured is None or not self.baseline:
            return None
        return self.measured / self.baseline

    @property
    def target(self) -> str:
        if self.limit is None:
            return "-"
        text = f">= {self.limit:g}x" if self.higher_is_better else f"<= {self.limit:g}x"
        if self.absolute_limit is not None:
            text += f", <= {_amount(self.absolute_limit, self.unit)}"
        return text

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        if ratio is None or self.measured is None or self.limit is None:
            return None
        ok = ratio >= self.limit if self.higher_is_better else ratio <= self.limit
        if self.absolute_limit is not None:
            ok = ok and self.measured <= self.absolute_limit
        return ok

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        if self.missing_peer:
            return PEER_MISSING
        if self.unavailable:
            return NOT_AVAILABLE
        met = self.met
        return "-" if met is None else ("met" if met else "MISSED")

    def settle(self, ours: Sequence[float], theirs: Sequence[float]) -> Figure:
        """Record the samples; the figure is the ratio of their medians."""
        self.samples, self.baseline_samples = list(ours), list(theirs)
        self.measured, self.baseline = statistics.median(ours), statistics.median(theirs)
        self.runs = len(ours)
        return self

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(ratio=self.ratio, target=self.target, met=self.met, verdict=self.verdict)
        return data


def paired(
    measure: Callable[[], float],
    baseline: Callable[[], float],
    runs: int,
    *,
    budget: float | None = None,
    min_runs: int = 3,
) -> tuple[list[float], list[float]]:
    """``runs`` samples of each, interleaved; the baseline goes first every other time.

    With a ``budget`` (seconds), no new pair starts once it is spent and ``min_runs`` pairs are
    done: a slow figure keeps the whole run under its time limit with fewer (but enough) runs.
    """
    ours: list[float] = []
    theirs: list[float] = []
    started = time.perf_counter()
    for index in range(runs):
        spent = time.perf_counter() - started
        if budget is not None and index >= min_runs and spent > budget:
            break
        if index % 2:
            ours.append(measure())
            theirs.append(baseline())
        else:
            theirs.append(baseline())
            ours.append(measure())
    return ours, theirs


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- running policyfeed ------------------------------------------------------------------------
def policyfeed_command() -> list[str]:
    """The installed console script, as a user runs it (or ``python -m policyfeed``)."""
    script = Path(sys.executable).with_name("policyfeed")
    return [str(script)] if script.exists() else [sys.executable, "-m", "policyfeed"]


def has_command(*names: str, option: str | None = None) -> bool:
    """Whether ``policyfeed NAME [SUBNAME]`` (with ``option``) exists in the installed code."""
    from policyfeed.cli import cli

    command: Any = cli
    for name in names:
        commands = getattr(command, "commands", {})
        if name not in commands:
            return False
        command = commands[name]
    if option is None:
        return True
    return any(option in getattr(p, "opts", ()) for p in command.params)


def has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def bench_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYFEED_")}
    env["POLICYFEED_SECRET"] = SECRET
    return env


@dataclass(frozen=True)
class Site:
    """A benchmark site: a folder with its database and policyfeed.toml."""

    folder: Path
    db: Path
    config: Path
    dataset: generate.Dataset

    def command(self, *args: str) -> list[str]:
        return [*policyfeed_command(), "--db", str(self.db), "--config", str(self.config), *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """Run ``policyfeed ARGS`` on this site; a non-zero exit is an error."""
        return _checked(
            subprocess.run(
                self.command(*args),
                cwd=self.folder,
                env=bench_env(),
                capture_output=True,
                timeout=COMMAND_TIMEOUT,
            ),
            args,
        )

    def copy_to(self, folder: Path) -> Site:
        """A fresh copy of this site's database and config (for commands that change them)."""
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        db = folder / self.db.name
        shutil.copyfile(self.db, db)
        return Site(folder, db, generate.write_config(folder), self.dataset)


def _checked(
    result: subprocess.CompletedProcess[bytes], args: Sequence[str]
) -> subprocess.CompletedProcess[bytes]:
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"policyfeed {' '.join(args)} exited {result.returncode}: {stderr}")
    return result


def make_site(folder: Path, *, posts: int, subscribers: int, now: datetime) -> Site:
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "posts.db"
    dataset = generate.generate_database(db, posts=posts, subscribers=subscribers, now=now)
    return Site(folder, db, generate.write_config(folder), dataset)


class Workspace:
    """The sizes, the clock and the generated sites shared by the figures (made on first use)."""

    def __init__(
        self, root: Path, sizes: Sizes, now: datetime, *, install_peers: bool = True
    ) -> None:
        self.root = root
        self.install_peers = install_peers
        self.sizes = sizes
        self.now = now
        self._sites: dict[tuple[int, int, str], Site] = {}
        self.first_build = ""
        self.peers: list[Any] | None = None  # peers.Peer: installed or missing, found once
        self.peer_benches: dict[int, Any] = {}  # PeerBench by number of posts

    def site(self, posts: int, subscribers: int, tag: str = "") -> Site:
        """The site of that size; figures that change their site ask for their own ``tag``."""
        key = (posts, subscribers, tag)
        if key not in self._sites:
            log(f"generating a site: {posts:,} posts, {subscribers:,} subscribers")
            folder = self.root / f"site-{posts}-{subscribers}{'-' + tag if tag else ''}"
            self._sites[key] = make_site(folder, posts=posts, subscribers=subscribers, now=self.now)
        return self._sites[key]

    @property
    def big(self) -> Site:
        return self.site(self.sizes.big_posts, self.sizes.big_subscribers)

    @property
    def small(self) -> Site:
        return self.site(self.sizes.small_posts, self.sizes.small_subscribers)


# --- figure: policyfeed --help -----------------------------------------------------------------
def figure_help(ws: Workspace) -> Figure:
    figure = Figure(
        "help", "`policyfeed --help`, whole process", "`python -c pass`", "s", limit=2.5
    )
    command = [*policyfeed_command(), "--help"]
    bare = [sys.executable, "-c", "pass"]

    def run(cmd: list[str]) -> float:
        return timed(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL))

    run(command)  # the file cache warm for both
    run(bare)
    return figure.settle(*paired(lambda: run(command), lambda: run(bare), ws.sizes.help_runs))


# --- figure: import ----------------------------------------------------------------------------
IMPORT_TABLES = ("topics", "posts", "post_topics")


def _fresh_db(path: Path) -> None:
    from policyfeed.store import open_db

    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    open_db(path).conn.close()


def import_with_policyfeed(source: Path, target: Path, now: datetime) -> float:
    """Seconds ``import_posts`` takes to import ``source`` into a fresh database."""
    from policyfeed.content.importers import import_posts
    from policyfeed.store import open_db

    _fresh_db(target)
    db = open_db(target)
    try:
        return timed(
            lambda: import_posts(
                db,
                source,
                fmt="jsonl",
                base_url=generate.BASE_URL,
                tz=UTC,
                domain=generate.DOMAIN,
                now=now,
            )
        )
    finally:
        db.conn.close()


Rows = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


def stored_rows(path: Path) -> Rows:
    """The columns and rows an import left in each table (the baseline inserts the same)."""
    conn = sqlite3.connect(path)
    try:
        tables = {}
        for table in IMPORT_TABLES:
            cursor = conn.execute(f"SELECT * FROM {table}")
            tables[table] = ([d[0] for d in cursor.description], cursor.fetchall())
        return tables
    finally:
        conn.close()


def import_with_executemany(rows: Rows, target: Path) -> float:
    """Seconds a raw ``executemany`` of the same rows takes, in one transaction, into a fresh
    database with the same schema (indexes and full-text triggers) and PRAGMAs."""
    _fresh_db(target)
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")

        def insert() -> None:
            conn.execute("BEGIN")
            for table in IMPORT_TABLES:
                columns, values = rows[table]
                marks = ", ".join("?" * len(columns))
                conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values
                )
            conn.execute("COMMIT")

        return timed(insert)
    finally:
        conn.close()


def figure_import(ws: Workspace) -> Figure:
    posts = ws.sizes.import_posts
    figure = Figure(
        "import",
        f"import of {posts:,} posts (`import_posts`, JSON Lines)",
        "raw `sqlite3.executemany` of the same rows, one transaction",
        "s",
        limit=2.0,
    )
    folder = ws.root / "import"
    folder.mkdir(parents=True, exist_ok=True)
    source = generate.write_import_file(
        folder / "posts.jsonl", generate.post_records(posts, now=ws.now)
    )
    target, baseline = folder / "import.db", folder / "baseline.db"
    # The first import also gives the rows the baseline inserts.
    ours = [import_with_policyfeed(source, target, ws.now)]
    rows = stored_rows(target)
    theirs = [import_with_executemany(rows, baseline)]
    more_ours, more_theirs = paired(
        lambda: import_with_policyfeed(source, target, ws.now),
        lambda: import_with_executemany(rows, baseline),
        ws.sizes.import_runs - 1,
    )
    shutil.rmtree(folder, ignore_errors=True)
    figure.note = (
        "validation, sanitising and saving into a fresh database each run; both sides "
        "maintain the same indexes and full-text index"
    )
    return figure.settle(ours + more_ours, theirs + more_theirs)


# --- figure: build -----------------------------------------------------------------------------
def _first_build(ws: Workspace) -> tuple[Site, Site, str]:
    """Both sites built once (archive pages written for the first time: not judged)."""
    big_site, small_site = ws.big, ws.small
    if not (big_site.folder / "public").exists():
        first_big = timed(lambda: big_site.run("build"))
        first_small = timed(lambda: small_site.run("build"))
        files = sum(1 for p in (big_site.folder / "public").rglob("*") if p.is_file())
        ws.first_build = (
            f"the first build took {_amount(first_big, 's')} ({files:,} files) on "
            f"{ws.sizes.big_posts:,} posts and {_amount(first_small, 's')} on "
            f"{ws.sizes.small_posts:,}"
        )
    return big_site, small_site, ws.first_build


def figure_build(ws: Workspace) -> Figure:
    big, small = ws.sizes.big_posts, ws.sizes.small_posts
    figure = Figure(
        "build",
        f"`policyfeed build` on {big:,} posts, nothing changed",
        f"the same on {small:,} posts",
        "s",
        limit=1.5,
    )
    if not has_command("build"):
        figure.unavailable = "`policyfeed build` does not exist yet"
        return figure
    big_site, small_site, first = _first_build(ws)
    figure.note = f"rebuilds after a first build (archive pages written once excluded); {first}"
    return figure.settle(
        *paired(
            lambda: timed(lambda: big_site.run("build")),
            lambda: timed(lambda: small_site.run("build")),
            ws.sizes.build_runs,
            budget=BUILD_BUDGET,
        )
    )


def _build_after_new_post(site: Site, serial: int) -> float:
    """Publish one more post (not timed), then time the build that puts it on the site."""
    record = generate.post_records(1, now=datetime.now(UTC), seed=serial)[0]
    site.run(
        "posts", "add", "--title", f"{record['title']} {serial}", "--body", record["body"],
        "--summary", record["summary"], "--new-topic", record["topics"][0], "--publish",
    )  # fmt: skip
    return timed(lambda: site.run("build"))


def figure_build_new_post(ws: Workspace) -> Figure:
    big, small = ws.sizes.big_posts, ws.sizes.small_posts
    figure = Figure(
        "build-new-post",
        f"`policyfeed build` on {big:,} posts after one new post",
        f"the same on {small:,} posts",
        "s",
        limit=1.5,
    )
    if not has_command("build") or not has_command("posts", "add"):
        figure.unavailable = "`policyfeed build` does not exist yet"
        return figure
    big_site, small_site, _ = _first_build(ws)
    serials = iter(range(1_000_000, 2_000_000))
    figure.note = (
        "each run publishes a post (not timed) and times the build that adds it: its page, "
        "the feeds, the index and its topic's pages"
    )
    return figure.settle(
        *paired(
            lambda: _build_after_new_post(big_site, next(serials)),
            lambda: _build_after_new_post(small_site, next(serials)),
            ws.sizes.build_runs,
            budget=BUILD_BUDGET,
        )
    )


# --- figure: publish --dry-run -----------------------------------------------------------------
def _timed_dry_run(site: Site, reports: list[dict[str, Any]]) -> float:
    """Seconds of ``publish --dry-run --json``; its report goes into ``reports``."""
    start = time.perf_counter()
    result = site.run("publish", "--dry-run", "--json")
    elapsed = time.perf_counter() - start
    report = json.loads(result.stdout)
    if report.get("status") != "dry_run" or not report.get("posts"):
        raise RuntimeError(f"the dry run planned no issue: {report}")
    reports.append(report)
    return elapsed


def figure_publish(ws: Workspace) -> Figure:
    sizes = ws.sizes
    figure = Figure(
        "publish",
        f"`policyfeed publish --dry-run`, {sizes.big_posts:,} posts and "
        f"{sizes.big_subscribers:,} subscribers",
        f"the same with {sizes.small_posts:,} posts and {sizes.small_subscribers:,} subscribers",
        "s",
        limit=1.5,
    )
    if not has_command("publish", option="--dry-run"):
        figure.unavailable = "`policyfeed publish --dry-run` does not exist yet"
        return figure
    big_site, small_site = ws.big, ws.small
    big_reports: list[dict[str, Any]] = []
    small_reports: list[dict[str, Any]] = []
    figure.settle(
        *paired(
            lambda: _timed_dry_run(big_site, big_reports),
            lambda: _timed_dry_run(small_site, small_reports),
            sizes.publish_runs,
        )
    )
    big_report, small_report = big_reports[0], small_reports[0]
    figure.note = (
        f"an issue of {big_report['posts']} and {small_report['posts']} posts, for "
        f"{big_report.get('recipients')} and {small_report.get('recipients')} recipients"
    )
    return figure


# --- figure: personalisation -------------------------------------------------------------------
def figure_personalise(ws: Workspace) -> Figure:
    count = ws.sizes.personalise_messages
    figure = Figure(
        "personalise",
        f"personalising {count:,} messages from one rendered variant",
        "`bytes.replace` on the same messages",
        "s",
        limit=5,
        absolute_limit=1.0,
    )
    try:
        from policyfeed.config import load_settings
        from policyfeed.digest.issues import plan_issue
        from policyfeed.digest.mail import Personaliser, Recipient, build_template, make_message_id
        from policyfeed.digest.render import UNSUBSCRIBE_URL_TOKEN, render_issue
        from policyfeed.store import open_db
    except ImportError as exc:
        figure.unavailable = f"the digest code is not there yet ({exc})"
        return figure
    site = ws.site(ws.sizes.small_posts, ws.sizes.small_subscribers, tag="mail")
    settings = load_settings(site.config, environ={"POLICYFEED_SECRET": SECRET}, cwd=site.folder)
    db = open_db(site.db)
    try:
        planned = plan_issue(db, settings, now=ws.now)
    finally:
        db.conn.close()
    if planned is None:
        raise RuntimeError("no post is waiting in the generated site")
    issue, posts = planned
    digest = render_issue(issue, posts, settings)
    template = build_template(
        digest,
        settings,
        issue_number=issue.number,
        variant="",
        now=ws.now,
        placeholders={"unsubscribe_url": UNSUBSCRIBE_URL_TOKEN},
    )
    recipients = [
        Recipient(
            row["id"],
            row["email"],
            row["name"],
            make_message_id(
                settings,
                period=issue.period,
                issue_number=issue.number,
                subscriber_id=row["id"],
                made=issue.created_at,
            ),
        )
        for row in generate.subscriber_rows(count, len(generate.CHAPTERS), ws.now, generate.SEED)
    ]
    personaliser = Personaliser(settings, SECRET)

    # The baseline: the same message with a marker for each slot, and each recipient's values
    # ready, so all it does is bytes.replace; it must give exactly policyfeed's bytes.
    slots = sorted(template.distinct_slots)
    markers = {slot: f"\x00{slot[0]}:{slot[1]}\x00".encode() for slot in slots}
    blob = template.pieces[0] + b"".join(
        markers[slot] + piece
        for slot, piece in zip(template.slots, template.pieces[1:], strict=True)
    )
    values = [personaliser.values(recipient, slots) for recipient in recipients]
    marker_items = list(markers.items())

    def with_replace(index: int) -> bytes:
        message = blob
        for slot, marker in marker_items:
            message = message.replace(marker, values[index][slot])
        return message

    for index in (0, len(recipients) - 1):
        if with_replace(index) != personaliser.message(template, recipients[index]):
            raise RuntimeError("the bytes.replace baseline does not give policyfeed's message")

    def ours() -> None:
        for recipient in recipients:
            personaliser.message(template, recipient)

    def theirs() -> None:
        for index in range(len(recipients)):
            with_replace(index)

    figure.note = (
        f"a {len(blob) / 1000:.0f} KB message ({len(posts)} posts); policyfeed makes each "
        "recipient's token, URLs and headers and joins the pieces; the baseline gets those "
        f"values ready-made and runs one bytes.replace per slot ({len(marker_items)})"
    )
    return figure.settle(
        *paired(lambda: timed(ours), lambda: timed(theirs), ws.sizes.personalise_runs)
    )


# --- figure: DKIM signing ----------------------------------------------------------------------
def figure_dkim(ws: Workspace) -> Figure:
    count = ws.sizes.dkim_messages
    figure = Figure(
        "dkim",
        f"DKIM-signing {count:,} personalised messages (`DkimSigner`, RSA-2048), per message",
        "dkimpy's own `dkim.sign` on the same messages, key and headers",
        "s",
        limit=1.15,  # the same work: a signer that adds nothing measurable to dkimpy
    )
    try:
        import dkim

        from policyfeed.config import load_settings
        from policyfeed.delivery.dkim import CANONICALIZE, SIGNED_HEADERS, DkimSigner, generate_key
        from policyfeed.digest.issues import plan_issue
        from policyfeed.digest.mail import Personaliser, Recipient, build_template, make_message_id
        from policyfeed.digest.render import UNSUBSCRIBE_URL_TOKEN, render_issue
        from policyfeed.store import open_db
    except ImportError as exc:
        figure.unavailable = f"DKIM signing is not there yet ({exc})"
        return figure
    site = ws.site(ws.sizes.small_posts, ws.sizes.small_subscribers, tag="mail")
    settings = load_settings(site.config, environ={"POLICYFEED_SECRET": SECRET}, cwd=site.folder)
    db = open_db(site.db)
    try:
        planned = plan_issue(db, settings, now=ws.now)
    finally:
        db.conn.close()
    if planned is None:
        raise RuntimeError("no post is waiting in the generated site")
    issue, posts = planned
    template = build_template(
        render_issue(issue, posts, settings), settings, issue_number=issue.number, variant="",
        now=ws.now, placeholders={"unsubscribe_url": UNSUBSCRIBE_URL_TOKEN},
    )  # fmt: skip
    personaliser = Personaliser(settings, SECRET)
    rows = generate.subscriber_rows(count, len(generate.CHAPTERS), ws.now, generate.SEED)
    recipients = [
        Recipient(
            row["id"],
            row["email"],
            row["name"],
            make_message_id(
                settings,
                period=issue.period,
                issue_number=issue.number,
                subscriber_id=row["id"],
                made=issue.created_at,
            ),
        )
        for row in rows
    ]
    personalise_seconds = timed(lambda: [personaliser.message(template, r) for r in recipients])
    messages = [personaliser.message(template, r) for r in recipients]
    domain = generate.DOMAIN
    signer = DkimSigner(domain, "bench", generate_key())
    key = signer._key  # the PKCS#1 PEM dkimpy reads: the baseline signs with the same key
    headers = list(SIGNED_HEADERS)
    selector, signing_domain = b"bench", signer.domain.encode()

    def ours() -> float:
        return timed(lambda: [signer.sign(m) for m in messages]) / count

    def bare(message: bytes) -> bytes:
        signature = dkim.sign(
            message, selector, signing_domain, key, canonicalize=CANONICALIZE,
            include_headers=headers,
        )  # fmt: skip
        return bytes(signature) + message

    def theirs() -> float:
        return timed(lambda: [bare(m) for m in messages]) / count

    if not signer.verify(signer.sign(messages[0])):
        raise RuntimeError("a signed benchmark message does not verify")
    figure.settle(*paired(ours, theirs, ws.sizes.dkim_runs))
    per_message = figure.measured or 0.0
    personalise_each = personalise_seconds / count
    figure.note = (
        f"a {len(messages[0]) / 1000:.0f} KB message ({len(posts)} posts), relaxed/relaxed, "
        f"{len(SIGNED_HEADERS)} header names; signing adds {per_message * 1000:.1f} ms to each "
        f"message, {per_message / personalise_each:,.0f}x what personalising it costs "
        f"({personalise_each * 1e6:.0f} us): {per_message * 10_000:.0f} s more for 10,000 members"
    )
    return figure


# --- figure: SMTP ------------------------------------------------------------------------------
def figure_smtp(ws: Workspace) -> Figure:
    count = ws.sizes.smtp_messages
    figure = Figure(
        "smtp",
        f"SMTP delivery of {count:,} digests to a local aiosmtpd sink (`SmtpTransport`)",
        "a bare `smtplib` loop, same messages and sink",
        "msg/s",
        limit=0.9,
        higher_is_better=True,
    )
    try:
        import bench_smtp
    except ImportError as exc:
        figure.unavailable = f"benchmarks/bench_smtp.py is not there yet ({exc})"
        return figure
    result = bench_smtp.compare(count, ws.sizes.smtp_runs)
    figure.note = (
        f"{result['message_bytes'] / 1000:.0f} KB messages over one connection each run; "
        "throughput, higher is better"
    )
    return figure.settle(
        [count / s for s in result["transport_seconds"]],
        [count / s for s in result["smtplib_seconds"]],
    )


# --- figure: peak memory -----------------------------------------------------------------------
# Runs one command and reports its exit code, output and peak resident memory (kilobytes), so
# every measurement comes from a fresh helper process that has waited for exactly one child.
_PEAK_RSS = (
    "import json, resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True)\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'code': done.returncode, 'peak_kb': peak,\n"
    "    'stdout': done.stdout.decode(errors='replace'),\n"
    "    'stderr': done.stderr.decode(errors='replace')}))\n"
)


def peak_memory_mb(command: Sequence[str], cwd: Path) -> tuple[float, str]:
    """Peak RSS of ``command`` in megabytes, and what it wrote on stdout."""
    helper = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *command],
        cwd=cwd,
        env=bench_env(),
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
        check=True,
    )
    done = json.loads(helper.stdout)
    if done["code"] != 0:
        raise RuntimeError(f"{' '.join(command[-2:])} exited {done['code']}: {done['stderr']}")
    return done["peak_kb"] / 1024, str(done["stdout"])


def _publish_peak(site: Site, folder: Path) -> float:
    fresh = site.copy_to(folder)
    megabytes, output = peak_memory_mb(fresh.command("publish", "--json"), fresh.folder)
    report = json.loads(output)
    everyone = site.dataset.active_subscribers
    if report.get("status") != "sent" or report.get("recipients") != everyone:
        raise RuntimeError(f"publish did not deliver the issue to all {everyone}: {report}")
    shutil.rmtree(folder, ignore_errors=True)
    return megabytes


def figure_memory(ws: Workspace) -> Figure:
    sizes = ws.sizes
    figure = Figure(
        "memory",
        f"peak memory of `policyfeed publish`, {sizes.big_subscribers:,} subscribers",
        f"the same with {sizes.small_subscribers:,} subscribers",
        "MB",
        limit=2,
    )
    if not has_command("publish") or not has_module("policyfeed.site.build"):
        figure.unavailable = "`policyfeed publish` (with the site build it runs) is not there yet"
        return figure
    many = ws.site(sizes.small_posts, sizes.big_subscribers, tag="memory")
    few = ws.site(sizes.small_posts, sizes.small_subscribers, tag="memory")
    folder = ws.root / "publish-run"
    figure.note = (
        f"a real run into the outbox on {sizes.small_posts:,} posts (issue made, site built, "
        "every message written), from a fresh copy each time; peak RSS of the child process "
        "(getrusage RUSAGE_CHILDREN in a fresh helper process)"
    )
    return figure.settle(
        *paired(
            lambda: _publish_peak(many, folder),
            lambda: _publish_peak(few, folder),
            sizes.memory_runs,
        )
    )


# --- figures: the peers (Hugo, Pelican) ----------------------------------------------------------
def rotated(measures: Sequence[Callable[[], Any]], runs: int) -> list[list[Any]]:
    """``runs`` samples of each measure; run ``i`` starts with measure ``i mod n`` and goes round,
    so each side goes first, second, ... equally often."""
    samples: list[list[Any]] = [[] for _ in measures]
    for run_index in range(runs):
        for step in range(len(measures)):
            which = (run_index + step) % len(measures)
            samples[which].append(measures[which]())
    return samples


class PeerBench:
    """policyfeed, Hugo and Pelican on the same posts: each a site folder, timed as a whole
    process. Made once per size; the peers are installed (or found missing) once per run."""

    @classmethod
    def of(cls, ws: Workspace, posts: int) -> PeerBench:
        if posts not in ws.peer_benches:
            ws.peer_benches[posts] = cls(ws, posts)
        bench: PeerBench = ws.peer_benches[posts]
        return bench

    def __init__(self, ws: Workspace, posts: int) -> None:
        import peers

        self.ws = ws
        self.posts = posts
        if ws.peers is None:
            install = ws.install_peers
            ws.peers = [
                peers.ensure_hugo(log, install=install),
                peers.ensure_pelican(log, install=install),
            ]
        self.peers = ws.peers
        self.site = ws.site(posts, ws.sizes.small_subscribers, tag="peers")
        records = generate.post_records(posts, now=ws.now)
        published = [r for r in records if r["status"] == "published"]
        self.published = len(published)
        self.used_topics = {topic for record in published for topic in record["topics"]}
        self.sites = {}
        for peer in self.peers:
            if peer.available:
                log(f"writing the {peer.name} site: {self.published:,} posts")
                folder = ws.root / f"{peer.name.lower()}-{posts}"
                self.sites[peer.name] = peers.make_peer_site(peer, folder, records, generate.TOPICS)
        self.serials = iter(range(3_000_000, 4_000_000))

    def ours_cold(self) -> Any:
        import peers

        shutil.rmtree(self.site.folder / "public", ignore_errors=True)
        return peers.time_command(self.site.command("build"), cwd=self.site.folder, env=bench_env())

    def theirs_cold(self, name: str) -> Callable[[], Any]:
        def measure() -> Any:
            site = self.sites[name]
            site.clean()
            return site.build()

        return measure

    def check(self) -> str:
        """Every site holds every post, topic and feed; returns what each wrote."""
        import peers

        shapes = {"policyfeed": peers.site_shape(self.site.folder / "public")}
        shapes.update({name: peers.site_shape(site.output) for name, site in self.sites.items()})
        for name, shape in shapes.items():
            peers.check_shape(name, shape, posts=self.published, topics=len(self.used_topics))
        return "; ".join(f"{name}: {shape.files:,} files" for name, shape in shapes.items())

    def add_post(self) -> None:
        """One new post on every site (not timed): the same title, body, topics and time."""
        from policyfeed.content.posts import slugify

        serial = next(self.serials)
        now = datetime.now(UTC).replace(microsecond=0)
        record = generate.post_records(1, now=now, seed=serial)[0]
        record.update(
            title=f"{record['title']} {serial}",
            status="published",
            published_at=now,
            updated_at=None,
        )
        record["slug"] = slugify(record["title"])
        topic_options = [arg for topic in record["topics"] for arg in ("--topic", topic)]
        self.site.run(
            "posts", "add", "--title", record["title"], "--body", record["body"],
            "--summary", record["summary"], "--author", record["author"], *topic_options,
            "--publish",
        )  # fmt: skip
        self.published += 1
        self.used_topics.update(record["topics"])
        for site in self.sites.values():
            site.add_post(record)

    def ours_again(self) -> Any:
        import peers

        return peers.time_command(self.site.command("build"), cwd=self.site.folder, env=bench_env())


def _peer_figures(
    ws: Workspace, bench: PeerBench, key: str, label: str, targets: dict[str, float | None]
) -> list[Figure]:
    figures = []
    for peer in bench.peers:
        figure = Figure(
            f"{key}-{peer.name.lower()}",
            label,
            f"{peer.name}, same posts",
            "s",
            limit=targets.get(peer.name),
        )
        if not peer.available:
            figure.unavailable, figure.missing_peer = peer.problem, True
        figures.append(figure)
    return figures


def _settle_peers(
    figures: list[Figure], ours: list[Any], theirs: dict[str, list[Any]], note: str
) -> None:
    import statistics as stats

    for figure in figures:
        name = figure.baseline_label.split(",")[0]
        if figure.missing_peer:
            continue
        figure.settle([t.wall for t in ours], [t.wall for t in theirs[name]])
        our_cpu = stats.median(t.cpu for t in ours)
        their_cpu = stats.median(t.cpu for t in theirs[name])
        figure.note = (
            f"{note}; CPU (user+system, median): policyfeed {_amount(our_cpu, 's')}, {name} "
            f"{_amount(their_cpu, 's')} ({our_cpu / their_cpu:.2f}x)"
        )


def figure_peers_cold(ws: Workspace, posts: int, targets: dict[str, float | None]) -> list[Figure]:
    label = f"cold full build, {posts:,} posts, wall (empty output folder, no cache)"
    bench = PeerBench.of(ws, posts)
    figures = _peer_figures(ws, bench, f"cold-{posts}", label, targets)
    names = list(bench.sites)
    samples = rotated(
        [bench.ours_cold, *(bench.theirs_cold(name) for name in names)], ws.sizes.peer_runs
    )
    shapes = bench.check()
    versions = ", ".join(f"{p.name} {p.version}" for p in bench.peers if p.available)
    _settle_peers(
        figures,
        samples[0],
        dict(zip(names, samples[1:], strict=True)),
        f"each side builds its whole site from nothing ({shapes}); {versions}",
    )
    return figures


def figure_peers_new_post(
    ws: Workspace, posts: int, targets: dict[str, float | None]
) -> list[Figure]:
    label = f"build after one new post, {posts:,} posts, wall"
    bench = PeerBench.of(ws, posts)
    figures = _peer_figures(ws, bench, f"new-post-{posts}", label, targets)
    names = list(bench.sites)
    if not (bench.site.folder / "public").exists():  # a first build, not timed
        bench.ours_cold()
    for name in names:
        if not bench.sites[name].output.exists():
            bench.theirs_cold(name)()
    ours: list[Any] = []
    theirs: dict[str, list[Any]] = {name: [] for name in names}
    for run_index in range(ws.sizes.peer_runs):
        bench.add_post()
        order: list[tuple[str, Callable[[], Any]]] = [("policyfeed", bench.ours_again)]
        order += [(name, bench.sites[name].build) for name in names]
        for step in range(len(order)):
            name, measure = order[(run_index + step) % len(order)]
            (ours if name == "policyfeed" else theirs[name]).append(measure())
    bench.check()
    _settle_peers(
        figures,
        ours,
        theirs,
        "each run adds one post to every site (not timed), then times the build that puts it "
        "on the site: policyfeed renders what changed, Hugo rebuilds (it has no incremental "
        "build outside its server), Pelican rebuilds with its content cache on",
    )
    return figures


def figure_peers(ws: Workspace) -> list[Figure]:
    """The peers at the issue's sizes: judged against Hugo, Pelican reported."""
    big, small = ws.sizes.peer_posts, ws.sizes.peer_small_posts
    figures = figure_peers_cold(ws, big, {"Hugo": 0.7})
    figures += figure_peers_new_post(ws, big, {"Hugo": 0.1})
    figures += figure_peers_cold(ws, small, {})
    return figures


# --- the table ---------------------------------------------------------------------------------
def _amount(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        if value < 0.01:
            return f"{value * 1000:.1f} ms"
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "msg/s":
        return f"{value:,.0f} msg/s"
    return f"{value:,.1f} {unit}"


def _spread(samples: Sequence[float], median: float | None, unit: str) -> str:
    """``min / median / max`` of several samples; the value alone for one."""
    if len(samples) < 2 or median is None:
        return _amount(median, unit)
    low, high = min(samples), max(samples)
    if unit == "s" and high >= 1 and low >= 0.01:  # one unit for the three: "1.10 / 1.20 / 1.31 s"
        return f"{low:.2f} / {median:.2f} / {high:.2f} s"
    return " / ".join(_amount(value, unit) for value in (low, median, high))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def render_table(figures: Sequence[Figure], title: str) -> str:
    """One Markdown table (it goes into the README as it is), then its notes."""
    header = [
        "figure", "compared with", "policyfeed (min / median / max)",
        "baseline (min / median / max)", "ratio of medians", "target", "result",
    ]  # fmt: skip
    lines = [
        title,
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] * len(header)) + " |",
    ]
    notes = []
    for figure in figures:
        ratio = figure.ratio
        label = figure.label
        why = _last_line(figure.error) or figure.unavailable or figure.note
        if why:
            notes.append(f"[{len(notes) + 1}] {why}")
            label += f" [{len(notes)}]"
        cells = [
            label,
            figure.baseline_label,
            _spread(figure.samples, figure.measured, figure.unit),
            _spread(figure.baseline_samples, figure.baseline, figure.unit),
            "-" if ratio is None else f"{ratio:.2f}x",
            figure.target,
            figure.verdict,
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def write_results(path: Path, figures: Sequence[Figure], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**meta, "figures": [figure.as_dict() for figure in figures]}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# --- main --------------------------------------------------------------------------------------
FIGURES: dict[str, Callable[[Workspace], Figure | list[Figure]]] = {
    "help": figure_help,
    "peers": figure_peers,
    "build": figure_build,
    "publish": figure_publish,
    "build-new-post": figure_build_new_post,  # after publish: it adds posts to both sites
    "import": figure_import,
    "personalise": figure_personalise,
    "dkim": figure_dkim,
    "smtp": figure_smtp,
    "memory": figure_memory,
    "outbox": lambda ws: bench_delivery.figure_outbox(ws),
    "biglist": lambda ws: bench_delivery.figure_biglist(ws),
    "smtp-connections": lambda ws: bench_delivery.figure_smtp_connections(ws),
}


def run_figures(names: Sequence[str], ws: Workspace) -> list[Figure]:
    """Measure each named figure; one that fails is reported as an error, not a crash."""
    figures = []
    for name in names:
        log(f"{name} ...")
        started = time.perf_counter()
        try:
            made = FIGURES[name](ws)
            some = made if isinstance(made, list) else [made]
        except Exception as exc:  # report it in the table and go on with the others
            error = f"{type(exc).__name__}: {exc}"[-4000:]  # a traceback ends with its cause
            some = [Figure(name, name, "-", "s", limit=0, error=error)]
        verdicts = ", ".join(figure.verdict for figure in some)
        log(f"{name}: {verdicts} ({time.perf_counter() - started:.1f} s)")
        figures.extend(some)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="policyfeed benchmarks (make bench)")
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer runs")
    parser.add_argument("--only", help=f"comma-separated figures: {', '.join(FIGURES)}")
    parser.add_argument("--import-posts", type=int, help="posts in the import figure")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument(
        "--no-install", action="store_true", help="do not install missing peers (Hugo, Pelican)"
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.import_posts:
        sizes = replace(sizes, import_posts=args.import_posts)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(FIGURES)
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(unknown)}")
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="policyfeed-bench-"))
    try:
        workspace = Workspace(root, sizes, now, install_peers=not args.no_install)
        figures = run_figures(names, workspace)
    finally:
        if args.keep:
            log(f"generated data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    elapsed = time.perf_counter() - started
    mode = "quick" if args.quick else "full"
    title = (
        f"policyfeed benchmarks: {mode} run, {elapsed / 60:.1f} min, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; medians of paired runs"
    )
    print(render_table(figures, title), flush=True)
    write_results(
        args.json,
        figures,
        {
            "mode": mode,
            "sizes": asdict(sizes),
            "started": now.isoformat(),
            "elapsed_seconds": round(elapsed, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    )
    log(f"results written to {args.json}")
    return 1 if any(figure.error for figure in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
