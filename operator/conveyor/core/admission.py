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

A queue can hold ten thousand waiting jobs and as many pods, and the admitter
runs many times a second while it drains. So the two sides of the decision are
kept up to date as events arrive instead of recomputed per pass: the
`WaitingLine` stays in start order (a heap), and `Occupancy` knows which pods
hold a slot and when the recent ones started. A pass then costs the jobs it
admits, not the size of the queue.
"""

from __future__ import annotations

import bisect
import collections
import datetime
import heapq
from collections.abc import Iterator, Sequence
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


def queue_order_key(priority: int, created_at: datetime.datetime, name: str) -> str:
    """A string that sorts like the start order, for `--sort-by=.status.queueOrder`."""
    inverted = PRIORITY_OFFSET - max(-PRIORITY_OFFSET, min(PRIORITY_OFFSET, priority))
    stamp = created_at.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%S.%f")
    return f"{inverted:010d}/{stamp}/{name}"


@dataclass(frozen=True)
class Plan:
    slots: int
    """How many of the waiting jobs start now (the first ones in start order)."""
    retry_at: datetime.datetime | None
    """When the rate limit frees its next start, if it held anyone back."""


def plan(
    *,
    limits: QueueLimits,
    now: datetime.datetime,
    running: int,
    recent_starts: Sequence[datetime.datetime],
    waiting: int,
) -> Plan:
    """How many of `waiting` jobs start now, and if the rate limit holds some, until when."""
    if waiting <= 0 or limits.paused:
        return Plan(0, None)

    slots = waiting
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

    if slots >= waiting:
        return Plan(waiting, None)
    return Plan(slots, retry_at)


class WaitingLine:
    """The jobs of one queue that are ready to start, in start order as they come and go.

    A heap with lazy deletion: a job that leaves, or comes back with another
    priority, leaves a stale entry behind that `take` skips; the heap is rebuilt
    when stale entries outnumber live ones.
    """

    def __init__(self) -> None:
        self._members: dict[str, Candidate] = {}
        self._heap: list[tuple[tuple[int, datetime.datetime, str], Candidate]] = []

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def add(self, candidate: Candidate) -> bool:
        """Put a job in line (or update its place); True if it was not in line before."""
        known = self._members.get(candidate.name)
        if known == candidate:
            return False
        self._members[candidate.name] = candidate
        heapq.heappush(self._heap, (candidate.sort_key, candidate))
        self._compact()
        return known is None

    def discard(self, name: str) -> None:
        if self._members.pop(name, None) is not None:
            self._compact()

    def take(self, count: int) -> list[Candidate]:
        """Remove and return the first `count` jobs in start order."""
        taken: list[Candidate] = []
        while len(taken) < count and self._heap:
            _, candidate = heapq.heappop(self._heap)
            if self._members.get(candidate.name) is candidate:
                del self._members[candidate.name]
                taken.append(candidate)
        return taken

    def __iter__(self) -> Iterator[Candidate]:
        """The jobs in line, in start order (sorts; for tests and inspection)."""
        return iter(sorted(self._members.values(), key=lambda c: c.sort_key))

    def _compact(self) -> None:
        if len(self._heap) > 2 * len(self._members) + 64:
            self._heap = [(c.sort_key, c) for c in self._members.values()]
            heapq.heapify(self._heap)


class Occupancy:
    """The pods of one queue that hold a slot, and when the recent ones started.

    Fed with every state of every pod as it is seen, in any order and more than
    once: a pod's end is final, so a late, older state (the response to the
    create, read after the watch showed the pod finished) never revives it.
    Pods are known by uid, so a pod recreated under the same name is new.
    Start times are kept only for a rate-limited queue, for one period; the
    caller builds a new Occupancy when the queue's limits change.

    A job admitted but whose pod is not created yet holds a reservation, so the
    next admission pass can run while the creates are in flight and still count
    it (and its start, for the rate limit).
    """

    FORGOTTEN = 4096
    """Deleted pods remembered, against a create response read after the delete."""

    def __init__(self, rate_period: datetime.timedelta | None = None) -> None:
        self.rate_period = rate_period
        self._live: set[str] = set()
        self._ended: set[str] = set()
        self._forgotten: collections.deque[str] = collections.deque()
        self._forgotten_set: set[str] = set()
        self._starts: list[tuple[datetime.datetime, str]] = []
        self._started: dict[str, datetime.datetime] = {}
        self._reserved: set[str] = set()

    @property
    def running(self) -> int:
        return len(self._live) + len(self._reserved)

    @property
    def reservations(self) -> frozenset[str]:
        return frozenset(self._reserved)

    def holds(self, job: str) -> bool:
        """The job holds a reservation."""
        return job in self._reserved

    def reserve(self, job: str, now: datetime.datetime) -> None:
        """Hold a slot (and a start at `now`) for a job whose pod is being created."""
        self._reserved.add(job)
        self._add_start(_RESERVED + job, now)

    def release(self, job: str) -> bool:
        """The job's pod exists and is observed (or was not created): drop its reservation.

        True if the job held one.
        """
        if job not in self._reserved:
            return False
        self._reserved.discard(job)
        moment = self._started.pop(_RESERVED + job, None)
        if moment is not None:
            index = bisect.bisect_left(self._starts, (moment, _RESERVED + job))
            if index < len(self._starts) and self._starts[index] == (moment, _RESERVED + job):
                del self._starts[index]
        return True

    def observe(self, uid: str, *, live: bool, created_at: datetime.datetime | None) -> None:
        if uid in self._forgotten_set:
            return
        if live and uid not in self._ended:
            self._live.add(uid)
        elif not live:
            self._live.discard(uid)
            self._ended.add(uid)
        if created_at is not None:
            self._add_start(uid, created_at)

    def _add_start(self, key: str, moment: datetime.datetime) -> None:
        if self.rate_period is not None and key not in self._started:
            self._started[key] = moment
            bisect.insort(self._starts, (moment, key))

    def started(self, uid: str, at: datetime.datetime) -> None:
        """The pod started no earlier than `at` (when the response to its create arrived):
        the API server stamped it before then, so windows of its stamps stay within the limit."""
        if self.rate_period is None:
            return
        known = self._started.get(uid)
        if known is not None and known >= at:
            return
        if known is not None:
            index = bisect.bisect_left(self._starts, (known, uid))
            if index < len(self._starts) and self._starts[index] == (known, uid):
                del self._starts[index]
            del self._started[uid]
        self._add_start(uid, at)

    def forget(self, uid: str) -> None:
        """The pod is gone: it holds no slot, now or later."""
        self._live.discard(uid)
        self._ended.discard(uid)
        if uid in self._forgotten_set:
            return
        if len(self._forgotten) >= self.FORGOTTEN:
            self._forgotten_set.discard(self._forgotten.popleft())
        self._forgotten.append(uid)
        self._forgotten_set.add(uid)

    def recent_starts(self, now: datetime.datetime) -> list[datetime.datetime]:
        """Starts in the rate period ending now; older ones are dropped for good."""
        if self.rate_period is None:
            return []
        cut = bisect.bisect_right(self._starts, (now - self.rate_period, "\U0010ffff"))
        if cut:
            for _, key in self._starts[:cut]:
                self._started.pop(key, None)
            del self._starts[:cut]
        return [moment for moment, _ in self._starts]


_RESERVED = "\x00reserved:"  # cannot be a uid
