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

Repeated events are counted, not posted again, as client-go's recorder
(its EventCorrelator) does, so a job that fails 50 times leaves a few
Events with growing counts rather than 50 of each:

- The same event (object, type, reason and message) within `WINDOW` of its
  last occurrence patches the existing Event: `count` + 1 and a new
  `lastTimestamp`.
- Similar events (object, type and reason) with `SIMILAR` or more
  different messages within `WINDOW` (AttemptFailed of attempts 1, 2, 3,
  ...) become one Event, "(combined from similar events): <latest
  message>", whose count grows the same way.

Both are decided when the event is recorded, in its shard's order, so a
patch always follows the create it counts. A patch that finds no Event
(expired, deleted, or refused) posts it anew with its count.

Events of the reasons the operator was told to keep quiet (`--quiet-event`,
say `Started`, which the Running phase and the Admitted condition say too)
are not posted at all: one API write less per attempt.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from conveyor.core import decisions
from conveyor.runtime import kube, kube_errors, metrics

log = logging.getLogger(__name__)

POSTERS = 8
BACKLOG = 10_000
WINDOW = datetime.timedelta(minutes=10)
"""client-go's aggregation interval (maxIntervalInSeconds, 600)."""
SIMILAR = 10
"""client-go's defaultAggregateMaxEvents: this many different messages make a combined event."""
COMBINED = "(combined from similar events): "
REMEMBERED = 4096
"""Series kept, the least recently seen forgotten first (client-go's LRU cache size)."""


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
    event: decisions.Event
    at: datetime.datetime
    name: str
    count: int = 1
    """Above 1: the event's Event object exists already; patch its count."""
    first_at: datetime.datetime | None = None


@dataclass
class _Series:
    """One Event object and how often it happened."""

    name: str
    count: int
    first_at: datetime.datetime
    last_at: datetime.datetime


@dataclass
class _Similar:
    """The different messages of one object's events of a type and reason, lately."""

    messages: set[str]
    last_at: datetime.datetime


class Correlator:
    """Decides, for each event recorded, whether it is a new Event or a repeat of one."""

    def __init__(self, *, window: datetime.timedelta = WINDOW, similar: int = SIMILAR) -> None:
        self._window = window
        self._similar = similar
        self._series: collections.OrderedDict[tuple[str, ...], _Series] = collections.OrderedDict()
        self._similars: collections.OrderedDict[tuple[str, ...], _Similar] = (
            collections.OrderedDict()
        )

    def observe(
        self, subject: Subject, event: decisions.Event, at: datetime.datetime, name: str
    ) -> _Pending:
        """The event to send: named `name` (new), or the series it repeats, counted."""
        group = (
            subject.namespace,
            subject.kind,
            subject.name,
            subject.uid,
            event.type,
            event.reason,
        )
        similar = self._similars.get(group)
        if similar is None or at - similar.last_at > self._window:
            similar = _Similar(set(), at)
        similar.messages.add(event.message)
        similar.last_at = at
        _remember(self._similars, group, similar)
        key: tuple[str, ...] = (*group, event.message)
        if len(similar.messages) >= self._similar:
            similar.messages.discard(event.message)  # the set stays below its bound
            event = decisions.Event(event.type, event.reason, COMBINED + event.message)
            key = (*group, COMBINED)
        series = self._series.get(key)
        if series is None or at - series.last_at > self._window:
            series = _Series(name, 1, at, at)
        else:
            series.count += 1
            series.last_at = at
        _remember(self._series, key, series)
        return _Pending(subject, event, at, series.name, series.count, series.first_at)


def _remember(cache: collections.OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > REMEMBERED:
        cache.popitem(last=False)


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
        quiet: frozenset[str] = frozenset(),
    ) -> None:
        """`quiet`: reasons of events not to post."""
        self._api = api
        self._clock = clock
        self._quiet = quiet
        self._backlog = backlog
        self._shards: list[asyncio.Queue[_Pending]] = [
            asyncio.Queue(maxsize=max(1, backlog // posters)) for _ in range(posters)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._posting = 0
        self._last_stamp = 0
        self._correlator = Correlator()

    def record(self, subject: Subject, events: Iterable[decisions.Event]) -> None:
        """Queue events about `subject`, stamped now, in this order."""
        shard = self._shards[hash((subject.namespace, subject.name)) % len(self._shards)]
        for event in events:
            if event.reason in self._quiet:
                continue
            at = self._clock()
            # Strictly increasing stamps: several events of one decision keep their order.
            stamp = max(int(at.timestamp() * 1_000_000) * 1_000, self._last_stamp + 1)
            self._last_stamp = stamp
            pending = self._correlator.observe(
                subject, event, at, f"{subject.name[:230]}.{stamp:x}"
            )
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
                await self._send(pending)
            except (kube_errors.FencedError, kube_errors.NamespaceTerminatingError):
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

    async def _send(self, pending: _Pending) -> None:
        subject, event = pending.subject, pending.event
        name = pending.name
        if pending.count > 1:
            repeat = kube.EventRepeat(
                name, subject.namespace, pending.count, event.message, pending.at
            )
            try:
                await self._api.patch_event(repeat)
                return
            except kube_errors.NotFoundError:
                pass  # expired (the API server keeps events for an hour): post it anew
            except kube_errors.ApiError as error:
                # not ours to patch (a Role without events patch, from an older chart)
                log.debug(
                    "%s/%s: event %s not patched: %s", subject.namespace, name, event.reason, error
                )
                name = f"{name}.{pending.count}"
        await self._api.post_event(
            kube.EventBody(
                name=name,
                namespace=subject.namespace,
                kind=subject.kind,
                object_name=subject.name,
                uid=subject.uid,
                type=event.type,
                reason=event.reason,
                message=event.message,
                at=pending.at,
                count=pending.count,
                first_at=pending.first_at if pending.count > 1 else None,
            )
        )
