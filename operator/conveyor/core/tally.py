"""How many jobs of a queue are in each phase, kept as jobs change.

A queue's status (pending, running, succeeded ... and the age of the oldest
pending job) is written about once a second; counting ten thousand jobs for
each write would cost more than running them. So each job's contribution is
updated when its watch event arrives, and reading the counts costs nothing.
"""

from __future__ import annotations

import collections
import datetime
import heapq
from dataclasses import dataclass

PENDING_PHASES = ("Pending", "Queued")


@dataclass(frozen=True)
class Entry:
    queue: str
    phase: str
    created_at: datetime.datetime


class Tally:
    """Job counts by phase for every queue of one operator; keys are (namespace, name)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Entry] = {}
        self._counts: dict[tuple[str, str], collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        # Pending jobs by age, per queue; entries whose job moved on are skipped when read.
        self._pending: dict[tuple[str, str], list[tuple[datetime.datetime, str]]] = (
            collections.defaultdict(list)
        )

    def update(self, namespace: str, name: str, entry: Entry | None) -> None:
        """Record a job's current queue and phase; None when it is gone or not counted."""
        key = (namespace, name)
        old = self._entries.pop(key, None)
        if old is not None:
            counts = self._counts[(namespace, old.queue)]
            counts[old.phase] -= 1
            if not counts[old.phase]:
                del counts[old.phase]
        if entry is None:
            return
        self._entries[key] = entry
        self._counts[(namespace, entry.queue)][entry.phase] += 1
        already_in_line = (
            old is not None
            and old.phase in PENDING_PHASES
            and (old.queue, old.created_at) == (entry.queue, entry.created_at)
        )
        if entry.phase in PENDING_PHASES and not already_in_line:
            pending = self._pending[(namespace, entry.queue)]
            heapq.heappush(pending, (entry.created_at, name))
            if len(pending) > 2 * self._count_pending(namespace, entry.queue) + 64:
                self._rebuild_pending(namespace, entry.queue)

    def counts(self, namespace: str, queue: str) -> collections.Counter[str]:
        return collections.Counter(self._counts.get((namespace, queue)) or {})

    def oldest_pending(self, namespace: str, queue: str) -> datetime.datetime | None:
        pending = self._pending.get((namespace, queue))
        while pending:
            created_at, name = pending[0]
            entry = self._entries.get((namespace, name))
            if (
                entry is not None
                and entry.queue == queue
                and entry.phase in PENDING_PHASES
                and entry.created_at == created_at
            ):
                return created_at
            heapq.heappop(pending)
        return None

    def _count_pending(self, namespace: str, queue: str) -> int:
        counts: collections.Counter[str] = (
            self._counts.get((namespace, queue)) or collections.Counter()
        )
        return sum(counts.get(phase, 0) for phase in PENDING_PHASES)

    def _rebuild_pending(self, namespace: str, queue: str) -> None:
        self._pending[(namespace, queue)] = fresh = [
            (entry.created_at, name)
            for (ns, name), entry in self._entries.items()
            if ns == namespace and entry.queue == queue and entry.phase in PENDING_PHASES
        ]
        heapq.heapify(fresh)
