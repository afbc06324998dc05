"""When a recurring job runs: cron and fixed-interval schedules, and missed runs.

Design notes:

* Every function takes the current time as an argument and never reads a clock,
  so the same inputs always give the same runs. Each run is a child object named
  after its scheduled time (`<job>-<unix seconds>`), so an operator that restarts
  and recomputes must arrive at exactly the instants it computed before; that is
  also why an `every` schedule is anchored. Its runs are `anchor + k * interval`
  for k >= 1, the anchor being the job's creation time, rather than "interval
  after the last run was noticed", which would drift with the operator's latency
  and produce new names after every restart. (`parse_every` accepts `500ms`; the
  CRD insists on at least 1s, so that distinct runs get distinct names.)

* A schedule's runs are its times strictly after its anchor, for cron too:
  nothing is due from before the job existed.

* Cron expressions name wall-clock times in an IANA zone (UTC by default), and
  wall clocks jump twice a year. croniter computes the wall-clock times here, on
  naive datetimes, where its calendar arithmetic has no DST to get wrong; this
  module alone turns them into instants, by one rule:

    - every wall-clock time the expression names runs exactly once;
    - a time that does not exist (skipped by a spring-forward) runs at the first
      instant after the gap: `30 2 * * *` in Europe/Berlin on 2024-03-31 runs
      at 03:00 CEST, 01:00 UTC. Several times inside one gap collapse into that
      one run (`*/15` runs once at 03:00 for 02:00, 02:15, 02:30, 02:45 and
      03:00);
    - a time that exists twice (repeated by a fall-back) runs at its first
      occurrence only: `30 2 * * *` in Europe/Berlin on 2024-10-27 runs at
      02:30 CEST, 00:30 UTC, and not again an hour later.

  So a daily job runs once a day, whatever the day's length, which is what
  people mean by "every day at 2:30". The price is paid by jobs that run more
  often than hourly: during the repeated hour they pause, since its times have
  already run once. `0 * * * *` in Berlin on 2024-10-27 runs at 00:00 and then
  02:00 UTC (02:00 CEST, then 03:00 CET): 24 runs on a 25-hour day, and 23 on
  the 23-hour spring day. croniter's own handling of aware datetimes differs: it
  runs the repeated times twice (`30 2 * * *` runs at 00:30 and at 01:30 UTC on
  that day), which is why it is only handed naive ones here.

* Cron expressions have five fields or are one of the macros @yearly
  (@annually), @monthly, @weekly, @daily (@midnight) and @hourly. croniter's
  extensions that also fit in five fields are allowed, such as `L` for the last
  day of a month and `5#2` for the second Friday. Its hashed and random fields
  (`H`, `R`) are refused: a random field is drawn anew on every evaluation,
  and run names must not change between evaluations. A day of month and a day of
  week that are both restricted match either, as in every cron (`0 0 13 * 5`
  runs on the 13th and on Fridays); `0 0 31 * *` runs in seven months a year
  and `0 0 L * *` in all twelve.

* After a long outage the operator must learn which runs it missed without
  enumerating them: `every: 1s` over 30 days is 2.6 million runs. For `every`
  it is all arithmetic on the interval. For cron, the newest runs are found by
  stepping backwards from the end of the window, so `limit` runs cost about
  `limit` croniter steps; and how many runs there were is counted a day at a
  time, since the times of day a five-field expression names do not depend on
  the date: a day costs one croniter step (to find the next day that has runs)
  plus arithmetic, unless the zone changes its offset that day, in which case
  that day's runs are enumerated.

* Missed runs follow a fixed order of rules, so that an outage always ends the
  same way; see `missed_runs`.

The time zone database is read through `zoneinfo` (from the `tzdata` package or
the system), the only data this module loads.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime
import fractions
import re
import zoneinfo
from collections.abc import Iterator
from typing import Literal

from croniter import CroniterError, croniter

__all__ = ["MissedRuns", "Schedule", "ScheduleError", "missed_runs", "parse_every"]

_UTC = datetime.UTC
_SECOND = datetime.timedelta(seconds=1)
_MINUTE = datetime.timedelta(minutes=1)
_DAY = datetime.timedelta(days=1)
_MICROSECOND = datetime.timedelta(microseconds=1)

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_HELP = (
    "use five fields (minute hour day-of-month month day-of-week, such as '30 2 * * *') "
    "or one of @hourly, @daily, @weekly, @monthly, @yearly"
)
_HASHED_FIELD = re.compile(r"^[hr](\(|/|$)", re.IGNORECASE)
_CRONITER_ECHO = re.compile(r"^\[[^\]]*\]\s*(is not acceptable)?")

_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_MICROSECONDS = {"h": 3_600_000_000, "m": 60_000_000, "s": 1_000_000, "ms": 1_000}
_DURATION_HELP = "use a duration such as 30s, 5m, 1h30m, 1.5h or 500ms (units h, m, s, ms)"
_MAX_INTERVAL = datetime.timedelta(days=365 * 100)


class ScheduleError(ValueError):
    """A schedule the user wrote cannot be used; the message says what to change."""


# ------------------------------------------------------------------ every


def parse_every(text: str) -> datetime.timedelta:
    """A Go-style duration (`30s`, `1h30m`, `500ms`, `1.5h`) as a positive timedelta.

    The grammar is the CRD's: one or more `<number><unit>` with units h, m, s and
    ms, no sign and no spaces. The value is computed exactly (1.1h is 3960s, not
    3959.9999s) and rounded to the microsecond.
    """
    if text.startswith("-"):
        raise ScheduleError(f"invalid interval {text!r}: it must be positive; {_DURATION_HELP}")
    if not _DURATION.fullmatch(text):
        raise ScheduleError(f"invalid interval {text!r}: {_DURATION_HELP}")
    total = fractions.Fraction(0)
    for number, unit in _DURATION_PART.findall(text):
        total += fractions.Fraction(number) * _UNIT_MICROSECONDS[unit]
    microseconds = round(total)
    if microseconds <= 0:
        raise ScheduleError(f"invalid interval {text!r}: it must be longer than zero")
    if microseconds >= _MAX_INTERVAL // _MICROSECOND:
        raise ScheduleError(f"invalid interval {text!r}: it must be shorter than 100 years")
    return datetime.timedelta(microseconds=microseconds)


# ------------------------------------------------------------------ cron


def _normalize_cron(text: str) -> str:
    """The five-field form of a cron expression, or ScheduleError saying what is wrong."""
    stripped = text.strip()
    if stripped.startswith("@"):
        expanded = _MACROS.get(stripped.lower())
        if expanded is None:
            raise ScheduleError(f"invalid cron expression {text!r}: unknown macro; {_CRON_HELP}")
        return expanded
    fields = stripped.split()
    if len(fields) != 5:
        raise ScheduleError(
            f"invalid cron expression {text!r}: it has {len(fields)} fields, not five; {_CRON_HELP}"
        )
    for field in fields:
        if _HASHED_FIELD.match(field):
            raise ScheduleError(
                f"invalid cron expression {text!r}: hashed and random fields (H, R) are not "
                f"supported, {field!r} would not name the same times each time it is read"
            )
    expression = " ".join(fields)
    try:
        croniter.expand(expression)
    except (CroniterError, TypeError) as error:
        raise ScheduleError(
            f"invalid cron expression {text!r}: {_croniter_detail(error)}; {_CRON_HELP}"
        ) from None
    return expression


def _croniter_detail(error: Exception) -> str:
    """croniter's complaint without its echo of the expression, which the caller quotes."""
    detail = _CRONITER_ECHO.sub("", str(error)).strip(" ,.;")
    if not detail or "\n" in detail:
        return "a field is malformed"
    return detail


def _time_zone(name: str) -> zoneinfo.ZoneInfo:
    if name == "localtime":
        # A file on the operator's host, not a zone: the same object would run at
        # different times on different nodes.
        raise ScheduleError(
            "unknown time zone 'localtime': give an IANA zone name such as Europe/Berlin or UTC"
        )
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r}: give an IANA zone name such as Europe/Berlin, "
            "America/New_York or UTC (names are case-sensitive)"
        ) from None


def _require_aware(name: str, value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(_UTC)


# ------------------------------------------------------------------ Schedule


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A recurring job's schedule: a cron expression in a time zone, or an interval.

    Build it with `Schedule.parse` from the job's fields. Exactly one of `cron`
    and `interval` is set. `anchor` is the job's creation time; runs are times
    strictly after it. All results are timezone-aware UTC datetimes; arguments
    may be aware datetimes in any zone.
    """

    cron: str | None
    interval: datetime.timedelta | None
    time_zone: str
    anchor: datetime.datetime
    _expression: str = dataclasses.field(init=False, repr=False, compare=False)
    _zone: zoneinfo.ZoneInfo = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval is None):
            raise ScheduleError(
                "a recurring job needs exactly one of schedule (a cron expression) and every "
                "(an interval such as 1h), "
                + ("got both" if self.cron is not None else "got neither")
            )
        object.__setattr__(self, "anchor", _require_aware("anchor", self.anchor))
        zone = _time_zone(self.time_zone)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_expression", "")
        if self.interval is not None:
            if self.interval <= datetime.timedelta(0):
                raise ScheduleError(
                    f"invalid interval {self.interval}: it must be longer than zero"
                )
            if self.time_zone != "UTC":
                raise ScheduleError(
                    "timeZone applies to schedule only: an every interval is the same in every "
                    "zone; remove timeZone"
                )
            return
        assert self.cron is not None
        expression = _normalize_cron(self.cron)
        object.__setattr__(self, "_expression", expression)
        try:
            self._wall_after(self._wall_of(self.anchor))
        except CroniterError:
            raise ScheduleError(
                f"cron expression {self.cron!r} never runs: no date within 50 years matches "
                "it (such as the 30th of February)"
            ) from None

    @classmethod
    def parse(
        cls,
        *,
        cron: str | None,
        every: str | None,
        time_zone: str | None,
        anchor: datetime.datetime,
    ) -> Schedule:
        """The schedule of a recurring job's `schedule`, `every` and `timeZone` fields.

        Raises ScheduleError, with a message naming the offending value, for an
        invalid cron expression or interval, an unknown time zone, a time zone with
        an interval, or neither or both of `cron` and `every`.
        """
        if cron is not None and every is not None:
            raise ScheduleError(
                f"schedule ({cron!r}) and every ({every!r}) are exclusive: give one of them"
            )
        interval = parse_every(every) if every is not None else None
        return cls(
            cron=cron,
            interval=interval,
            time_zone=time_zone if time_zone is not None else "UTC",
            anchor=anchor,
        )

    # -------------------------------------------------------------- queries

    def next_after(self, t: datetime.datetime) -> datetime.datetime:
        """The first run strictly after `t`."""
        t = max(_require_aware("t", t), self.anchor)
        if self.interval is not None:
            return self.anchor + self._index_after(t) * self.interval
        for wall in self._walls_after(self._wall_of(t)):
            instant = self._instant_of(wall)
            if instant > t:
                return instant
        raise AssertionError("unreachable: croniter iterates forever or raises")  # pragma: no cover

    def runs_between(
        self, after: datetime.datetime, until: datetime.datetime, limit: int
    ) -> list[datetime.datetime]:
        """The runs in (after, until], oldest first; only the newest `limit` if there are more.

        `count_between(after, until) - len(result)` is how many were left out.
        """
        return self._newest(after, until, limit)[0]

    def count_between(self, after: datetime.datetime, until: datetime.datetime) -> int:
        """How many runs fall in (after, until], without enumerating them."""
        after = max(_require_aware("after", after), self.anchor)
        until = _require_aware("until", until)
        if until <= after:
            return 0
        if self.interval is not None:
            return max(0, self._index_at_or_before(until) - self._index_after(after) + 1)
        return self._count_cron(after, until)

    # -------------------------------------------------------------- every

    def _index_after(self, t: datetime.datetime) -> int:
        """The k of the first run `anchor + k * interval` strictly after t (k >= 1)."""
        assert self.interval is not None
        return max(1, (t - self.anchor) // self.interval + 1)

    def _index_at_or_before(self, t: datetime.datetime) -> int:
        assert self.interval is not None
        return (t - self.anchor) // self.interval

    # -------------------------------------------------------------- newest runs

    def _newest(
        self, after: datetime.datetime, until: datetime.datetime, limit: int
    ) -> tuple[list[datetime.datetime], bool]:
        """The newest `limit` runs in (after, until], oldest first, and whether there are more."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        after = max(_require_aware("after", after), self.anchor)
        until = _require_aware("until", until)
        if until <= after:
            return [], False
        if self.interval is not None:
            first = self._index_after(after)
            last = self._index_at_or_before(until)
            if last < first:
                return [], False
            start = max(first, last - limit + 1)
            return [self.anchor + k * self.interval for k in range(start, last + 1)], start > first
        newest: list[datetime.datetime] = []
        for wall in self._walls_before(self._wall_ceiling(until) + _MINUTE):
            instant = self._instant_of(wall)
            if instant > until or (newest and newest[-1] == instant):
                # Past `until` (the rest of a repeated hour) or one more time in a DST gap.
                continue
            if instant <= after:
                return newest[::-1], False
            if len(newest) == limit:
                return newest[::-1], True
            newest.append(instant)
        raise AssertionError("unreachable: croniter iterates forever or raises")  # pragma: no cover

    # -------------------------------------------------------------- counting

    def _count_cron(self, after: datetime.datetime, until: datetime.datetime) -> int:
        minutes, hours = self._times_of_day()
        day = self._wall_of(after).date()
        last_day = self._wall_ceiling(until).date()
        total = 0
        last_counted: datetime.datetime | None = None
        while day <= last_day:
            midnight = datetime.datetime.combine(day, datetime.time())
            day = self._wall_after(midnight - _MINUTE).date()  # the next day with runs
            if day > last_day:
                break
            midnight = datetime.datetime.combine(day, datetime.time())
            offset = self._fixed_offset(midnight)
            if offset is not None:
                low = (after + offset).replace(tzinfo=None) - midnight
                high = (until + offset).replace(tzinfo=None) - midnight
                total += _count_times_of_day(minutes, hours, low, high)
                last_counted = None
            else:
                for wall in self._walls_after(midnight - _MINUTE):
                    if wall.date() != day:
                        break
                    instant = self._instant_of(wall)
                    if after < instant <= until and instant != last_counted:
                        total += 1
                        last_counted = instant
            day += _DAY
        return total

    def _times_of_day(self) -> tuple[list[int], list[int]]:
        fields, _ = croniter.expand(self._expression)
        minute_field: list[int | str] = fields[0]
        hour_field: list[int | str] = fields[1]
        minutes = list(range(60)) if "*" in minute_field else sorted(int(m) for m in minute_field)
        hours = list(range(24)) if "*" in hour_field else sorted(int(h) for h in hour_field)
        return minutes, hours

    def _fixed_offset(self, midnight: datetime.datetime) -> datetime.timedelta | None:
        """The UTC offset of the local day starting at `midnight` if it has no transition.

        A day whose two midnights exist, with the same offset as each other and as
        the second before the first one, is taken to have no transition: only a
        zone that changed its offset and changed it back within one day could
        make that wrong. (The second before matters: America/Nuuk's spring gap
        ends exactly at midnight, and the next day's first runs share its instant.)
        """
        start = self._instant_of(midnight)
        end = self._instant_of(midnight + _DAY)
        if self._wall_of(start) != midnight or self._wall_of(end) != midnight + _DAY:
            return None
        offsets = {
            moment.astimezone(self._zone).utcoffset()
            for moment in (start - datetime.timedelta(seconds=1), start, end)
        }
        if len(offsets) != 1:
            return None
        offset = offsets.pop()
        assert offset is not None
        return offset

    # -------------------------------------------------------------- wall clock

    def _wall_of(self, t: datetime.datetime) -> datetime.datetime:
        """The naive local wall-clock time of an instant."""
        return t.astimezone(self._zone).replace(tzinfo=None)

    def _wall_ceiling(self, t: datetime.datetime) -> datetime.datetime:
        """A wall time at or after every wall time that runs at or before t.

        Usually t's own wall time. In the second pass through a repeated hour the
        rest of that hour ran in its first pass, before t, so the ceiling is moved
        by the size of the fall-back (the caller drops the runs after t).
        """
        local = t.astimezone(self._zone)
        wall = local.replace(tzinfo=None)
        if local.fold == 1:
            first_offset = wall.replace(tzinfo=self._zone, fold=0).utcoffset()
            offset = local.utcoffset()
            assert first_offset is not None and offset is not None
            wall += max(datetime.timedelta(0), first_offset - offset)
        return wall

    def _instant_of(self, wall: datetime.datetime) -> datetime.datetime:
        """The instant a naive wall time runs at (the DST rule in the module docstring)."""
        instant = wall.replace(tzinfo=self._zone, fold=0).astimezone(_UTC)
        if self._wall_of(instant) == wall:
            # It exists; for a repeated wall time fold=0 is its first occurrence.
            return instant
        # It is in a gap: run at the transition, the first instant after the gap.
        # zoneinfo maps a gap time to the instants either side of the transition
        # with fold 0 and 1; the transition is found between them by bisection on
        # whole seconds, which is where tz transitions fall.
        other = wall.replace(tzinfo=self._zone, fold=1).astimezone(_UTC)
        low = min(instant, other).replace(microsecond=0)
        steps = -(-(max(instant, other) - low) // _SECOND)  # whole seconds, rounded up
        while steps > 1:
            middle = low + steps // 2 * _SECOND
            if self._wall_of(middle) > wall:
                steps //= 2
            else:
                low, steps = middle, steps - steps // 2
        return low + steps * _SECOND

    def _wall_after(self, wall: datetime.datetime) -> datetime.datetime:
        """The first wall time the expression names strictly after `wall`."""
        return next(self._walls_after(wall))

    def _walls_after(self, wall: datetime.datetime) -> Iterator[datetime.datetime]:
        iterator = croniter(self._expression, wall)
        while True:
            following: datetime.datetime = iterator.get_next(datetime.datetime)
            yield following

    def _walls_before(self, wall: datetime.datetime) -> Iterator[datetime.datetime]:
        """The wall times the expression names strictly before `wall`, newest first."""
        iterator = croniter(self._expression, wall.replace(second=0, microsecond=0))
        while True:
            previous: datetime.datetime = iterator.get_prev(datetime.datetime)
            yield previous


def _count_times_of_day(
    minutes: list[int], hours: list[int], low: datetime.timedelta, high: datetime.timedelta
) -> int:
    """How many times of day h:m (from the sorted lists) lie in (low, high] past midnight."""
    first = max(0, low // _MINUTE + 1)
    last = min(24 * 60 - 1, high // _MINUTE)
    if last < first:
        return 0
    count = 0
    for hour in hours:
        lowest = max(first - 60 * hour, 0)
        highest = min(last - 60 * hour, 59)
        if lowest <= highest:
            count += bisect.bisect_right(minutes, highest) - bisect.bisect_left(minutes, lowest)
    return count


# ------------------------------------------------------------------ missed runs


@dataclasses.dataclass(frozen=True)
class MissedRuns:
    """The runs to create now, oldest first, and how many due runs were not created, and why."""

    to_create: list[datetime.datetime]
    skipped: int
    reason: str


def missed_runs(
    *,
    schedule: Schedule,
    last_scheduled: datetime.datetime | None,
    created: datetime.datetime,
    now: datetime.datetime,
    policy: Literal["Skip", "RunLatest", "RunAll"],
    max_missed: int,
    starting_deadline_seconds: int | None,
    grace_seconds: float = 5,
) -> MissedRuns:
    """Which due runs of a recurring job to create now.

    The rules, applied in this order:

    1. The due runs are those in (last_scheduled, now], or (created, now] before
       the first run; `last_scheduled` is the newest run already created.
    2. With a starting deadline, a due run more than `starting_deadline_seconds`
       before now is dropped (a run exactly that late is still created).
    3. Of the rest, the policy picks: Skip creates only the newest, and only if
       it is at most `grace_seconds` old (the run that is due now, not one
       missed while the operator was away); RunLatest creates the newest;
       RunAll creates the newest `max_missed`.

    Every due run not created is counted in `skipped`, and `reason` says how
    many each rule dropped, as phrases that read after "skipped" ("3 runs more
    than startingDeadlineSeconds (60s) late; 2 runs older than the latest
    (missedRunsPolicy RunLatest)"), or is "" when none was. The result depends on its
    arguments only, so calling it again after a crash gives the same answer as
    long as `last_scheduled` was not yet updated.
    """
    if max_missed < 1:
        raise ValueError(f"max_missed must be >= 1, got {max_missed}")
    if grace_seconds < 0:
        raise ValueError(f"grace_seconds must be >= 0, got {grace_seconds}")
    if starting_deadline_seconds is not None and starting_deadline_seconds <= 0:
        raise ValueError(f"starting_deadline_seconds must be > 0, got {starting_deadline_seconds}")
    now = _require_aware("now", now)
    start = _require_aware(
        "last_scheduled" if last_scheduled is not None else "created",
        last_scheduled if last_scheduled is not None else created,
    )
    limit = max_missed if policy == "RunAll" else 1

    due, more = schedule._newest(start, now, limit)
    due_count = schedule.count_between(start, now) if more else len(due)

    eligible, eligible_count = due, due_count
    if starting_deadline_seconds is not None:
        # Microseconds are datetime's resolution: (cutoff - 1us, now] is [cutoff, now].
        cutoff = now - datetime.timedelta(seconds=starting_deadline_seconds) - _MICROSECOND
        if cutoff > start:
            eligible, more = schedule._newest(cutoff, now, limit)
            eligible_count = schedule.count_between(cutoff, now) if more else len(eligible)

    if policy == "Skip":
        grace = datetime.timedelta(seconds=grace_seconds)
        to_create = [t for t in eligible[-1:] if now - t <= grace]
    elif policy == "RunLatest":
        to_create = eligible[-1:]
    elif policy == "RunAll":
        to_create = eligible[-max_missed:]
    else:
        raise ValueError(f"unknown missed-runs policy {policy!r}")

    late = due_count - eligible_count
    left_out = eligible_count - len(to_create)
    reasons = []
    if late:
        reasons.append(
            f"{_runs(late)} more than startingDeadlineSeconds ({starting_deadline_seconds}s) late"
        )
    if left_out and policy == "Skip":
        reasons.append(f"{_runs(left_out, 'missed ')} (missedRunsPolicy Skip)")
    elif left_out:
        reasons.append(
            f"{_runs(left_out)} older than the "
            + ("latest" if policy == "RunLatest" else f"newest {max_missed}")
            + f" (missedRunsPolicy {policy}"
            + (f", maxMissedRuns {max_missed})" if policy == "RunAll" else ")")
        )
    return MissedRuns(to_create=to_create, skipped=late + left_out, reason="; ".join(reasons))


def _runs(count: int, kind: str = "") -> str:
    return f"{count} {kind}run" if count == 1 else f"{count} {kind}runs"
