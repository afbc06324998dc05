"""The one scheduler for every time-based wake-up: backoff ends, startAt, deadlines, TTLs.

Ten thousand delayed jobs are ten thousand heap entries and one sleeping
task, not ten thousand timers. Nothing here is state: after a restart each
job's reconcile computes its wake-up again from its status (nextAttemptAt,
startAt, completionTime + TTL) and schedules it anew.

A key keeps only its earliest wake-up; a later request for the same key is
dropped (the earlier wake-up reconciles, and the reconcile asks again), and
an earlier one replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import heapq
import itertools
from collections.abc import Callable, Hashable


class Scheduler:
    def __init__(
        self,
        fire: Callable[[Hashable], None],
        *,
        clock: Callable[[], datetime.datetime],
    ) -> None:
        self._fire = fire
        self._clock = clock
        self._heap: list[tuple[datetime.datetime, int, Hashable]] = []
        self._due: dict[Hashable, datetime.datetime] = {}
        self._counter = itertools.count()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="conveyor-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def at(self, key: Hashable, when: datetime.datetime) -> None:
        current = self._due.get(key)
        if current is not None and current <= when:
            return
        self._due[key] = when
        heapq.heappush(self._heap, (when, next(self._counter), key))
        if self._heap[0][2] == key:
            self._changed.set()

    def __len__(self) -> int:
        return len(self._due)

    async def _run(self) -> None:
        while True:
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                when, _, key = heapq.heappop(self._heap)
                if self._due.get(key) == when:
                    del self._due[key]
                    self._fire(key)
            self._changed.clear()
            timeout = (self._heap[0][0] - now).total_seconds() if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
