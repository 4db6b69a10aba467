"""The tools a user would pick instead of policyfeed, as peers in ``make bench``: Hugo and Pelican.

Both get the same posts as policyfeed (``generate.post_records``, same seed and clock) and are
set up to write the same kind of site: a page per post, a page per topic, a home page with the
newest posts and the topics, a main feed and a feed per topic (the newest ``FEED_LIMIT`` posts,
full content), with the same URLs as policyfeed (``posts/<slug>/``, ``topics/<slug>/``).
Each has minimal templates of its own (``peer_sites/``), close to policyfeed's default ones.
Drafts are left out of their content (policyfeed keeps them in its database and does not
publish them either).
Every post is reachable from the home page: policyfeed's archive pages (``archive/N/``, 50 posts
each) are, for the peers, the home page paginated by 50.

What each writes on top: nothing for the peers; policyfeed also writes Atom and JSON Feed next
to each RSS feed, the RFC 5005 archive pages, OPML and the digest's web archive.

Installing them, where missing (``ensure_hugo``, ``ensure_pelican``):

- Hugo from Debian (``apt-get install -y hugo``), only when running as root with apt-get;
  otherwise the figures say that Hugo is missing and how to install it.
- Pelican (version ``PELICAN``) in a virtual environment of its own under
  ``benchmarks/.peers/`` (git-ignored), made with this Python and pip from PyPI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERS_DIR = HERE / ".peers"
SOURCES = HERE / "peer_sites"  # each peer's templates and configuration
PELICAN = "4.12.0"
PELICAN_VENV = PEERS_DIR / f"pelican-{PELICAN}"
INSTALL_TIMEOUT = 600  # seconds for apt-get or pip
BUILD_TIMEOUT = 900

Log = Callable[[str], None]


# --- installing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Peer:
    """A peer's command line (empty when it is missing), its version, or why it is missing."""

    name: str
    command: tuple[str, ...] = ()
    version: str = ""
    problem: str = ""

    @property
    def available(self) -> bool:
        return bool(self.command)


def _version(command: Sequence[str]) -> str:
    try:
        done = subprocess.run([*command], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    said = (done.stdout or done.stderr).strip().splitlines()
    return said[0] if said else ""


def ensure_hugo(log: Log, *, install: bool = True) -> Peer:
    """Hugo on PATH; installed from Debian (apt-get, as root) when missing and ``install``."""
    found = shutil.which("hugo")
    if found is None and not install:
        return Peer("Hugo", problem="Hugo is not installed (make bench installs it)")
    if found is None:
        apt = shutil.which("apt-get")
        if os.geteuid() != 0 or apt is None:
            why = "not root" if apt else "no apt-get on this machine"
            problem = (
                f"Hugo is not installed and make bench cannot install it ({why}): "
                "install Debian's package (sudo apt-get install hugo) or put hugo on PATH"
            )
            log(problem)
            return Peer("Hugo", problem=problem)
        log("Hugo is missing: installing Debian's package (apt-get install -y hugo)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        steps = ([apt, "install", "-y", "-q", "hugo"],)
        done = _run_steps(steps, env)
        if done.returncode != 0:  # an old package list: update it once and try again
            done = _run_steps(([apt, "update", "-q"], [apt, "install", "-y", "-q", "hugo"]), env)
        found = shutil.which("hugo")
        if done.returncode != 0 or found is None:
            tail = _tail(done.stderr or done.stdout)
            problem = f"Hugo could not be installed with apt-get: {tail}"
            log(problem)
            return Peer("Hugo", problem=problem)
    said = _version([found, "version"]).split()  # "hugo v0.111.3+extended linux/amd64 ..."
    version = said[1] if len(said) > 1 else "(version unknown)"
    return Peer("Hugo", (found,), version)


def ensure_pelican(log: Log, *, install: bool = True) -> Peer:
    """Pelican in its own virtual environment under benchmarks/.peers/, made when missing and
    ``install``."""
    script = PELICAN_VENV / "bin" / "pelican"
    stamp = PELICAN_VENV / ".installed"
    if not stamp.exists() and not install:
        return Peer("Pelican", problem=f"Pelican {PELICAN} is not installed (make bench does)")
    if not stamp.exists():
        log(f"Pelican {PELICAN} is missing: installing it into {_shown(PELICAN_VENV)} (pip)")
        shutil.rmtree(PELICAN_VENV, ignore_errors=True)
        python = PELICAN_VENV / "bin" / "python"
        done = _run_steps(
            (
                [sys.executable, "-m", "venv", str(PELICAN_VENV)],
                [str(python), "-m", "pip", "install", "--quiet", f"pelican=={PELICAN}"],
            ),
            dict(os.environ),
        )
        if done.returncode != 0 or not script.exists():
            said = _tail(done.stderr or done.stdout)
            problem = f"Pelican {PELICAN} could not be installed: {said}"
            log(problem)
            return Peer("Pelican", problem=problem)
        stamp.write_text(f"pelican=={PELICAN}\n", encoding="utf-8")
    return Peer("Pelican", (str(script),), _version([str(script), "--version"]))


def _run_steps(
    steps: Iterable[Sequence[str]], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    done = subprocess.CompletedProcess[str]([], 0, "", "")
    for step in steps:
        try:
            done = subprocess.run(
                list(step), capture_output=True, text=True, env=env, timeout=INSTALL_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess(list(step), 1, "", str(exc))
        if done.returncode != 0:
            break
    return done


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(HERE.parent))
    except ValueError:
        return str(path)


# --- timing a command ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # user + system of the process and its children


def time_command(command: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> Timing:
    """Wall and CPU seconds of one run of ``command``; a non-zero exit is an error."""
    import tempfile
    import threading

    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(
            list(command), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        killer = threading.Timer(BUILD_TIMEOUT, child.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        child.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            said = _tail(err.read().decode(errors="replace"))
            raise RuntimeError(f"{Path(command[0]).name} exited {code}: {said}")
    return Timing(wall, usage.ru_utime + usage.ru_stime)


# --- the sites ----------------------------------------------------------------------------------
FEED_LIMIT = 50


def _slug(name: str) -> str:
    from policyfeed.content.posts import slugify

    return slugify(name)


def _published(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["status"] == "published"]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _copy_sources(kind: str, folder: Path, **values: object) -> None:
    """The peer's templates and configuration from ``peer_sites/KIND`` into ``folder``; files
    ending in ``.in`` are filled in with ``values`` (str.format) and lose the suffix."""
    source = SOURCES / kind
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        target = folder / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".in":
            text = path.read_text(encoding="utf-8").format(**values)
            target.with_suffix("").write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(path, target)


class PeerSite:
    """A peer's site folder: its sources, how to build it, and where the output goes."""

    name = ""

    def __init__(self, folder: Path, peer: Peer) -> None:
        self.folder = folder
        self.peer = peer
        self.output = folder / "public"

    def write(self, records: Sequence[dict[str, Any]], topics: Sequence[str]) -> None:
        raise NotImplementedError

    def add_post(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def clean(self) -> None:
        """Back to a cold start: no output, no cache."""
        shutil.rmtree(self.output, ignore_errors=True)

    def build(self) -> Timing:
        return time_command(self.command(), cwd=self.folder, env=self.env())

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith(("HUGO", "PELICAN"))}


class HugoSite(PeerSite):
    name = "Hugo"

    def write(self, records: Sequence[dict[str, Any]], topics: Sequence[str]) -> None:
        import generate

        _copy_sources("hugo", self.folder, base_url=generate.BASE_URL, timezone=generate.TIMEZONE)
        used = {topic for record in _published(records) for topic in record["topics"]}
        for topic in sorted(used & set(topics)):
            index = self.folder / "content" / "topics" / _slug(topic) / "_index.md"
            index.parent.mkdir(parents=True, exist_ok=True)
            index.write_text(json.dumps({"title": topic}) + "\n", encoding="utf-8")
        (self.folder / "content" / "posts").mkdir(parents=True, exist_ok=True)
        for record in _published(records):
            self.add_post(record)

    def add_post(self, record: dict[str, Any]) -> None:
        front: dict[str, Any] = {
            "title": record["title"],
            "slug": record["slug"],
            "date": _iso(record["published_at"]),
            "summary": record["summary"],
            "author": record["author"],
            "topics": [_slug(t) for t in record["topics"]],
        }
        if record.get("updated_at"):
            front["lastmod"] = _iso(record["updated_at"])
        path = self.folder / "content" / "posts" / f"{record['slug']}.html"
        path.write_text(
            json.dumps(front, ensure_ascii=False, indent=1) + "\n" + record["body"] + "\n",
            encoding="utf-8",
        )

    def command(self) -> list[str]:
        cache = self.folder / "hugo-cache"
        return [*self.peer.command, "--quiet", "--cacheDir", str(cache), "-d", str(self.output)]

    def clean(self) -> None:
        super().clean()
        shutil.rmtree(self.folder / "resources", ignore_errors=True)
        shutil.rmtree(self.folder / "hugo-cache", ignore_errors=True)


def _pelican_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def _attr(text: str) -> str:
    import html

    return html.escape(text, quote=True)


class PelicanSite(PeerSite):
    name = "Pelican"

    def write(self, records: Sequence[dict[str, Any]], topics: Sequence[str]) -> None:
        import generate

        _copy_sources(
            "pelican",
            self.folder,
            site_url=generate.BASE_URL.rstrip("/"),
            timezone=generate.TIMEZONE,
            limit=FEED_LIMIT,
        )
        (self.folder / "content").mkdir(parents=True, exist_ok=True)
        for record in _published(records):
            self.add_post(record)

    def add_post(self, record: dict[str, Any]) -> None:
        meta = {
            "date": _pelican_date(record["published_at"]),
            "slug": record["slug"],
            "author": record["author"],
            "tags": ", ".join(record["topics"]),
            "summary": record["summary"],
        }
        if record.get("updated_at"):
            meta["modified"] = _pelican_date(record["updated_at"])
        head = "".join(
            f'<meta name="{name}" content="{_attr(value)}">\n' for name, value in meta.items()
        )
        page = (
            f"<html>\n<head>\n<title>{_attr(record['title'])}</title>\n{head}</head>\n"
            f"<body>\n{record['body']}\n</body>\n</html>\n"
        )
        (self.folder / "content" / f"{record['slug']}.html").write_text(page, encoding="utf-8")

    def command(self) -> list[str]:
        return [
            *self.peer.command, "content", "-s", "pelicanconf.py", "-o", str(self.output),
            "--quiet",
        ]  # fmt: skip

    def clean(self) -> None:
        super().clean()
        shutil.rmtree(self.folder / "cache", ignore_errors=True)

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("PYTHONPATH", None)
        return env


SITES: dict[str, type[PeerSite]] = {"Hugo": HugoSite, "Pelican": PelicanSite}


def make_peer_site(
    peer: Peer, folder: Path, records: Sequence[dict[str, Any]], topics: Sequence[str]
) -> PeerSite:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    site = SITES[peer.name](folder, peer)
    site.write(records, topics)
    return site


# --- checking what a site holds -----------------------------------------------------------------
@dataclass(frozen=True)
class SiteShape:
    """What a built site holds: post pages, topic pages, and the main and topic feeds' items."""

    post_pages: int
    topic_pages: int
    main_feed_items: int
    topic_feeds: int
    files: int

    def describe(self) -> str:
        return (
            f"{self.post_pages:,} post pages, {self.topic_pages} topic pages, "
            f"{self.topic_feeds} topic feeds, {self.files:,} files"
        )


def site_shape(output: Path) -> SiteShape:
    """Count what ``output`` holds (the same layout for policyfeed and the peers)."""
    import feedparser

    main = output / "feed.xml"
    items = len(feedparser.parse(main.read_bytes()).entries) if main.exists() else 0
    return SiteShape(
        post_pages=sum(1 for _ in output.glob("posts/*/index.html")),
        topic_pages=sum(1 for _ in output.glob("topics/*/index.html")),
        main_feed_items=items,
        topic_feeds=sum(1 for _ in output.glob("topics/*/feed.xml")),
        files=sum(1 for p in output.rglob("*") if p.is_file()),
    )


def check_shape(name: str, shape: SiteShape, *, posts: int, topics: int) -> None:
    """A peer site that lacks pages or feeds would make a meaningless figure: refuse it."""
    expected = (posts, topics, min(FEED_LIMIT, posts), topics)
    found = (shape.post_pages, shape.topic_pages, shape.main_feed_items, shape.topic_feeds)
    if found != expected:
        raise RuntimeError(
            f"{name} built an incomplete site: (post pages, topic pages, main feed items, "
            f"topic feeds) = {found}, expected {expected}"
        )
