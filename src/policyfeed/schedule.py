"""From the digest schedule (a cron expression in the site's time zone) to the period of a run.

A period is named by its scheduled time in the site's time zone, ``2012-07-30T08:00``: one issue
per period (the ``issues.period`` column is unique). The period of a run is the latest scheduled
time at or before ``now``, so any number of runs between two scheduled times agree on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from policyfeed.errors import ConfigError, InputError, PolicyfeedError, UsageError

PERIOD_FORMAT = "%Y-%m-%dT%H:%M"
_PERIOD_INPUT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?$")
# What a person may type for a period: the key itself (2012-07-30T08:00) and the obvious ISO 8601
# spellings of it: seconds (":00"), a space for the "T", a UTC offset or "Z"; or a date alone.
_TYPED_PERIOD = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?))?$"
)
#: How ``--period`` is spelled, for messages and ``--help``.
PERIOD_SPELLING = (
    "the scheduled time in the site's time zone as YYYY-MM-DDTHH:MM (e.g. 2012-07-30T08:00; "
    "2012-07-30 08:00, seconds and a UTC offset are accepted too), or a date for the "
    "schedule's time that day"
)


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


def looks_like_a_time(text: str) -> bool:
    """Whether ``text`` is meant as a date or time (it starts like one), not as a name."""
    return bool(re.match(r"\s*\d{4}-\d", text))


def typed_period(text: str, tz: ZoneInfo) -> Period | date:
    """What a person typed for a period, read in the site's time zone, not yet checked against
    the schedule: a :class:`Period` for a time, a ``date`` for a date alone. Raises UsageError
    for anything else, saying how a period is spelled."""
    cleaned = text.strip()
    match = _TYPED_PERIOD.match(cleaned)
    if not match:
        raise UsageError(f"{text!r} is not a period; give {PERIOD_SPELLING}", source="--period")
    try:
        if match["time"] is None:
            return date.fromisoformat(match["date"])
        moment = datetime.fromisoformat(f"{match['date']}T{match['time'].upper()}")
    except ValueError as exc:
        raise UsageError(f"{text!r}: {exc}", source="--period") from None
    if moment.second or moment.microsecond:
        raise UsageError(
            f"{text!r}: the schedule counts in whole minutes; give the time with :00 seconds "
            "or none",
            source="--period",
        )
    local = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    return _period_at(local, tz)


def read_period(text: str, expression: str, tz: ZoneInfo) -> Period:
    """A period a person typed, as the key the schedule gives it: one of the schedule's times
    (past or future), or a date standing for the schedule's only time that day. Anything else
    is a UsageError that names the nearest scheduled times."""
    typed = typed_period(text, tz)
    if isinstance(typed, date):
        return _the_time_on(typed, expression, tz)
    on_schedule = current_period(expression, tz, typed.scheduled_at)
    if on_schedule.key != typed.key:
        later = next_period(expression, tz, typed.scheduled_at)
        raise UsageError(
            f"{typed.key} is not a time of the schedule ({expression!r} in {tz.key}); the "
            f"nearest are {on_schedule.key} and {later.key}",
            source="--period",
        )
    return on_schedule


def _the_time_on(day: date, expression: str, tz: ZoneInfo) -> Period:
    """The one scheduled time on ``day``, else a UsageError naming the times or the nearest."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = midnight + timedelta(days=1)
    found: list[Period] = []
    cursor = midnight - timedelta(seconds=1)
    while len(found) < 3:
        fire = next_period(expression, tz, cursor)
        if fire.scheduled_at >= end:
            break
        found.append(fire)
        cursor = fire.scheduled_at
    if len(found) == 1:
        return found[0]
    if found:
        times = ", ".join(p.key for p in found[:2]) + (", …" if len(found) > 2 else "")
        raise UsageError(
            f"{day.isoformat()} has several scheduled times ({times}); give the one you mean",
            source="--period",
        )
    before = current_period(expression, tz, midnight - timedelta(seconds=1))
    after = next_period(expression, tz, end - timedelta(seconds=1))
    raise UsageError(
        f"nothing is scheduled on {day.isoformat()} ({expression!r} in {tz.key}); the nearest "
        f"periods are {before.key} and {after.key}",
        source="--period",
    )


def check_not_future(period: Period, now: datetime) -> None:
    """Refuse to mail a period before its time: the scheduled run picks it up then."""
    if period.scheduled_at > now:
        raise UsageError(
            f"period {period.key} has not begun yet (in {_human(period.scheduled_at - now)}); "
            "a period is mailed from its scheduled time on, by the scheduled run or with "
            "--period then",
            source="--period",
        )


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


def human_duration(delta: timedelta) -> str:
    """``3 days``, ``5 hours``, ``12 minutes``: how long something waited, for a message."""
    return _human(delta)
