"""The scheduler examples in docs/ run `publish` at the configured schedule, and agree with
each other and with the README."""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from croniter import croniter

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DAYS = {
    "MON": "Mon",
    "TUE": "Tue",
    "WED": "Wed",
    "THU": "Thu",
    "FRI": "Fri",
    "SAT": "Sat",
    "SUN": "Sun",
}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DOCS / "systemd" / name)
    return parser


def demo_schedule() -> tuple[str, str]:
    config = tomllib.loads((ROOT / "policyfeed.toml").read_text())
    return config["digest"]["schedule"], config["site"]["timezone"]


def crontab_line() -> str:
    lines = [
        line for line in (DOCS / "crontab").read_text().splitlines() if line and line[0] != "#"
    ]
    assert len(lines) == 1
    return lines[0]


def test_the_service_runs_publish_once_and_retries_only_exit_75() -> None:
    service = unit("policyfeed-publish.service")["Service"]
    command = shlex.split(service["ExecStart"])
    assert command[0].endswith("/policyfeed") and command[-1] == "publish"
    assert service["Type"] == "oneshot"
    assert service["Restart"] == "on-failure"
    assert set(service["RestartPreventExitStatus"].split()) == {"1", "2"}


def test_the_timer_fires_at_the_configured_schedule_and_catches_up_at_boot() -> None:
    schedule, timezone = demo_schedule()
    minute, hour, _, _, weekday = schedule.split()
    timer = unit("policyfeed-publish.timer")["Timer"]
    assert (
        timer["OnCalendar"]
        == f"{DAYS[weekday]} *-*-* {int(hour):02}:{int(minute):02}:00 {timezone}"
    )
    assert timer["Persistent"] == "true"


def test_the_crontab_line_runs_publish_on_the_scheduled_day_from_the_scheduled_hour() -> None:
    schedule, _ = demo_schedule()
    fields = crontab_line().split(None, 5)
    assert croniter.is_valid(" ".join(fields[:5]))
    minute, hour, _, _, weekday = schedule.split()
    assert fields[0] == minute and fields[1].split("-")[0] == hour and fields[4] == weekday
    assert re.search(r"policyfeed .*publish", fields[5])


def test_scheduling_md_shows_the_files_as_they_are() -> None:
    text = (DOCS / "scheduling.md").read_text()
    assert crontab_line() in text
    for name, section in (
        ("policyfeed-publish.timer", "Timer"),
        ("policyfeed-publish.service", "Service"),
    ):
        for key in ("OnCalendar", "ExecStart", "Restart", "RestartPreventExitStatus"):
            if key in unit(name)[section]:
                assert f"{key}={unit(name)[section][key]}" in text, (name, key)


def test_the_readme_shows_the_same_crontab_line() -> None:
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("README.md is not written yet")
    assert crontab_line() in readme.read_text()


def test_the_scheduling_guide_marks_unsure_messages_that_arrived_before_resending() -> None:
    """--resend-ambiguous sends every unsure message again: those the relay did take must be
    marked sent first, or each arrives twice."""
    guide = " ".join((DOCS / "scheduling.md").read_text().split())
    section = guide.split("## Interrupted deliveries", 1)[1].split("## ", 1)[0]
    assert "policyfeed issue mark-sent" in section
    assert section.index("mark-sent") < section.index("--resend-ambiguous")
