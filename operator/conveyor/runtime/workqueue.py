"""A deduplicating work queue with priorities: a key is never processed by two workers at once.

Watch events, timers and admissions all say "look at this key again"; many
such requests for the same key collapse into one pass. A key re-added while
a worker is processing it is processed once more after that worker finishes,
so the latest state is always looked at, and never concurrently. This is the
shape of client-go's workqueue, and what lets the reconcilers read the
indices without locks. A key whose reconcile fails is retried with
exponential backoff (1s, 2s, 4s ... 60s), so a persistent error (a
forbidden namespace, an API outage) does not become a busy loop.

Keys have a priority (lower first, FIFO within one). Ten thousand jobs
submitted at once are ten thousand job keys; the admission pass of their
queue must not wait behind all of them, or nothing starts until every job
has been looked at once. So admission goes first, then job reconciles, and
writes that only inform (a Queued phase) come last.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)


class WorkQueue:
    def __init__(
        self,
        handler: Callable[[Hashable], Awaitable[None]],
        *,
        workers: int,
        priority: Callable[[Hashable], int] = lambda _key: 0,
    ) -> None:
        self._handler = handler
        self._priority = priority
        self._workers = workers
        self._queue: asyncio.PriorityQueue[tuple[int, int, Hashable]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._queued: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._work(), name=f"conveyor-worker-{i}")
                for i in range(self._workers)
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def add(self, key: Hashable) -> None:
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait((self._priority(key), next(self._order), key))

    def __len__(self) -> int:
        return len(self._queued)

    async def _work(self) -> None:
        while True:
            _, _, key = await self._queue.get()
            self._queued.discard(key)
            self._processing.add(key)
            try:
                await self._handler(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(60.0, 0.5 * 2**failures)
                if failures == 1:
                    log.exception("reconciling %s failed; retrying in %.0fs", key, delay)
                else:
                    log.error(
                        "reconciling %s failed again (%r); retrying in %.0fs", key, error, delay
                    )
                self._retry_later(key, delay)
            finally:
                self._processing.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)

    def _retry_later(self, key: Hashable, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)
