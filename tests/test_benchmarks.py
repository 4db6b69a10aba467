"""Smoke tests for the benchmark suite (make bench): the generator at a tiny size, and every
figure of the runner at tiny sizes, returning numbers and a well-formed table."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from policyfeed.config import load_settings
from policyfeed.content.posts import html_to_text, sanitize_html
from policyfeed.digest.issues import plan_issue
from policyfeed.schedule import current_period
from policyfeed.store import open_db

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import generate  # noqa: E402
import run  # noqa: E402

NOW = datetime(2024, 6, 5, 10, 30, tzinfo=UTC)  # a Wednesday
TINY = run.Sizes(
    big_posts=40,
    small_posts=12,
    big_subscribers=8,
    small_subscribers=3,
    import_posts=20,
    personalise_messages=20,
    smtp_messages=5,
    help_runs=1,
    import_runs=2,
    build_runs=1,
    publish_runs=1,
    personalise_runs=1,
    dkim_messages=3,
    dkim_runs=1,
    smtp_runs=1,
    memory_runs=1,
    huge_subscribers=20,
    biglist_runs=1,
    smtp_far_members=10,
    smtp_far_runs=1,
    peer_posts=30,
    peer_small_posts=12,
    peer_runs=1,
)


# --- the generator ----------------------------------------------------------------------------
def test_generated_posts_look_like_what_the_importer_stores() -> None:
    records = generate.post_records(60, now=NOW)
    sizes = [len(record["body"].encode()) for record in records]
    assert min(sizes) >= 1000 and max(sizes) <= 5000
    for record in records:
        assert sanitize_html(record["body"], generate.BASE_URL) == record["body"]
        assert html_to_text(record["body"]) == record["_body_text"]
        assert 1 <= len(record["topics"]) <= 3
    dates = [r["published_at"] for r in records if "published_at" in r]
    assert dates == sorted(dates)
    assert (dates[-1] - dates[0]).days > 365 * 5  # spread over years


def test_generator_gives_the_same_data_for_the_same_seed_and_time() -> None:
    assert generate.post_records(30, now=NOW) == generate.post_records(30, now=NOW)
    assert generate.post_records(30, now=NOW) != generate.post_records(30, now=NOW, seed=1)


def test_generated_database_has_the_next_issue_waiting(tmp_path: Path) -> None:
    dataset = generate.generate_database(tmp_path / "bench.db", posts=50, subscribers=20, now=NOW)
    assert (dataset.posts, dataset.subscribers, dataset.recent) == (50, 20, generate.RECENT_POSTS)
    db = sqlite_utils.Database(tmp_path / "bench.db")
    assert db["posts"].count == 50
    assert db["subscribers"].count == 20
    assert db["chapters"].count == len(generate.CHAPTERS)
    assert db["issues"].count == dataset.issues > 0
    assert db["deliveries"].count > 0
    db.conn.close()

    config = generate.write_config(tmp_path)
    settings = load_settings(config, environ={}, cwd=tmp_path)
    period = current_period(settings.schedule, settings.tz, NOW)
    store = open_db(tmp_path / "bench.db")
    keys = [row["period"] for row in store["issues"].rows]
    planned = plan_issue(store, settings, now=NOW)
    store.conn.close()
    assert period.key not in keys  # the current period is still to be published
    assert all(current_period(settings.schedule, settings.tz, run_at(k)).key == k for k in keys)
    assert planned is not None
    assert len(planned[1]) == generate.RECENT_POSTS


def run_at(key: str) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(key).replace(tzinfo=ZoneInfo(generate.TIMEZONE))


# --- figures and the table --------------------------------------------------------------------
def test_paired_runs_alternate_which_side_goes_first() -> None:
    calls: list[str] = []
    ours, theirs = run.paired(
        lambda: calls.append("ours") or 2.0, lambda: calls.append("base") or 1.0, 3
    )
    assert calls == ["base", "ours", "ours", "base", "base", "ours"]
    assert (ours, theirs) == ([2.0] * 3, [1.0] * 3)


def test_a_spent_time_budget_stops_paired_runs_after_the_minimum() -> None:
    ours, theirs = run.paired(lambda: 1.0, lambda: 1.0, 5, budget=0, min_runs=2)
    assert len(ours) == len(theirs) == 2


@pytest.mark.parametrize(
    ("figure", "verdict"),
    [
        (run.Figure("a", "a", "b", "s", limit=1.5).settle([3, 1.4, 1.5], [1, 1, 2]), "met"),
        (run.Figure("a", "a", "b", "s", limit=1.5).settle([1.6], [1.0]), "MISSED"),
        (
            run.Figure("a", "a", "b", "msg/s", limit=0.9, higher_is_better=True).settle(
                [85], [100]
            ),
            "MISSED",
        ),
        (
            run.Figure("a", "a", "b", "s", limit=5, absolute_limit=1.0).settle([1.2], [1.0]),
            "MISSED",
        ),
        (run.Figure("a", "a", "b", "s", limit=5, unavailable="later"), run.NOT_AVAILABLE),
    ],
)
def test_a_figure_is_judged_by_the_ratio_of_medians_and_its_limits(
    figure: run.Figure, verdict: str
) -> None:
    assert figure.verdict == verdict


def _table_rows(table: str) -> list[list[str]]:
    rows = [line for line in table.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_table_is_one_markdown_table_with_a_row_per_figure() -> None:
    figures = [
        run.Figure("a", "first", "base", "s", limit=2, note="why").settle([0.3], [0.2]),
        run.Figure("b", "second", "base", "MB", limit=2, unavailable="not built"),
    ]
    rows = _table_rows(run.render_table(figures, "title"))
    assert len(rows) == 4  # header, rule, two figures
    assert {len(row) for row in rows} == {7}
    assert rows[2] == ["first [1]", "base", "300 ms", "200 ms", "1.50x", "<= 2x", "met"]
    assert rows[3][-1] == run.NOT_AVAILABLE


PEER_KEYS = [
    f"{kind}-{peer}"
    for kind in ("cold-30", "new-post-30", "cold-12")
    for peer in ("hugo", "pelican")
]


def test_every_figure_at_tiny_sizes_gives_numbers_or_says_why_not(tmp_path: Path) -> None:
    # The peers are used where installed (make bench installs them; a test does not).
    now = datetime.now(UTC).replace(microsecond=0)
    workspace = run.Workspace(tmp_path, TINY, now, install_peers=False)
    figures = run.run_figures(list(run.FIGURES), workspace)
    # The peers figure gives a row per size and peer (it used to be one row per figure).
    rows_of = {"peers": PEER_KEYS, "biglist": ["biglist-memory", "biglist-time"]}
    expected = [key for name in run.FIGURES for key in rows_of.get(name, [name])]
    assert [f.key for f in figures] == expected
    for figure in figures:
        assert not figure.error, figure.error
        if figure.unavailable:
            assert figure.verdict in (run.NOT_AVAILABLE, run.PEER_MISSING)
            continue
        assert figure.measured is not None and figure.measured > 0, figure.key
        assert figure.baseline is not None and figure.baseline > 0, figure.key
        judged = figure.limit is not None
        assert figure.ratio is not None
        assert figure.verdict in (("met", "MISSED") if judged else ("-",))
        assert len(figure.samples) == len(figure.baseline_samples) == figure.runs >= 1
    rows = _table_rows(run.render_table(figures, "tiny"))
    assert len(rows) == 2 + len(expected)
    assert {len(row) for row in rows} == {7}


def test_rotated_runs_start_with_each_side_in_turn() -> None:
    calls: list[str] = []
    samples = run.rotated(
        [
            lambda: calls.append("a") or 1,
            lambda: calls.append("b") or 2,
            lambda: calls.append("c") or 3,
        ],
        3,
    )
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert samples == [[1] * 3, [2] * 3, [3] * 3]


def test_the_table_shows_min_median_and_max_of_several_runs() -> None:
    figure = run.Figure("a", "first", "base", "s", limit=None).settle([1.2, 1.1, 1.31], [2, 3, 4])
    row = _table_rows(run.render_table([figure], "title"))[2]
    assert row[2:] == ["1.10 / 1.20 / 1.31 s", "2.00 / 3.00 / 4.00 s", "0.40x", "-", "-"]


def test_a_missing_peer_is_reported_not_measured() -> None:
    import peers

    figure = run.Figure("a", "first", "Hugo", "s", limit=0.7)
    figure.unavailable, figure.missing_peer = "Hugo is not installed", True
    assert figure.verdict == run.PEER_MISSING
    assert "Hugo is not installed" in run.render_table([figure], "title")
    assert not peers.Peer("Hugo", problem="missing").available


def test_the_peer_sites_hold_the_same_posts_topics_and_feeds(tmp_path: Path) -> None:
    import peers

    records = generate.post_records(25, now=NOW)
    published = [r for r in records if r["status"] == "published"]
    topics = {t for r in published for t in r["topics"]}
    found = [peers.ensure_hugo(print, install=False), peers.ensure_pelican(print, install=False)]
    available = [peer for peer in found if peer.available]
    if not available:
        pytest.skip("neither Hugo nor Pelican is installed (make bench installs them)")
    for peer in available:
        site = peers.make_peer_site(peer, tmp_path / peer.name, records, generate.TOPICS)
        site.build()
        shape = peers.site_shape(site.output)
        peers.check_shape(peer.name, shape, posts=len(published), topics=len(topics))
        slug = published[0]["slug"]
        page = (site.output / "posts" / slug / "index.html").read_text(encoding="utf-8")
        assert published[0]["title"] in page
        assert published[0]["body"][:200] in page  # the body as it is, not escaped
    with pytest.raises(RuntimeError, match="incomplete site"):
        peers.check_shape("X", shape, posts=len(published) + 1, topics=len(topics))


def test_runner_writes_the_table_and_the_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run, "QUICK", TINY)
    results = tmp_path / "latest.json"
    assert run.main(["--quick", "--only", "help", "--json", str(results)]) == 0
    table = capsys.readouterr().out
    assert "`policyfeed --help`, whole process" in table
    data: dict[str, Any] = json.loads(results.read_text())
    assert data["mode"] == "quick"
    assert [f["key"] for f in data["figures"]] == ["help"]
    assert data["figures"][0]["ratio"] > 0
