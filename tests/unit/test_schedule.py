"""Recurring-job schedules: cron in IANA zones across DST, anchored intervals, missed runs.

Every expected instant is written out in UTC; nothing here reads a clock.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.core import schedule as schedule_module
from conveyor.core.schedule import (
    MissedRuns,
    Schedule,
    ScheduleError,
    missed_runs,
    parse_every,
)

UTC = datetime.UTC
ANCHOR = datetime.datetime(2020, 1, 1, tzinfo=UTC)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, second: int = 0
) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def cron(
    expression: str, time_zone: str | None = None, anchor: datetime.datetime = ANCHOR
) -> Schedule:
    return Schedule.parse(cron=expression, every=None, time_zone=time_zone, anchor=anchor)


def every(interval: str, anchor: datetime.datetime = ANCHOR) -> Schedule:
    return Schedule.parse(cron=None, every=interval, time_zone=None, anchor=anchor)


def following(schedule: Schedule, start: datetime.datetime, count: int) -> list[datetime.datetime]:
    runs = []
    for _ in range(count):
        start = schedule.next_after(start)
        runs.append(start)
    return runs


# ------------------------------------------------------------------ parse_every


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", datetime.timedelta(seconds=30)),
        ("1h30m", datetime.timedelta(hours=1, minutes=30)),
        ("500ms", datetime.timedelta(milliseconds=500)),
        ("1.5h", datetime.timedelta(minutes=90)),
        ("1.1h", datetime.timedelta(seconds=3960)),
        ("90m", datetime.timedelta(minutes=90)),
        ("2h45m30s250ms", datetime.timedelta(hours=2, minutes=45, seconds=30, milliseconds=250)),
        ("1m1m", datetime.timedelta(minutes=2)),
        ("0.5s", datetime.timedelta(milliseconds=500)),
    ],
)
def test_parse_every_reads_go_durations(text: str, expected: datetime.timedelta) -> None:
    assert parse_every(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("0s", "longer than zero"),
        ("0h0m0s", "longer than zero"),
        ("0.0001ms", "longer than zero"),
        ("-5s", "positive"),
        ("", "such as 30s"),
        ("5", "such as 30s"),
        ("5d", "such as 30s"),
        ("1 h", "such as 30s"),
        (".5h", "such as 30s"),
        ("1e3s", "such as 30s"),
        ("soon", "such as 30s"),
        ("1000000h", "shorter than 100 years"),
    ],
)
def test_parse_every_refuses_with_a_reason(text: str, complaint: str) -> None:
    with pytest.raises(ScheduleError, match=complaint) as caught:
        parse_every(text)
    assert repr(text) in str(caught.value)


def test_schedule_error_is_a_value_error() -> None:
    assert issubclass(ScheduleError, ValueError)


# ------------------------------------------------------------------ Schedule.parse errors


@pytest.mark.parametrize(
    ("expression", "complaint"),
    [
        ("61 * * * *", "out of range"),
        ("* * * *", "4 fields, not five"),
        ("0 0 * * * 2024", "6 fields, not five"),
        ("@reboot", "unknown macro"),
        ("H * * * *", "hashed and random"),
        ("R 3 * * *", "hashed and random"),
        ("*/0 * * * *", "step"),
        ("0 0 1 13 *", "out of range"),
        ("0 0 30 2 *", "never runs"),
    ],
)
def test_invalid_cron_names_the_expression(expression: str, complaint: str) -> None:
    with pytest.raises(ScheduleError, match=complaint) as caught:
        cron(expression)
    assert str(caught.value).count(repr(expression)) == 1
    assert str(caught.value).count(expression) == 1


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus_Mons", "utc", "Europe/berlin", "../etc", "localtime", ""]
)
def test_unknown_time_zone_names_the_zone(zone: str) -> None:
    with pytest.raises(ScheduleError, match="unknown time zone") as caught:
        cron("0 9 * * *", zone)
    assert repr(zone) in str(caught.value)
    assert "Europe/Berlin" in str(caught.value)


def test_both_or_neither_is_refused() -> None:
    with pytest.raises(ScheduleError, match="exclusive"):
        Schedule.parse(cron="@daily", every="1h", time_zone=None, anchor=ANCHOR)
    with pytest.raises(ScheduleError, match="got neither"):
        Schedule.parse(cron=None, every=None, time_zone=None, anchor=ANCHOR)
    with pytest.raises(ScheduleError, match="got both"):
        Schedule(
            cron="@daily", interval=datetime.timedelta(hours=1), time_zone="UTC", anchor=ANCHOR
        )


def test_zero_interval_is_refused() -> None:
    with pytest.raises(ScheduleError, match="longer than zero"):
        every("0s")
    with pytest.raises(ScheduleError, match="longer than zero"):
        Schedule(cron=None, interval=datetime.timedelta(0), time_zone="UTC", anchor=ANCHOR)


def test_time_zone_with_an_interval_is_refused() -> None:
    with pytest.raises(ScheduleError, match="timeZone applies to schedule only"):
        Schedule.parse(cron=None, every="1h", time_zone="Europe/Berlin", anchor=ANCHOR)


def test_naive_datetimes_are_a_programming_error() -> None:
    naive = datetime.datetime(2024, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        cron("@daily", anchor=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        cron("@daily").next_after(naive)


def test_schedules_are_values() -> None:
    assert cron("0 9 * * *", "Europe/Berlin") == cron("0 9 * * *", "Europe/Berlin")
    assert hash(every("1h")) == hash(every("1h"))
    assert every("1h") != every("2h")
    assert cron("@daily").time_zone == "UTC"


def test_anchor_in_another_zone_is_kept_as_utc() -> None:
    berlin = datetime.datetime(2024, 1, 1, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    assert every("1h", anchor=berlin).anchor == utc(2024, 1, 1)
    assert every("1h", anchor=berlin).anchor.tzinfo is UTC


# ------------------------------------------------------------------ cron across DST


def test_nine_in_berlin_is_eight_utc_in_winter_and_seven_in_summer() -> None:
    nine = cron("0 9 * * *", "Europe/Berlin")
    assert nine.next_after(utc(2024, 1, 15)) == utc(2024, 1, 15, 8)
    assert nine.next_after(utc(2024, 7, 15)) == utc(2024, 7, 15, 7)
    assert nine.next_after(utc(2024, 7, 15)).tzinfo is UTC


def test_berlin_spring_forward_runs_a_skipped_time_at_the_end_of_the_gap() -> None:
    # 2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00 UTC; 02:30 does not exist.
    assert following(cron("30 2 * * *", "Europe/Berlin"), utc(2024, 3, 30, 12), 3) == [
        utc(2024, 3, 31, 1, 0),
        utc(2024, 4, 1, 0, 30),
        utc(2024, 4, 2, 0, 30),
    ]


def test_berlin_fall_back_runs_a_repeated_time_once_at_its_first_occurrence() -> None:
    # 2024-10-27: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:30 happens twice.
    assert following(cron("30 2 * * *", "Europe/Berlin"), utc(2024, 10, 26, 12), 3) == [
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 28, 1, 30),
        utc(2024, 10, 29, 1, 30),
    ]


def test_new_york_spring_forward() -> None:
    # 2024-03-10: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
    assert following(cron("30 2 * * *", "America/New_York"), utc(2024, 3, 9, 12), 3) == [
        utc(2024, 3, 10, 7, 0),
        utc(2024, 3, 11, 6, 30),
        utc(2024, 3, 12, 6, 30),
    ]


def test_new_york_fall_back() -> None:
    # 2024-11-03: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:30 happens twice.
    assert following(cron("30 1 * * *", "America/New_York"), utc(2024, 11, 2, 12), 3) == [
        utc(2024, 11, 3, 5, 30),
        utc(2024, 11, 4, 6, 30),
        utc(2024, 11, 5, 6, 30),
    ]


def test_hourly_pauses_during_the_repeated_hour() -> None:
    hourly = cron("0 * * * *", "Europe/Berlin")
    assert hourly.runs_between(utc(2024, 10, 26, 22, 30), utc(2024, 10, 27, 3, 30), 100) == [
        utc(2024, 10, 26, 23),  # 01:00 CEST
        utc(2024, 10, 27, 0),  # 02:00 CEST
        utc(2024, 10, 27, 2),  # 03:00 CET; 02:00 CET (01:00 UTC) already ran
        utc(2024, 10, 27, 3),
    ]
    # The 25-hour day has 24 runs, the 23-hour day 23.
    assert hourly.count_between(utc(2024, 10, 26, 22), utc(2024, 10, 27, 23)) == 24
    assert hourly.count_between(utc(2024, 3, 30, 23), utc(2024, 3, 31, 22)) == 23


def test_hourly_across_new_york_fall_back() -> None:
    hourly = cron("0 * * * *", "America/New_York")
    assert hourly.runs_between(utc(2024, 11, 3, 4, 30), utc(2024, 11, 3, 8, 30), 100) == [
        utc(2024, 11, 3, 5),  # 01:00 EDT
        utc(2024, 11, 3, 7),  # 02:00 EST; 01:00 EST (06:00 UTC) already ran
        utc(2024, 11, 3, 8),
    ]


def test_times_inside_a_gap_collapse_into_one_run() -> None:
    quarterly = cron("*/15 * * * *", "Europe/Berlin")
    assert following(quarterly, utc(2024, 3, 31, 0, 40), 3) == [
        utc(2024, 3, 31, 0, 45),  # 01:45 CET
        utc(2024, 3, 31, 1, 0),  # 02:00-03:00 local, one run at 03:00 CEST
        utc(2024, 3, 31, 1, 15),
    ]
    assert quarterly.count_between(utc(2024, 3, 31, 0, 50), utc(2024, 3, 31, 1, 10)) == 1


def test_from_inside_the_second_pass_of_a_repeated_hour() -> None:
    quarterly = cron("*/15 * * * *", "Europe/Berlin")
    # 01:10 UTC is 02:10 CET, in the second pass: 02:15 CET already ran as 02:15 CEST.
    assert quarterly.next_after(utc(2024, 10, 27, 1, 10)) == utc(2024, 10, 27, 2, 0)
    # Until 01:30 UTC (02:30 CET): the first pass's 02:30 and 02:45 CEST are included.
    assert quarterly.runs_between(utc(2024, 10, 27, 0, 20), utc(2024, 10, 27, 1, 30), 100) == [
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 27, 0, 45),
    ]
    assert quarterly.count_between(utc(2024, 10, 27, 0, 20), utc(2024, 10, 27, 1, 30)) == 2


def test_a_zone_with_a_half_hour_shift() -> None:
    # Lord Howe Island moves its clocks by 30 minutes: 2024-10-06 02:00 -> 02:30 (+10:30 -> +11).
    assert cron("15 2 * * *", "Australia/Lord_Howe").next_after(utc(2024, 10, 5, 12)) == utc(
        2024, 10, 5, 15, 30
    )


def test_a_gap_that_ends_at_midnight() -> None:
    # America/Nuuk, 2024-03-30: 23:00 -02 becomes 00:00 -01 at 01:00 UTC, so the
    # gap's 23:30 and the next day's 00:00 are one run.
    nuuk = cron("*/30 23,0 * * *", "America/Nuuk")
    window = (utc(2024, 3, 30, 12), utc(2024, 3, 31, 12))
    assert nuuk.runs_between(*window, 100) == [utc(2024, 3, 31, 1), utc(2024, 3, 31, 1, 30)]
    assert nuuk.count_between(*window) == 2
    assert nuuk.count_between(utc(2024, 3, 20), utc(2024, 4, 10)) == len(
        nuuk.runs_between(utc(2024, 3, 20), utc(2024, 4, 10), 1000)
    )


# ------------------------------------------------------------------ calendar


def test_day_31_skips_months_without_one() -> None:
    assert following(cron("0 0 31 * *"), utc(2024, 1, 1), 7) == [
        utc(2024, 1, 31),
        utc(2024, 3, 31),
        utc(2024, 5, 31),
        utc(2024, 7, 31),
        utc(2024, 8, 31),
        utc(2024, 10, 31),
        utc(2024, 12, 31),
    ]


def test_last_day_of_month() -> None:
    assert following(cron("0 0 L * *"), utc(2024, 1, 1), 4) == [
        utc(2024, 1, 31),
        utc(2024, 2, 29),
        utc(2024, 3, 31),
        utc(2024, 4, 30),
    ]
    assert cron("0 0 L 2 *").next_after(utc(2025, 1, 1)) == utc(2025, 2, 28)


def test_leap_day_runs_every_four_years() -> None:
    assert following(cron("0 12 29 2 *"), utc(2024, 3, 1), 2) == [
        utc(2028, 2, 29, 12),
        utc(2032, 2, 29, 12),
    ]


def test_day_of_month_or_day_of_week() -> None:
    assert following(cron("0 0 13 * 5"), utc(2024, 9, 1), 7) == [
        utc(2024, 9, 6),
        utc(2024, 9, 13),  # Friday the 13th, once
        utc(2024, 9, 20),
        utc(2024, 9, 27),
        utc(2024, 10, 4),
        utc(2024, 10, 11),
        utc(2024, 10, 13),  # a Sunday
    ]


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@hourly", utc(2024, 1, 3, 11)),
        ("@daily", utc(2024, 1, 4)),
        ("@midnight", utc(2024, 1, 4)),
        ("@weekly", utc(2024, 1, 7)),  # Sunday
        ("@monthly", utc(2024, 2, 1)),
        ("@yearly", utc(2025, 1, 1)),
        ("@annually", utc(2025, 1, 1)),
        ("@DAILY", utc(2024, 1, 4)),
    ],
)
def test_macros(macro: str, expected: datetime.datetime) -> None:
    # 2024-01-03 is a Wednesday.
    assert cron(macro).next_after(utc(2024, 1, 3, 10, 30)) == expected


def test_macros_follow_the_time_zone() -> None:
    assert cron("@daily", "Asia/Tokyo").next_after(utc(2024, 1, 3, 10, 30)) == utc(2024, 1, 3, 15)


def test_names_and_steps() -> None:
    assert following(cron("0 9 * jan mon-fri"), utc(2024, 1, 5, 10), 2) == [
        utc(2024, 1, 8, 9),
        utc(2024, 1, 9, 9),
    ]
    assert following(cron("5/20 * * * *"), utc(2024, 1, 1), 3) == [
        utc(2024, 1, 1, 0, 5),
        utc(2024, 1, 1, 0, 25),
        utc(2024, 1, 1, 0, 45),
    ]


def test_cron_runs_start_after_the_anchor() -> None:
    daily = cron("0 6 * * *", anchor=utc(2024, 5, 1, 12))
    assert daily.next_after(utc(2024, 1, 1)) == utc(2024, 5, 2, 6)
    assert daily.runs_between(utc(2024, 1, 1), utc(2024, 5, 3, 12), 100) == [
        utc(2024, 5, 2, 6),
        utc(2024, 5, 3, 6),
    ]
    assert daily.count_between(utc(2024, 1, 1), utc(2024, 5, 3, 12)) == 2


def test_a_run_exactly_at_the_window_edges() -> None:
    hourly = cron("@hourly")
    assert hourly.next_after(utc(2024, 1, 1, 5)) == utc(2024, 1, 1, 6)
    assert hourly.runs_between(utc(2024, 1, 1, 5), utc(2024, 1, 1, 7), 10) == [
        utc(2024, 1, 1, 6),
        utc(2024, 1, 1, 7),
    ]


# ------------------------------------------------------------------ every


def test_every_is_anchored_at_creation() -> None:
    anchor = utc(2024, 1, 1, 0, 0, second=7)
    minutely = every("1m", anchor)
    assert minutely.next_after(anchor) == utc(2024, 1, 1, 0, 1, second=7)
    assert minutely.next_after(utc(2024, 1, 1, 0, 5, second=7)) == utc(2024, 1, 1, 0, 6, second=7)
    assert minutely.next_after(utc(2024, 1, 1, 0, 5, second=8)) == utc(2024, 1, 1, 0, 6, second=7)
    assert minutely.next_after(utc(2023, 6, 1)) == utc(2024, 1, 1, 0, 1, second=7)
    assert minutely.runs_between(anchor, utc(2024, 1, 1, 0, 10, second=7), 3) == [
        utc(2024, 1, 1, 0, 8, second=7),
        utc(2024, 1, 1, 0, 9, second=7),
        utc(2024, 1, 1, 0, 10, second=7),
    ]
    assert minutely.count_between(anchor, utc(2024, 1, 1, 0, 10, second=7)) == 10
    assert minutely.count_between(utc(2023, 1, 1), utc(2024, 1, 1, 0, 1, second=6)) == 0


def test_every_ignores_dst() -> None:
    hours = every("1h", utc(2024, 10, 26, 22, 30))
    assert hours.runs_between(utc(2024, 10, 26), utc(2024, 10, 27, 3), 10) == [
        utc(2024, 10, 26, 23, 30),
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 27, 1, 30),
        utc(2024, 10, 27, 2, 30),
    ]


def test_every_with_sub_second_and_odd_intervals() -> None:
    assert following(every("1.5s"), ANCHOR, 3) == [
        ANCHOR + datetime.timedelta(seconds=1.5),
        ANCHOR + datetime.timedelta(seconds=3),
        ANCHOR + datetime.timedelta(seconds=4.5),
    ]


@pytest.mark.timeout(10)
def test_a_30_day_outage_of_every_second_is_arithmetic() -> None:
    second = every("1s")
    end = ANCHOR + datetime.timedelta(days=30)
    assert second.count_between(ANCHOR, end) == 30 * 86_400
    assert second.runs_between(ANCHOR, end, 5) == [
        end - datetime.timedelta(seconds=n) for n in (4, 3, 2, 1, 0)
    ]
    # A thousand years of milliseconds, 3e13 runs: only arithmetic finishes this.
    millis = every("1ms")
    far = ANCHOR + datetime.timedelta(days=365_000)
    assert millis.count_between(ANCHOR, far) == 365_000 * 86_400_000
    assert millis.runs_between(ANCHOR, far, 2) == [far - datetime.timedelta(milliseconds=1), far]


def test_limit_zero_and_empty_windows() -> None:
    assert every("1s").runs_between(ANCHOR, ANCHOR + datetime.timedelta(seconds=10), 0) == []
    assert cron("* * * * *").runs_between(ANCHOR, ANCHOR + datetime.timedelta(hours=1), 0) == []
    assert cron("* * * * *").runs_between(utc(2024, 1, 2), utc(2024, 1, 1), 5) == []
    assert cron("* * * * *").count_between(utc(2024, 1, 2), utc(2024, 1, 1)) == 0
    with pytest.raises(ValueError, match="limit"):
        every("1s").runs_between(ANCHOR, utc(2024, 1, 1), -1)


class CountingCroniter(croniter):  # type: ignore[misc]
    steps = 0

    def get_next(self, *args: Any, **kwargs: Any) -> Any:
        CountingCroniter.steps += 1
        return super().get_next(*args, **kwargs)

    def get_prev(self, *args: Any, **kwargs: Any) -> Any:
        CountingCroniter.steps += 1
        return super().get_prev(*args, **kwargs)


@pytest.fixture
def croniter_steps(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[CountingCroniter]]:
    CountingCroniter.steps = 0
    monkeypatch.setattr(schedule_module, "croniter", CountingCroniter)
    yield CountingCroniter


@pytest.mark.timeout(20)
def test_a_30_day_outage_of_every_minute_cron_stays_cheap(
    croniter_steps: type[CountingCroniter],
) -> None:
    minutely = cron("* * * * *", "Europe/Berlin")
    start, end = utc(2024, 3, 15), utc(2024, 4, 14)  # spans the spring-forward
    croniter_steps.steps = 0
    newest = minutely.runs_between(start, end, 10)
    assert newest == [end - datetime.timedelta(minutes=n) for n in range(9, -1, -1)]
    assert croniter_steps.steps <= 11
    croniter_steps.steps = 0
    # One run per UTC minute: the gap's wall-clock 02:00-03:00 collapses into one run at 03:00.
    assert minutely.count_between(start, end) == 30 * 1440
    assert croniter_steps.steps < 31 + 2 * 1441


# ------------------------------------------------------------------ missed runs


T0 = utc(2024, 6, 1, 12)


def minutes(n: float) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=n)


def missed(
    *,
    policy: Any,
    now: datetime.datetime,
    last_scheduled: datetime.datetime | None = None,
    deadline: int | None = None,
    max_missed: int = 10,
    schedule: Schedule | None = None,
) -> MissedRuns:
    return missed_runs(
        schedule=schedule if schedule is not None else every("1m", T0),
        last_scheduled=last_scheduled,
        created=T0,
        now=now,
        policy=policy,
        max_missed=max_missed,
        starting_deadline_seconds=deadline,
    )


def test_run_all_creates_the_newest_max_missed() -> None:
    result = missed(policy="RunAll", now=minutes(20), last_scheduled=minutes(10), max_missed=3)
    assert result.to_create == [minutes(18), minutes(19), minutes(20)]
    assert result.skipped == 7
    assert (
        result.reason == "7 runs older than the newest 3 (missedRunsPolicy RunAll, maxMissedRuns 3)"
    )


def test_run_all_within_max_missed_skips_nothing() -> None:
    result = missed(policy="RunAll", now=minutes(3.5))
    assert result == MissedRuns(
        to_create=[minutes(1), minutes(2), minutes(3)], skipped=0, reason=""
    )


def test_run_latest_creates_only_the_newest() -> None:
    result = missed(policy="RunLatest", now=minutes(20.5), last_scheduled=minutes(10))
    assert result.to_create == [minutes(20)]
    assert result.skipped == 9
    assert result.reason == "9 runs older than the latest (missedRunsPolicy RunLatest)"


def test_skip_creates_the_current_run_only_within_grace() -> None:
    on_time = missed(
        policy="Skip", now=minutes(20) + datetime.timedelta(seconds=5), last_scheduled=minutes(10)
    )
    assert on_time.to_create == [minutes(20)]
    assert on_time.skipped == 9
    late = missed(
        policy="Skip", now=minutes(20) + datetime.timedelta(seconds=6), last_scheduled=minutes(10)
    )
    assert late.to_create == []
    assert late.skipped == 10
    assert late.reason == "10 missed runs (missedRunsPolicy Skip)"


def test_skip_in_normal_operation_creates_the_due_run() -> None:
    result = missed(policy="Skip", now=minutes(11), last_scheduled=minutes(10))
    assert result == MissedRuns(to_create=[minutes(11)], skipped=0, reason="")


def test_nothing_due() -> None:
    for policy in ("Skip", "RunLatest", "RunAll"):
        assert missed(policy=policy, now=minutes(10.5), last_scheduled=minutes(10)) == MissedRuns(
            [], 0, ""
        )
        assert missed(policy=policy, now=minutes(-5)) == MissedRuns([], 0, "")


def test_starting_deadline_drops_late_runs_first() -> None:
    # Runs at 18, 19, 20 minutes are within 150s of now; 11..17 are too late.
    run_all = missed(policy="RunAll", now=minutes(20), last_scheduled=minutes(10), deadline=150)
    assert run_all.to_create == [minutes(18), minutes(19), minutes(20)]
    assert run_all.skipped == 7
    assert run_all.reason == "7 runs more than startingDeadlineSeconds (150s) late"

    latest = missed(policy="RunLatest", now=minutes(20), last_scheduled=minutes(10), deadline=150)
    assert latest.to_create == [minutes(20)]
    assert latest.skipped == 9
    assert latest.reason == (
        "7 runs more than startingDeadlineSeconds (150s) late; "
        "2 runs older than the latest (missedRunsPolicy RunLatest)"
    )

    capped = missed(
        policy="RunAll", now=minutes(20), last_scheduled=minutes(10), deadline=150, max_missed=2
    )
    assert capped.to_create == [minutes(19), minutes(20)]
    assert capped.skipped == 8


def test_a_run_exactly_deadline_seconds_late_is_kept() -> None:
    result = missed(policy="RunAll", now=minutes(20), last_scheduled=minutes(10), deadline=120)
    assert result.to_create == [minutes(18), minutes(19), minutes(20)]


def test_a_deadline_can_drop_everything() -> None:
    result = missed(
        policy="RunLatest",
        now=minutes(20) + datetime.timedelta(seconds=45),
        last_scheduled=minutes(10),
        deadline=30,
    )
    assert result.to_create == []
    assert result.skipped == 10
    assert result.reason == "10 runs more than startingDeadlineSeconds (30s) late"


def test_skip_with_a_deadline() -> None:
    result = missed(
        policy="Skip",
        now=minutes(20) + datetime.timedelta(seconds=2),
        last_scheduled=minutes(10),
        deadline=90,
    )
    assert result.to_create == [minutes(20)]
    assert result.skipped == 9
    assert result.reason == (
        "8 runs more than startingDeadlineSeconds (90s) late; 1 missed run (missedRunsPolicy Skip)"
    )


def test_a_deadline_longer_than_the_window_changes_nothing() -> None:
    assert missed(
        policy="RunAll", now=minutes(20), last_scheduled=minutes(10), deadline=86_400
    ) == missed(policy="RunAll", now=minutes(20), last_scheduled=minutes(10))


def test_creating_the_runs_then_asking_again_gives_nothing() -> None:
    first = missed(policy="RunAll", now=minutes(20), last_scheduled=minutes(10), max_missed=3)
    again = missed(
        policy="RunAll", now=minutes(20), last_scheduled=first.to_create[-1], max_missed=3
    )
    assert again == MissedRuns([], 0, "")


@pytest.mark.timeout(20)
def test_missed_runs_after_a_month_of_every_second() -> None:
    second = every("1s", T0)
    now = T0 + datetime.timedelta(days=30)
    latest = missed(policy="RunLatest", now=now, schedule=second)
    assert latest.to_create == [now]
    assert latest.skipped == 30 * 86_400 - 1
    with_deadline = missed(policy="RunAll", now=now, schedule=second, deadline=60, max_missed=100)
    assert with_deadline.to_create == [
        now - datetime.timedelta(seconds=n) for n in range(60, -1, -1)
    ]
    assert with_deadline.skipped == 30 * 86_400 - 61


@pytest.mark.timeout(20)
def test_missed_runs_of_a_cron_job_after_a_long_outage() -> None:
    daily = cron("30 2 * * *", "Europe/Berlin", anchor=utc(2024, 1, 1))
    now = utc(2025, 1, 1)
    result = missed_runs(
        schedule=daily,
        last_scheduled=utc(2024, 1, 1, 1, 30),
        created=utc(2024, 1, 1),
        now=now,
        policy="RunAll",
        max_missed=2,
        starting_deadline_seconds=None,
    )
    assert result.to_create == [utc(2024, 12, 30, 1, 30), utc(2024, 12, 31, 1, 30)]
    assert result.skipped == 365 - 2  # 2024-01-02 to 2024-12-31, one run a day


def test_missed_runs_validates_its_numbers() -> None:
    with pytest.raises(ValueError, match="max_missed"):
        missed(policy="RunAll", now=minutes(5), max_missed=0)
    with pytest.raises(ValueError, match="starting_deadline_seconds"):
        missed(policy="RunAll", now=minutes(5), deadline=0)


# ------------------------------------------------------------------ properties

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Nuuk",
]
EXPRESSIONS = [
    "* * * * *",
    "*/7 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "*/15 1-3 * * *",
    "0,30 0-4 * * *",
    "0 0 L * *",
    "5 2,3 * * 0",
    "0 9 * * 1-5",
    "59 23 31 * *",
    "*/30 23,0 * * *",
]
# DST transitions in the zones above, so that the examples cross them often.
TRANSITIONS = [
    utc(2024, 3, 31, 1),
    utc(2024, 10, 27, 1),
    utc(2024, 3, 10, 7),
    utc(2024, 11, 3, 6),
    utc(2024, 4, 6, 15),
    utc(2024, 10, 5, 15, 30),
]

instants = st.one_of(
    st.datetimes(
        min_value=datetime.datetime(2021, 1, 1), max_value=datetime.datetime(2029, 1, 1)
    ).map(lambda t: t.replace(tzinfo=UTC)),
    st.builds(
        lambda base, seconds: base + datetime.timedelta(seconds=seconds),
        st.sampled_from(TRANSITIONS),
        st.integers(min_value=-30 * 3600, max_value=30 * 3600),
    ),
)
cron_schedules = st.builds(
    lambda expression, zone: cron(expression, zone, anchor=utc(2020, 1, 1)),
    st.sampled_from(EXPRESSIONS),
    st.sampled_from(ZONES),
)
every_schedules = st.builds(
    lambda seconds, anchor: Schedule(
        cron=None,
        interval=datetime.timedelta(seconds=seconds),
        time_zone="UTC",
        anchor=anchor,
    ),
    st.integers(min_value=1, max_value=100_000),
    st.datetimes(
        min_value=datetime.datetime(2020, 1, 1), max_value=datetime.datetime(2024, 1, 1)
    ).map(lambda t: t.replace(tzinfo=UTC)),
)
schedules = st.one_of(cron_schedules, every_schedules)
windows = st.integers(min_value=0, max_value=30 * 3600).map(lambda s: datetime.timedelta(seconds=s))
quick = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


@quick
@given(schedule=schedules, t=instants)
def test_next_after_is_strictly_increasing(schedule: Schedule, t: datetime.datetime) -> None:
    first = schedule.next_after(t)
    second = schedule.next_after(first)
    assert t < first < second
    assert first.tzinfo is UTC
    # Nothing runs in between: the window (t, second] holds exactly these two.
    assert schedule.runs_between(t, second, 10) == [first, second]
    assert schedule.count_between(t, second) == 2


@quick
@given(schedule=schedules, after=instants, window=windows, limit=st.integers(0, 50))
def test_runs_between_is_sorted_and_inside_the_window(
    schedule: Schedule, after: datetime.datetime, window: datetime.timedelta, limit: int
) -> None:
    until = after + window
    runs = schedule.runs_between(after, until, limit)
    assert all(after < run <= until for run in runs)
    assert runs == sorted(set(runs))
    total = schedule.count_between(after, until)
    assert len(runs) == min(limit, total)
    if runs:
        # The newest ones: nothing after the last, and the first follows the one before.
        assert schedule.next_after(runs[-1]) > until
        assert all(schedule.next_after(a) == b for a, b in itertools.pairwise(runs))


def oracle_instant(wall: datetime.datetime, zone: ZoneInfo) -> datetime.datetime:
    """The module's DST rule, by brute force: first occurrence, or the end of the gap."""
    occurrences = [
        instant
        for fold in (0, 1)
        for instant in [wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)]
        if instant.astimezone(zone).replace(tzinfo=None) == wall
    ]
    if occurrences:
        return min(occurrences)
    instant = wall.replace(tzinfo=zone, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    while instant.astimezone(zone).replace(tzinfo=None) <= wall:
        instant += datetime.timedelta(minutes=1)
    return instant


def oracle_runs(
    expression: str, zone_name: str, after: datetime.datetime, until: datetime.datetime
) -> list[datetime.datetime]:
    zone = ZoneInfo(zone_name)
    wall = after.astimezone(zone).replace(tzinfo=None) - datetime.timedelta(hours=3)
    end = until.astimezone(zone).replace(tzinfo=None) + datetime.timedelta(hours=3)
    iterator = croniter(expression, wall)
    instants = set()
    while wall <= end:
        wall = iterator.get_next(datetime.datetime)
        instant = oracle_instant(wall, zone)
        if after < instant <= until:
            instants.add(instant)
    return sorted(instants)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    expression=st.sampled_from([e for e in EXPRESSIONS if not e.startswith("* ")]),
    zone=st.sampled_from(ZONES),
    after=instants,
    window=windows,
)
def test_cron_agrees_with_a_brute_force_oracle(
    expression: str, zone: str, after: datetime.datetime, window: datetime.timedelta
) -> None:
    schedule = cron(expression, zone, anchor=utc(2020, 1, 1))
    until = after + window
    expected = oracle_runs(expression, zone, after, until)
    assert schedule.runs_between(after, until, 10_000) == expected
    assert schedule.count_between(after, until) == len(expected)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    expression=st.sampled_from(["0 * * * *", "30 2 * * *", "0,30 0-4 * * *", "0 0 L * *"]),
    zone=st.sampled_from(ZONES),
    after=instants,
    days=st.integers(min_value=2, max_value=60),
)
def test_counting_by_days_agrees_with_enumeration(
    expression: str, zone: str, after: datetime.datetime, days: int
) -> None:
    schedule = cron(expression, zone, anchor=utc(2020, 1, 1))
    until = after + datetime.timedelta(days=days, hours=5)
    assert schedule.count_between(after, until) == len(schedule.runs_between(after, until, 10**6))


@quick
@given(schedule=every_schedules, t=instants)
def test_every_runs_are_anchor_plus_whole_intervals(
    schedule: Schedule, t: datetime.datetime
) -> None:
    assert schedule.interval is not None
    run = schedule.next_after(t)
    steps, remainder = divmod(run - schedule.anchor, schedule.interval)
    assert remainder == datetime.timedelta(0)
    assert steps >= 1
    assert run - schedule.interval <= max(t, schedule.anchor)


@quick
@given(
    schedule=schedules,
    last=instants,
    window=windows,
    policy=st.sampled_from(["Skip", "RunLatest", "RunAll"]),
    max_missed=st.integers(1, 20),
    deadline=st.one_of(st.none(), st.integers(1, 40 * 3600)),
)
def test_missed_runs_accounts_for_every_due_run(
    *,
    schedule: Schedule,
    last: datetime.datetime,
    window: datetime.timedelta,
    policy: Any,
    max_missed: int,
    deadline: int | None,
) -> None:
    now = last + window
    result = missed_runs(
        schedule=schedule,
        last_scheduled=last,
        created=schedule.anchor,
        now=now,
        policy=policy,
        max_missed=max_missed,
        starting_deadline_seconds=deadline,
    )
    due = schedule.count_between(last, now)
    assert len(result.to_create) + result.skipped == due
    assert result.to_create == sorted(result.to_create)
    assert all(last < run <= now for run in result.to_create)
    assert len(result.to_create) <= (max_missed if policy == "RunAll" else 1)
    if deadline is not None:
        assert all(now - run <= datetime.timedelta(seconds=deadline) for run in result.to_create)
    if result.to_create:
        assert result.to_create == schedule.runs_between(
            result.to_create[0] - datetime.timedelta(microseconds=1), now, 100
        )
    assert (result.reason == "") == (result.skipped == 0)
