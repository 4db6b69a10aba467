"""Realistic synthetic data for the benchmarks: years of posts, topics, chapters and subscribers.

Posts carry 1-5 KB HTML bodies in the form the importer stores them (already sanitised, so the
same records can be imported or bulk-inserted), 1-3 of a few dozen topics, and dates spread over
years; past posts went out in weekly issues, and a handful of new posts wait for the next.

The same seed and ``now`` always give the same data.

Usage:
    python benchmarks/generate.py OUT.db --posts 100000 --subscribers 10000
    python benchmarks/generate.py OUT.jsonl --posts 100000      # an import file instead
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from policyfeed.content.posts import slugify
from policyfeed.model import make_guid
from policyfeed.store import open_db, to_db_time, transaction

BASE_URL = "https://policy.example.org/"
DOMAIN = "policy.example.org"
SEED = 20120725
RECENT_POSTS = 8  # posts since the last issue went out: the next issue's content
YEARS = 12
SCHEDULE = "0 8 * * MON"  # the digest goes out on Mondays at 08:00, site time
TIMEZONE = "Europe/Zurich"
DELIVERED_ISSUES = 4  # the last issues keep their deliveries rows (older ones were pruned)

CONFIG_TEXT = """\
# The benchmark site (written by benchmarks/generate.py).
[site]
title = "Public Policy (benchmark)"
description = "Synthetic posts for the benchmarks."
base_url = "{base_url}"
language = "en"
timezone = "{timezone}"
author = "Public Policy team"
editor_email = "policy-editor@example.org"

[build]
output_dir = "public"
feed_limit = 50

[digest]
mail_from = "policy-digest@example.org"
mail_from_name = "Public Policy digest"
schedule = "{schedule}"
max_lateness = "3650d"
outbox_dir = "outbox"
postal_address = "Public Policy team, 1775 Wiehle Avenue, Reston, VA 20190, USA"
"""

TOPICS = [
    "Internet governance", "ITU / WCIT", "IETF", "Open standards", "Copyright", "Trade agreements",
    "ACTA", "TPPA", "Privacy", "Data protection", "Cybersecurity", "Encryption",
    "Network neutrality", "Access and development", "Broadband", "Spectrum", "IPv6", "DNSSEC",
    "Domain names", "ICANN", "Human rights", "Freedom of expression", "Surveillance",
    "Content regulation", "Intermediary liability", "Competition", "Interconnection",
    "Internet exchange points", "Routing security", "Community networks", "Digital divide",
    "Capacity building", "Multistakeholder model", "WSIS", "IGF", "Regional policy",
]  # fmt: skip

VOCABULARY = (
    "internet governance policy multistakeholder standards open network access operators "
    "regulators government civil society technical community users infrastructure broadband "
    "proposal treaty delegation council assembly member states consultation framework "
    "interoperability security privacy encryption routing exchange traffic content platform "
    "development capacity regional national international cooperation innovation economy "
    "rights expression trust resilience spectrum licensing competition investment research "
    "meeting session report outcome discussion agenda draft text amendment position statement "
    "principles transparency accountability inclusive sustainable global local community "
    "participation dialogue stakeholders experts fellows workshop forum chapter members"
)
WORDS = VOCABULARY.split()
AUTHORS = [
    "Public Policy team", "Ana Costa", "Bilal Haddad", "Chen Wei", "Dagny Lund", "Emeka Obi",
    "Fatima Zahra", "Grace Mwangi", "Hiroshi Sato", "Isabel Ortiz", "Jonas Berg", "Karin Holt",
]  # fmt: skip
FIRST_NAMES = "Ada Ben Chloe Dev Elif Femi Gita Hugo Ines Jamal Kofi Lena Mina Nils Omar Priya"
LAST_NAMES = "Abe Bauer Cruz Diallo Eriksen Fischer Garcia Haddad Ito Jensen Kim Lopez Moreau Ng"
MAIL_DOMAINS = ("example.org", "example.net", "example.com")
CHAPTERS = [
    # slug, name, intro, topic filter (indexes into TOPICS; empty = every topic)
    ("geneva", "Geneva chapter", "News from Geneva and the UN agencies.", [0, 1, 19, 33, 34]),
    ("africa", "Africa chapter", "Policy news for members across Africa.", [13, 14, 29, 30, 31]),
    ("europe", "Europe chapter", "", [8, 9, 12, 20, 23, 24]),
    ("asia-pacific", "Asia-Pacific chapter", "From the Asia-Pacific bureau.", []),
    ("latin-america", "Latin America chapter", "Noticias de la región.", [4, 5, 6, 7, 35]),
    ("north-america", "North America chapter", "", []),
]


@dataclass(frozen=True)
class Dataset:
    """What :func:`generate_database` wrote."""

    path: Path
    posts: int
    published: int
    recent: int
    subscribers: int
    active_subscribers: int
    chapters: int
    topics: int
    issues: int


def _sentences(rng: random.Random, count: int) -> list[str]:
    result = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 22))]
        words[0] = words[0].capitalize()
        result.append(" ".join(words) + rng.choice((".", ".", ".", "?", ";")))
    return result


class _TextFactory:
    """Cheap, varied prose: paragraphs are drawn from a pool of pre-made sentences."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sentences = _sentences(rng, 3000)

    def sentence(self) -> str:
        return self.rng.choice(self.sentences)

    def title(self) -> str:
        words = [self.rng.choice(WORDS) for _ in range(self.rng.randint(4, 10))]
        return " ".join(words).capitalize()

    def block(self, serial: int) -> tuple[str, str]:
        """One block of body HTML and its plain text (as ``html_to_text`` gives it)."""
        rng = self.rng
        kind = rng.random()
        if kind < 0.08:
            heading = self.title()
            return f"<h3>{heading}</h3>", heading
        if kind < 0.16:
            items = [self.sentence() for _ in range(rng.randint(2, 5))]
            tag = rng.choice(("ul", "ol"))
            html = f"<{tag}>" + "".join(f"<li>{item}</li>" for item in items) + f"</{tag}>"
            return html, "\n".join(items)
        if kind < 0.21:
            quote = " ".join(self.sentence() for _ in range(rng.randint(1, 3)))
            return f"<blockquote><p>{quote}</p></blockquote>", quote
        parts_html: list[str] = []
        parts_text: list[str] = []
        for index in range(rng.randint(2, 6)):
            sentence = self.sentence()
            if index == 1 and rng.random() < 0.5:
                link_text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))
                href = f"https://www.example.net/documents/{serial}-{index}"
                parts_html.append(
                    f'See <a href="{href}" rel="noopener">{link_text}</a>. {sentence}'
                )
                parts_text.append(f"See {link_text}. {sentence}")
            elif index == 2 and rng.random() < 0.3:
                parts_html.append(f"<strong>{sentence}</strong>")
                parts_text.append(sentence)
            else:
                parts_html.append(sentence)
                parts_text.append(sentence)
        return "<p>" + " ".join(parts_html) + "</p>", " ".join(parts_text)

    def body(self, serial: int) -> tuple[str, str]:
        """HTML of 1-5 KB (and its text)."""
        target = self.rng.randint(1000, 5000)
        html_parts: list[str] = []
        text_parts: list[str] = []
        size = 0
        while size < 1000 or size < target:
            html, text = self.block(serial)
            if size >= 1000 and size + len(html.encode()) > 5000:
                break
            html_parts.append(html)
            text_parts.append(text)
            size += len(html.encode())
        return "".join(html_parts), "\n".join(text_parts)


def _post_times(
    rng: random.Random, count: int, now: datetime, history_end: datetime
) -> list[datetime]:
    """``RECENT_POSTS`` after ``history_end`` (up to an hour before ``now``); the rest spread
    over ``YEARS`` before it."""
    recent = min(RECENT_POSTS, count)
    window = int((now - history_end).total_seconds()) - 3600
    moments = [now - timedelta(seconds=3600 + rng.randint(0, window - 1)) for _ in range(recent)]
    span = int(timedelta(days=365 * YEARS).total_seconds())
    moments += [
        history_end - timedelta(seconds=rng.randint(0, span)) for _ in range(count - recent)
    ]
    return sorted(moment.replace(microsecond=0) for moment in moments)


def history_end(now: datetime) -> datetime:
    """The scheduled time before the current period's: the last issue that went out. Posts
    after it wait for the issue of the current period."""
    from policyfeed.schedule import current_period

    current = current_period(SCHEDULE, ZoneInfo(TIMEZONE), now).scheduled_at
    return current_period(SCHEDULE, ZoneInfo(TIMEZONE), current - timedelta(seconds=1)).scheduled_at


def post_records(count: int, *, now: datetime, seed: int = SEED) -> list[dict[str, Any]]:
    """``count`` posts as import records (the keys ``policyfeed posts import`` reads), oldest
    first; about 1% are drafts. Also carries ``_body_text`` and ``_topics`` for bulk inserts."""
    rng = random.Random(seed)
    factory = _TextFactory(rng)
    records = []
    for serial, moment in enumerate(_post_times(rng, count, now, history_end(now)), start=1):
        title = factory.title()
        body_html, body_text = factory.body(serial)
        topic_indexes = sorted(rng.sample(range(len(TOPICS)), rng.randint(1, 3)))
        record: dict[str, Any] = {
            "slug": f"{'-'.join(title.lower().split()[:6])}-{serial}",
            "title": title,
            "summary": " ".join(factory.sentence() for _ in range(rng.randint(1, 2))),
            "body": body_html,
            "author": rng.choice(AUTHORS),
            "topics": [TOPICS[i] for i in topic_indexes],
            "_body_text": body_text,
            "_topics": topic_indexes,
        }
        # The last week's posts are all published: they are what the next issue carries.
        if serial <= count - RECENT_POSTS and rng.random() < 0.01:
            record["status"] = "draft"
            record["_created"] = moment
        else:
            record["status"] = "published"
            record["published_at"] = moment
            if rng.random() < 0.05:  # an edit some days later
                edited = moment + timedelta(seconds=rng.randint(3600, 10 * 86400))
                record["updated_at"] = min(edited, now)
        records.append(record)
    return records


def write_import_file(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    """The records as JSON Lines, as ``policyfeed posts import`` reads them."""
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            public = {k: v for k, v in record.items() if not k.startswith("_")}
            for key in ("published_at", "updated_at"):
                if key in public:
                    public[key] = public[key].isoformat()
            out.write(json.dumps(public, ensure_ascii=False) + "\n")
    return path


def write_config(folder: Path) -> Path:
    """A policyfeed.toml for the benchmark site in ``folder``."""
    path = folder / "policyfeed.toml"
    path.write_text(
        CONFIG_TEXT.format(base_url=BASE_URL, schedule=SCHEDULE, timezone=TIMEZONE),
        encoding="utf-8",
    )
    return path


def _post_rows(records: list[dict[str, Any]], now: datetime) -> Iterator[dict[str, Any]]:
    for post_id, record in enumerate(records, start=1):
        published = record.get("published_at")
        updated = record.get("updated_at") or published or record["_created"]
        yield {
            "id": post_id,
            "guid": make_guid(DOMAIN, published, record["slug"]) if published else None,
            "slug": record["slug"],
            "title": record["title"],
            "summary": record["summary"],
            "body_html": record["body"],
            "body_text": record["_body_text"],
            "author": record["author"],
            "url": None,
            "status": record["status"],
            "published_at": to_db_time(published) if published else None,
            "updated_at": to_db_time(updated),
            "created_at": to_db_time(min(published or updated, now)),
        }


def subscriber_rows(count: int, chapters: int, now: datetime, seed: int) -> list[dict[str, Any]]:
    """Subscriber rows (ids from 1): mostly active, a few unsubscribed or bounced, most in a
    chapter (``chapters`` of them)."""
    rng = random.Random(seed + 1)
    first, last = FIRST_NAMES.split(), LAST_NAMES.split()
    rows = []
    for number in range(1, count + 1):
        joined = now - timedelta(seconds=rng.randint(86400, 365 * 5 * 86400))
        roll = rng.random()
        status = "active" if roll < 0.95 else ("unsubscribed" if roll < 0.98 else "bounced")
        chapter = rng.randint(1, chapters) if rng.random() < 0.9 else None
        rows.append(
            {
                "id": number,
                "email": f"member{number:06d}@{MAIL_DOMAINS[number % len(MAIL_DOMAINS)]}",
                "name": f"{rng.choice(first)} {rng.choice(last)}",
                "chapter_id": chapter,
                "status": status,
                "created_at": to_db_time(joined),
                "updated_at": to_db_time(joined),
                "unsubscribed_at": to_db_time(now - timedelta(days=1))
                if status == "unsubscribed"
                else None,
            }
        )
    if rows:  # at least one active member, whatever the draw
        rows[0]["status"], rows[0]["unsubscribed_at"] = "active", None
    return rows


def generate_database(
    path: Path,
    *,
    posts: int,
    subscribers: int,
    now: datetime,
    seed: int = SEED,
) -> Dataset:
    """Write a migrated policyfeed database with the given numbers of posts and subscribers.

    Rows go in through sqlite-utils bulk inserts in one transaction; they are the rows the
    importer and the subscriber commands would store. Past posts already went out in weekly
    issues (sent), so only the last week's posts are new for the next issue.
    """
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    records = post_records(posts, now=now, seed=seed)
    db = open_db(path)
    with transaction(db):  # one transaction: about twice as fast
        db["topics"].insert_all(
            ({"id": i, "slug": slugify(name), "name": name} for i, name in enumerate(TOPICS, 1)),
        )
        db["posts"].insert_all(_post_rows(records, now), batch_size=500)
        db["post_topics"].insert_all(
            (
                {"post_id": post_id, "topic_id": index + 1}
                for post_id, record in enumerate(records, start=1)
                for index in record["_topics"]
            ),
            batch_size=2000,
        )
        db["chapters"].insert_all(
            {"id": i, "slug": slug, "name": name, "intro": intro}
            for i, (slug, name, intro, _) in enumerate(CHAPTERS, 1)
        )
        db["chapter_topics"].insert_all(
            {"chapter_id": i, "topic_id": index + 1}
            for i, (*_, filters) in enumerate(CHAPTERS, 1)
            for index in filters
        )
        members = subscriber_rows(subscribers, len(CHAPTERS), now, seed)
        db["subscribers"].insert_all(members, batch_size=2000)
        issues = _issue_history(db, records, members, now)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.execute("ANALYZE")
    db.conn.close()
    published = sum(1 for r in records if r["status"] == "published")
    recent_cutoff = history_end(now)
    return Dataset(
        path=path,
        posts=posts,
        published=published,
        recent=sum(1 for r in records if r.get("published_at", recent_cutoff) > recent_cutoff),
        subscribers=subscribers,
        active_subscribers=sum(1 for m in members if m["status"] == "active"),
        chapters=len(CHAPTERS),
        topics=len(TOPICS),
        issues=issues,
    )


def _issue_history(
    db: Any, records: list[dict[str, Any]], members: list[dict[str, Any]], now: datetime
) -> int:
    """One sent issue per past period that had posts, holding the posts published since the
    one before (the scheduled times come from policyfeed's own schedule code). The last few
    issues keep their deliveries rows."""
    from policyfeed.schedule import next_period

    tz = ZoneInfo(TIMEZONE)
    dated = [(i, r["published_at"]) for i, r in enumerate(records, 1) if "published_at" in r]
    if not dated:
        return 0
    # Every post is either waiting (after the last issue) or in the issue that followed it.
    end = history_end(now)
    periods = []
    moment = min(moment for _, moment in dated) - timedelta(seconds=1)
    while True:
        period = next_period(SCHEDULE, tz, moment)
        if period.scheduled_at > end:
            break
        periods.append(period)
        moment = period.scheduled_at
    times = [period.scheduled_at for period in periods]
    carried: dict[int, list[int]] = {}
    for post_id, published in dated:
        index = bisect.bisect_left(times, published)
        if index < len(periods):
            carried.setdefault(index, []).append(post_id)
    issue_rows = []
    issue_post_rows = []
    for number, index in enumerate(sorted(carried), start=1):
        period = periods[index]
        sent = to_db_time(period.scheduled_at + timedelta(minutes=1))
        issue_rows.append(
            {
                "id": number,
                "number": number,
                "period": period.key,
                "subject": f"Public Policy digest #{number}",
                "note": "",
                "status": "sent",
                "created_at": sent,
                "updated_at": sent,
                "sent_at": sent,
            }
        )
        issue_post_rows += [
            {"issue_id": number, "post_id": post_id, "position": position}
            for position, post_id in enumerate(carried[index], start=1)
        ]
    db["issues"].insert_all(issue_rows, batch_size=1000)
    db["issue_posts"].insert_all(issue_post_rows, batch_size=5000)
    delivery_rows = [
        {
            "issue_id": issue["id"],
            "subscriber_id": member["id"],
            "chapter_id": member["chapter_id"],
            "message_id": f"issue-{issue['number']}.sub-{member['id']}.bench@{DOMAIN}",
            "status": "sent",
            "attempts": 1,
            "last_error": "",
            "created_at": issue["sent_at"],
            "updated_at": issue["sent_at"],
            "sent_at": issue["sent_at"],
        }
        for issue in issue_rows[-DELIVERED_ISSUES:]
        for member in members
        if member["status"] == "active"
    ]
    db["deliveries"].insert_all(delivery_rows, batch_size=5000)
    return len(issue_rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a .db file, or a .jsonl import file")
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--now", help="ISO time the data is generated around (default: the current hour)"
    )
    args = parser.parse_args(argv)
    now = (
        datetime.fromisoformat(args.now)
        if args.now
        else datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    )
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if args.out.suffix == ".jsonl":
        write_import_file(args.out, post_records(args.posts, now=now, seed=args.seed))
        print(f"wrote {args.posts} posts to {args.out}")
    else:
        dataset = generate_database(
            args.out, posts=args.posts, subscribers=args.subscribers, now=now, seed=args.seed
        )
        print(dataset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
