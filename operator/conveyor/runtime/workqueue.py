"""The one way to wait: a deduplicating work queue with priorities, delays and retries.

Watch events, wake-up times and admissions all say "look at this key again";
many such requests for the same key collapse into one pass. A key re-added
while a worker is processing it is processed once more after that worker
finishes, so the latest state is always looked at, and never concurrently.
That is the shape of client-go's workqueue, and what lets every reconciler
read the cache and act on one object without locks: all the work on one job
(its lifecycle, its pod create, its Queued write) goes through the job's one
key.

Keys are typed (`Key`: a `Kind`, a namespace, a name), and each kind carries
the priority its keys get (lower first, FIFO within one). Ten thousand jobs
submitted at once are ten thousand job keys; the admission pass of their
queue must not wait behind all of them, or nothing starts until every job
has been looked at once. So a queue's admission pass goes first. A key can
also be added with another priority than its kind's: a job its queue has just
admitted is a `START`, ahead of the reconciles; a job that only needs its
Queued phase written is `INFORM`, after everything else but the finished
jobs a restart looks at again (`SETTLED`). A key already waiting moves up
when added with a better priority, never down.

Time-based wake-ups (backoff ends, startAt, deadlines, TTLs, the rate limit's
next token, the queue status's next write) are `add_after`: ten thousand
delayed jobs are ten thousand heap entries and one sleeping task, not ten
thousand timers. A key keeps only its earliest wake-up. Nothing here is state
a restart would lose: each reconcile computes its wake-up again from the
objects and asks anew.

A reconcile that raises is retried after an exponential backoff per key
(`core.backoff`: 1 s, 2 s, 4 s ... 60 s, jittered), so a persistent error (a
forbidden namespace, an API outage) does not become a busy loop; a success
forgets the key's failures. Failures are logged by kind: the first of a kind
with its traceback, the rest counted and summed up once a minute, so that
ten thousand keys failing alike during an outage write a few lines, not ten
thousand a minute.

The queue can be paused (`pause`): keys keep collecting, deduplicated, and
nothing is processed until `resume`; the operator does that while one of its
watches cannot list.

It counts what client-go's workqueue counts (`conveyor_workqueue_*`): adds,
how long a ready key waited for a worker, how long the worker took, retries;
its depth is read when Prometheus scrapes (`depth`). Each is one increment or
observation of a child bound once per kind, so counting costs a key's pass
about a microsecond and a half.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import enum
import heapq
import itertools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from conveyor.core import backoff
from conveyor.runtime import metrics

log = logging.getLogger(__name__)


class Priority(enum.IntEnum):
    """Who goes first when several keys wait: the lowest value."""

    ADMIT = 0
    """A queue's admission pass: decides which waiting jobs start."""
    START = 1
    """A job its queue admitted: its pod is created."""
    RECONCILE = 2
    """A job, or its pods, changed: carry its lifecycle on."""
    STATUS = 3
    """A queue's counts are written."""
    INFORM = 4
    """A job that must wait gets its Queued phase written."""
    SETTLED = 5
    """A finished job looked at again by a new term (its TTL, a pod left behind): after
    every job that can still run, which a namespace of finished ones must not hold up."""


class Kind(enum.Enum):
    """What a key names, and the priority its keys get by default."""

    JOB = ("job", Priority.RECONCILE)
    """A BackgroundJob, recurring or not."""
    ADMIT = ("admit", Priority.ADMIT)
    """A JobQueue's admission pass (the empty name: jobs that name no queue)."""
    QUEUE_STATUS = ("queue-status", Priority.STATUS)
    """A JobQueue's status."""

    def __init__(self, label: str, priority: Priority) -> None:
        self.label = label
        self.priority = priority


_ADDS = {kind: metrics.WORKQUEUE_ADDS.labels(kind.label) for kind in Kind}
_QUEUE_DURATION = {kind: metrics.WORKQUEUE_QUEUE_DURATION.labels(kind.label) for kind in Kind}
_WORK_DURATION = {kind: metrics.WORKQUEUE_WORK_DURATION.labels(kind.label) for kind in Kind}
_RETRIES = {kind: metrics.WORKQUEUE_RETRIES.labels(kind.label) for kind in Kind}


class Key(NamedTuple):
    kind: Kind
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.label} {self.namespace}/{self.name}"


Handler = Callable[[Key], Awaitable[None]]


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def retry_delay(failures: int) -> float:
    """Seconds before a key that failed `failures` times in a row is tried again."""
    return backoff.delay_seconds(
        strategy="Exponential",
        initial=1.0,
        multiplier=2.0,
        maximum=60.0,
        jitter=0.1,
        failures=failures,
    )


class WorkQueue:
    def __init__(
        self,
        handler: Handler,
        *,
        workers: int,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        self._handler = handler
        self._workers = workers
        self._clock = clock
        self._order = itertools.count()
        # Ready keys, with lazy deletion: _queued holds each key's live entry, and an entry
        # left behind by a move up is skipped when it comes out.
        self._ready: asyncio.PriorityQueue[tuple[int, int, Key]] = asyncio.PriorityQueue()
        # (rank, order, ready since): a plain tuple, cheaper than a NamedTuple on this path.
        self._queued: dict[Key, tuple[int, int, float]] = {}
        self._processing: set[Key] = set()
        self._dirty: dict[Key, Priority] = {}
        # Delayed keys: a heap with lazy deletion; _due holds each key's earliest time.
        self._timers: list[tuple[datetime.datetime, int, Key]] = []
        self._due: dict[Key, datetime.datetime] = {}
        self._timers_changed = asyncio.Event()
        self._failures: dict[Key, int] = {}
        self._failure_log = FailureLog(clock=time.monotonic)
        self._running = asyncio.Event()
        self._running.set()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ adding

    def add(self, key: Key, priority: Priority | None = None) -> None:
        """Process the key soon (once, however often it is added)."""
        rank = key.kind.priority if priority is None else priority
        if key in self._processing:
            if key not in self._dirty:
                _ADDS[key.kind].inc()
            self._dirty[key] = min(rank, self._dirty.get(key, rank))
            return
        self._enqueue(key, rank)

    def _enqueue(self, key: Key, rank: Priority, *, counted: bool = False) -> None:
        """Put the key in line, or move it up; `counted`: its add was counted already."""
        queued = self._queued.get(key)
        if queued is None:
            if not counted:
                _ADDS[key.kind].inc()
            ready_since = time.perf_counter()
        elif queued[0] <= rank:
            return
        else:
            ready_since = queued[2]  # moved up: it has waited since it was added
        order = next(self._order)
        self._queued[key] = (int(rank), order, ready_since)
        self._ready.put_nowait((int(rank), order, key))

    def add_after(self, key: Key, when: datetime.datetime) -> None:
        """Add the key at `when` (at once if that has passed); only its earliest time is kept."""
        current = self._due.get(key)
        if current is not None and current <= when:
            return
        self._due[key] = when
        heapq.heappush(self._timers, (when, next(self._order), key))
        if self._timers[0][2] == key:
            self._timers_changed.set()

    def add_rate_limited(self, key: Key) -> float:
        """Add the key after a backoff that grows with its failures in a row; returns it."""
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay = retry_delay(failures)
        self.add_after(key, self._clock() + datetime.timedelta(seconds=delay))
        return delay

    def forget(self, key: Key) -> None:
        """The key succeeded: its next failure backs off from the start."""
        self._failures.pop(key, None)

    def pause(self) -> None:
        """Process nothing until `resume` (keys keep collecting)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def clock_moved(self) -> None:
        """Look at the wake-up times again (for a clock that jumps, in tests)."""
        self._timers_changed.set()

    def __len__(self) -> int:
        return len(self._queued)

    def depth(self) -> dict[str, int]:
        """Ready keys by kind (for the scrape: it counts them)."""
        found = dict.fromkeys((kind.label for kind in Kind), 0)
        for key in self._queued:
            found[key.kind.label] += 1
        return found

    @property
    def idle(self) -> bool:
        """Nothing ready and nothing being processed (wake-ups may still be pending)."""
        return not self._queued and not self._processing

    def due(self, key: Key) -> datetime.datetime | None:
        """When the key is to be added, if a wake-up is pending."""
        return self._due.get(key)

    # ------------------------------------------------------------ running

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._work(), name=f"conveyor-worker-{i}")
                for i in range(self._workers)
            ]
            self._tasks.append(asyncio.create_task(self._fire_timers(), name="conveyor-timers"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _next(self) -> Key:
        while True:
            await self._running.wait()
            rank, order, key = await self._ready.get()
            if not self._running.is_set():
                self._ready.put_nowait((rank, order, key))  # paused meanwhile: put it back
                continue
            entry = self._queued.get(key)
            if entry is not None and entry[0] == rank and entry[1] == order:
                del self._queued[key]
                _QUEUE_DURATION[key.kind].observe(time.perf_counter() - entry[2])
                return key

    async def _work(self) -> None:
        while True:
            key = await self._next()
            self._processing.add(key)
            began = time.perf_counter()
            try:
                await self._handler(key)
                self.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                delay = self.add_rate_limited(key)
                self._failure_log.failed(key, error, delay)
                _RETRIES[key.kind].inc()
            finally:
                _WORK_DURATION[key.kind].observe(time.perf_counter() - began)
                self._processing.discard(key)
                again = self._dirty.pop(key, None)
                if again is not None:
                    self._enqueue(key, again, counted=True)

    async def _fire_timers(self) -> None:
        while True:
            now = self._clock()
            while self._timers and self._timers[0][0] <= now:
                when, _, key = heapq.heappop(self._timers)
                if self._due.get(key) == when:
                    del self._due[key]
                    self.add(key)
            self._timers_changed.clear()
            timeout = (self._timers[0][0] - now).total_seconds() if self._timers else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timers_changed.wait(), timeout)


_QUOTED = re.compile(r'"[^"]*"')


class FailureLog:
    """Reconcile failures, logged by kind: the first with its traceback, then once a minute
    a line with how many more there were. A kind is the key's kind, the error's type and
    its message with quoted names blanked out, so that "job "j7" is forbidden" for a
    thousand jobs is one kind."""

    INTERVAL = 60.0

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._kinds: dict[tuple[str, str, str], tuple[float, int]] = {}

    def failed(self, key: Key, error: Exception, delay: float) -> None:
        kind = (key.kind.label, type(error).__name__, _QUOTED.sub('"…"', str(error))[:160])
        now = self._clock()
        known = self._kinds.get(kind)
        if known is None:
            self._kinds[kind] = (now, 0)
            log.error("%s failed; retrying in %.1fs", key, delay, exc_info=error)
            return
        since, more = known
        if now - since < self.INTERVAL:
            self._kinds[kind] = (since, more + 1)
            return
        self._kinds[kind] = (now, 0)
        log.error(
            "%s failed again (%d more %s failures like it in the last %.0fs): %s: %s; "
            "retrying in %.1fs",
            key,
            more,
            key.kind.label,
            now - since,
            type(error).__name__,
            str(error)[:500],
            delay,
        )
