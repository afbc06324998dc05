"""Which waiting jobs of a queue start now.

One function decides for a whole queue at once, so the two promises a queue
makes are checked in one place:

- concurrency: `running` (every job with a live pod, including pods created a
  moment ago that no watch has shown yet) plus the jobs admitted now never
  exceeds `concurrency`;
- rate limit: in any window of `periodSeconds`, at most `max` pods start. The
  window slides: the recent starts the caller passes in are those of the last
  period, and a job is admitted only if fewer than `max` of them (plus the
  ones admitted in this call) fall in the period ending now.

Order is effective priority (higher first), then creation time (older first),
then name, so that the waiting line is total and the same after a restart.
When the rate limit holds jobs back, `retry_at` says when the next token
frees, so the caller can sleep exactly that long instead of polling.
"""

from __future__ import annotations

import bisect
import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PRIORITY_OFFSET = 1_000_000_000
"""Priorities lie in [-1e9, 1e9]; the queue order key stores 1e9 - priority."""


@dataclass(frozen=True, order=True)
class Candidate:
    """A job ready to start, as the queue sees it. Sorts in start order."""

    sort_key: tuple[int, datetime.datetime, str] = field(init=False, repr=False)
    name: str
    priority: int
    created_at: datetime.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "sort_key", (-self.priority, self.created_at, self.name))


@dataclass(frozen=True)
class QueueLimits:
    concurrency: int | None = None
    rate_max: int | None = None
    rate_period_seconds: float = 1.0
    paused: bool = False

    @classmethod
    def unlimited(cls) -> QueueLimits:
        return cls()


@dataclass(frozen=True)
class Admission:
    admitted: list[Candidate]
    retry_at: datetime.datetime | None
    """When the rate limit frees its next start, if it held anyone back."""
    held_by: str | None
    """Why jobs were held back: Paused, Concurrency or RateLimit (None: nobody waits)."""


def start_order(candidates: Iterable[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: c.sort_key)


def queue_order_key(priority: int, created_at: datetime.datetime, name: str) -> str:
    """A string that sorts like the start order, for `--sort-by=.status.queueOrder`."""
    inverted = PRIORITY_OFFSET - max(-PRIORITY_OFFSET, min(PRIORITY_OFFSET, priority))
    stamp = created_at.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%S.%f")
    return f"{inverted:010d}/{stamp}/{name}"


def admit(
    *,
    limits: QueueLimits,
    now: datetime.datetime,
    running: int,
    recent_starts: Sequence[datetime.datetime],
    candidates: Iterable[Candidate],
) -> Admission:
    """Pick the candidates that start now, in start order."""
    waiting = start_order(candidates)
    if not waiting:
        return Admission([], None, None)
    if limits.paused:
        return Admission([], None, "Paused")

    slots = len(waiting)
    if limits.concurrency is not None:
        slots = min(slots, max(0, limits.concurrency - running))

    retry_at: datetime.datetime | None = None
    if limits.rate_max is not None:
        period = datetime.timedelta(seconds=limits.rate_period_seconds)
        window_start = now - period
        in_window = sorted(t for t in recent_starts if t > window_start)
        tokens = max(0, limits.rate_max - len(in_window))
        if tokens < slots:
            slots = tokens
            # With this call's starts at `now`, the window holds at least `max` starts;
            # the next token frees when the max-th newest of them leaves it. Sorted again:
            # a start stamped ahead of `now` (a creationTimestamp rounded up) is newer.
            starts = sorted([*in_window, *([now] * tokens)])
            retry_at = starts[len(starts) - limits.rate_max] + period

    admitted = waiting[:slots]
    held_by = None
    if len(admitted) < len(waiting):
        held_by = "RateLimit" if retry_at is not None else "Concurrency"
    return Admission(admitted, retry_at if len(admitted) < len(waiting) else None, held_by)


def count_in_window(
    starts: Sequence[datetime.datetime], end: datetime.datetime, period_seconds: float
) -> int:
    """Starts in the window (end - period, end]; `starts` sorted. For the invariant tests."""
    begin = end - datetime.timedelta(seconds=period_seconds)
    return bisect.bisect_right(starts, end) - bisect.bisect_right(starts, begin)
