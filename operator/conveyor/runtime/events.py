"""The event recorder: Kubernetes Events for what happened to a job, in the order it happened.

Events inform; they never hold up a start or a status write. So a reconcile
only records them here, and posters send them in the background, several at
once (one API call each). Two things keep `kubectl describe` telling the
story in order:

- One job's events always go through the same poster (its shard), which
  posts them one after the other. Posters racing for a shared queue once
  showed "attempt 3 started" before "attempt 2 failed".
- Each event is stamped when it is recorded, not when it is posted, and
  named `<object>.<nanoseconds, hex>` from that stamp, as client-go's
  recorder names them. `kubectl describe` sorts by lastTimestamp, which has
  whole seconds only; events of the same second keep the order the API
  server lists them in, which is by name, which is by time.

The backlog is bounded (like client-go's broadcaster): when the API server
cannot keep up, an event beyond it is dropped, logged and counted in
`conveyor_events_dropped_total`, rather than growing memory without bound.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from conveyor.core import lifecycle
from conveyor.runtime import kube, metrics

log = logging.getLogger(__name__)

POSTERS = 8
BACKLOG = 10_000


@dataclass(frozen=True)
class Subject:
    """The object an event is about."""

    kind: str
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class _Pending:
    subject: Subject
    event: lifecycle.Event
    at: datetime.datetime
    name: str


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class EventRecorder:
    def __init__(
        self,
        api: kube.KubeApi,
        *,
        posters: int = POSTERS,
        backlog: int = BACKLOG,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        self._api = api
        self._clock = clock
        self._backlog = backlog
        self._shards: list[asyncio.Queue[_Pending]] = [
            asyncio.Queue(maxsize=max(1, backlog // posters)) for _ in range(posters)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._posting = 0
        self._last_stamp = 0

    def record(self, subject: Subject, events: Iterable[lifecycle.Event]) -> None:
        """Queue events about `subject`, stamped now, in this order."""
        shard = self._shards[hash((subject.namespace, subject.name)) % len(self._shards)]
        for event in events:
            at = self._clock()
            # Strictly increasing stamps: several events of one decision keep their order.
            stamp = max(int(at.timestamp() * 1_000_000) * 1_000, self._last_stamp + 1)
            self._last_stamp = stamp
            pending = _Pending(subject, event, at, f"{subject.name[:230]}.{stamp:x}")
            try:
                shard.put_nowait(pending)
            except asyncio.QueueFull:
                metrics.EVENTS_DROPPED.inc()
                log.warning(
                    "%s/%s: event %s dropped, %d events wait already",
                    subject.namespace,
                    subject.name,
                    event.reason,
                    self._backlog,
                )

    @property
    def idle(self) -> bool:
        """Every recorded event is posted (or given up on)."""
        return self._posting == 0 and all(shard.empty() for shard in self._shards)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._post_forever(shard), name=f"conveyor-events-{i}")
                for i, shard in enumerate(self._shards)
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _post_forever(self, shard: asyncio.Queue[_Pending]) -> None:
        while True:
            pending = await shard.get()
            self._posting += 1
            subject, event = pending.subject, pending.event
            try:
                await self._api.post_event(
                    kube.EventBody(
                        name=pending.name,
                        namespace=subject.namespace,
                        kind=subject.kind,
                        object_name=subject.name,
                        uid=subject.uid,
                        type=event.type,
                        reason=event.reason,
                        message=event.message,
                        at=pending.at,
                    )
                )
            except (kube.FencedError, kube.NamespaceTerminatingError):
                pass  # no longer the leader, or the namespace goes: no one will read it
            except Exception as error:  # an event is best effort
                log.warning(
                    "%s/%s: event %s not posted: %r",
                    subject.namespace,
                    subject.name,
                    event.reason,
                    error,
                )
            finally:
                self._posting -= 1
