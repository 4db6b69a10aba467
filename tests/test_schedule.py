"""The schedule: a cron expression in the site's time zone gives each run its period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from policyfeed.errors import ConfigError, InputError, UsageError
from policyfeed.schedule import (
    StalePeriodError,
    check_lateness,
    check_not_future,
    check_schedule,
    current_period,
    next_period,
    parse_period,
    period_from_key,
    read_period,
)

ZURICH = ZoneInfo("Europe/Zurich")
WEEKLY = "0 8 * * MON"


def zurich(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZURICH)


def test_period_is_the_latest_scheduled_time_at_or_before_now() -> None:
    period = current_period(WEEKLY, ZURICH, zurich(2012, 8, 2, 15, 30))  # a Thursday
    assert period.key == "2012-07-30T08:00"
    assert period.scheduled_at == zurich(2012, 7, 30, 8, 0)


def test_a_run_at_exactly_the_scheduled_minute_belongs_to_that_period() -> None:
    assert current_period(WEEKLY, ZURICH, zurich(2012, 7, 30, 8, 0)).key == "2012-07-30T08:00"
    assert current_period(WEEKLY, ZURICH, zurich(2012, 7, 30, 8, 0, 59)).key == "2012-07-30T08:00"


def test_a_second_before_the_scheduled_time_is_still_the_previous_period() -> None:
    assert current_period(WEEKLY, ZURICH, zurich(2012, 7, 30, 7, 59, 59)).key == "2012-07-23T08:00"


def test_every_run_between_two_scheduled_times_agrees_on_the_period() -> None:
    start = zurich(2012, 7, 30, 8, 0)
    keys = {current_period(WEEKLY, ZURICH, start + timedelta(hours=h)).key for h in range(168)}
    assert keys == {"2012-07-30T08:00"}


def test_the_period_is_in_the_site_time_zone_whatever_zone_now_is_given_in() -> None:
    now_utc = datetime(2012, 7, 30, 6, 0, tzinfo=UTC)  # 08:00 in Zurich (summer time)
    assert current_period(WEEKLY, ZURICH, now_utc).key == "2012-07-30T08:00"
    assert current_period(WEEKLY, ZURICH, now_utc - timedelta(seconds=1)).key == "2012-07-23T08:00"


def test_periods_follow_local_time_across_a_daylight_saving_change() -> None:
    # Zurich leaves summer time on 28 October 2012: 08:00 local is 06:00 UTC before, 07:00 after.
    before = current_period(WEEKLY, ZURICH, zurich(2012, 10, 23, 12, 0))
    after = current_period(WEEKLY, ZURICH, zurich(2012, 10, 30, 12, 0))
    assert (before.key, after.key) == ("2012-10-22T08:00", "2012-10-29T08:00")
    assert after.scheduled_at.astimezone(UTC).hour == 7
    assert before.scheduled_at.astimezone(UTC).hour == 6


def test_next_period_is_strictly_after_now() -> None:
    assert next_period(WEEKLY, ZURICH, zurich(2012, 7, 30, 8, 0)).key == "2012-08-06T08:00"


@pytest.mark.parametrize("expression", ["bogus", "0 8 * *", "0 8 * * MON 2012", "61 8 * * *"])
def test_a_schedule_that_is_not_a_five_field_cron_expression_is_a_config_error(
    expression: str,
) -> None:
    with pytest.raises(ConfigError, match=r"digest\.schedule"):
        check_schedule(expression)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("2012-07-30T08:00", "2012-07-30T08:00"),
        ("2012-07-30 08:00", "2012-07-30T08:00"),
        ("2012-07-30", "2012-07-30T00:00"),
    ],
)
def test_an_explicit_period_is_read_in_the_site_time_zone(text: str, key: str) -> None:
    period = parse_period(text, ZURICH)
    assert period.key == key
    assert period.scheduled_at.tzinfo == ZURICH


@pytest.mark.parametrize("text", ["last monday", "2012-13-01", "2012-07-30T25:00", "30/07/2012"])
def test_a_period_that_is_not_a_date_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(InputError, match="--period"):
        parse_period(text, ZURICH)


def test_a_stored_key_that_is_no_time_names_a_special_issue() -> None:
    assert period_from_key("wcit-special", ZURICH) is None
    found = period_from_key("2012-07-30T08:00", ZURICH)
    assert found is not None and found.scheduled_at == zurich(2012, 7, 30, 8, 0)


def test_within_the_allowed_lateness_passes() -> None:
    check_lateness("x", zurich(2012, 7, 30, 8, 0), zurich(2012, 8, 1, 8, 0), timedelta(days=2))


def test_older_than_the_allowed_lateness_is_refused_and_says_how_to_force_it() -> None:
    with pytest.raises(
        StalePeriodError,
        match=r"^period 2012-07-30T08:00 was scheduled 3 days ago, more than the allowed "
        r"lateness \(2 days, .*--force",
    ):
        check_lateness(
            "period 2012-07-30T08:00 was scheduled",
            zurich(2012, 7, 30, 8, 0),
            zurich(2012, 8, 2, 9, 0),
            timedelta(days=2),
        )


def test_force_publishes_however_late() -> None:
    check_lateness(
        "x", zurich(2012, 7, 30, 8, 0), zurich(2012, 9, 2), timedelta(days=2), force=True
    )


# --- a period typed by a person -----------------------------------------------------------------


def test_a_typed_period_must_be_one_of_the_schedules_times() -> None:
    assert read_period("2012-07-30T06:00:00Z", WEEKLY, ZURICH).key == "2012-07-30T08:00"
    with pytest.raises(UsageError, match="nearest are 2012-07-30T08:00 and 2012-08-06T08:00"):
        read_period("2012-07-30T08:01", WEEKLY, ZURICH)


def test_a_date_stands_for_the_schedules_only_time_that_day() -> None:
    assert read_period("2012-07-30", WEEKLY, ZURICH).key == "2012-07-30T08:00"
    with pytest.raises(UsageError, match=r"several scheduled times \(2012-07-30T08:00, 2012-07"):
        read_period("2012-07-30", "0 8,18 * * *", ZURICH)
    with pytest.raises(UsageError, match="nothing is scheduled on 2012-07-31"):
        read_period("2012-07-31", WEEKLY, ZURICH)


def test_a_period_before_its_time_is_refused_and_one_at_its_time_passes() -> None:
    period = read_period("2012-07-30T08:00", WEEKLY, ZURICH)
    check_not_future(period, zurich(2012, 7, 30, 8, 0))
    with pytest.raises(UsageError, match="has not begun yet"):
        check_not_future(period, zurich(2012, 7, 30, 7, 59))
