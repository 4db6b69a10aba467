"""From the digest schedule (a cron expression in the site's time zone) to the period of a run.

A period is named by its scheduled time in the site's time zone, ``2012-07-30T08:00``: one issue
per period (the ``issues.period`` column is unique). The period of a run is the latest scheduled
time at or before ``now``, so any number of runs between two scheduled times agree on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from policyfeed.errors import ConfigError, InputError, PolicyfeedError

PERIOD_FORMAT = "%Y-%m-%dT%H:%M"
_PERIOD_INPUT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?$")


class StalePeriodError(PolicyfeedError):
    """The period is older than the allowed lateness; ``--force`` publishes it anyway."""


@dataclass(frozen=True)
class Period:
    """One slot of the schedule: its key and its scheduled time (aware, site time zone)."""

    key: str
    scheduled_at: datetime


def check_schedule(expression: str) -> str:
    """The expression if it is a five-field cron expression croniter understands."""
    from croniter import croniter

    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ConfigError(
            f"digest.schedule: {expression!r} is not a cron expression of five fields "
            "(minute hour day month weekday), e.g. '0 8 * * MON'"
        )
    return expression


def _period_at(moment: datetime, tz: ZoneInfo) -> Period:
    local = moment.astimezone(tz)
    return Period(local.strftime(PERIOD_FORMAT), local)


def current_period(expression: str, tz: ZoneInfo, now: datetime) -> Period:
    """The latest scheduled time at or before ``now``."""
    from croniter import croniter

    check_schedule(expression)
    if now.tzinfo is None:
        raise ValueError("naive datetime given as now")
    # croniter's get_prev is strictly before its start: start one second after ``now`` (cut to
    # the second), so a run at exactly 08:00:00 belongs to the 08:00 period.
    start = now.astimezone(tz).replace(microsecond=0) + timedelta(seconds=1)
    fire: datetime = croniter(expression, start).get_prev(datetime)
    return _period_at(fire, tz)


def next_period(expression: str, tz: ZoneInfo, now: datetime) -> Period:
    """The first scheduled time strictly after ``now``."""
    from croniter import croniter

    check_schedule(expression)
    start = now.astimezone(tz).replace(microsecond=0)
    fire: datetime = croniter(expression, start).get_next(datetime)
    return _period_at(fire, tz)


def parse_period(text: str, tz: ZoneInfo) -> Period:
    """A period given on the command line: ``2012-07-30T08:00``, ``2012-07-30 08:00`` or
    ``2012-07-30`` (midnight), in the site's time zone."""
    match = _PERIOD_INPUT.match(text.strip())
    if not match:
        raise InputError(
            f"{text!r} is not a period; use the site-local time of the issue, "
            "e.g. 2012-07-30T08:00 (or a date, 2012-07-30)",
            source="--period",
        )
    year, month, day, hour, minute = (int(g) if g else 0 for g in match.groups())
    try:
        local = datetime(year, month, day, hour, minute, tzinfo=tz)
    except ValueError as exc:
        raise InputError(f"{text!r}: {exc}", source="--period") from None
    return Period(local.strftime(PERIOD_FORMAT), local)


def period_from_key(key: str, tz: ZoneInfo) -> Period | None:
    """The period a stored key names, or None for a key that is not a time (a special issue)."""
    try:
        return parse_period(key, tz)
    except InputError:
        return None


def check_lateness(
    what: str, since: datetime, now: datetime, max_lateness: timedelta, *, force: bool = False
) -> None:
    """Refuse to mail ``what`` (due ``since``) more than ``max_lateness`` after it, unless
    ``force``: a timer that fires at boot must not mail an old issue by surprise."""
    age = now - since
    if force or age <= max_lateness:
        return
    raise StalePeriodError(
        f"{what} {_human(age)} ago, more than the allowed lateness "
        f"({_human(max_lateness)}, digest.max_lateness or --max-lateness); "
        "use --force to mail it anyway"
    )


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} hours"
    if seconds >= 120:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
