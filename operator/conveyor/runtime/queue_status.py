"""The queue-status writer: each JobQueue's counts, at most one write a second.

A queue's status (pending, delayed, blocked, running, succeeded, failed, the
age of its oldest pending job, a Ready condition) changes with every job of
the queue; written on every change, a draining queue would cost one write
per job. So the controller asks for a write one second after the first
change (`work.add_after` keeps the earliest), and this writes what the cache
counts then, skipping the write when only the oldest pending age moved a
little. The Prometheus gauges of a queue's counts read the same tallies, at
scrape time (`metrics.StateCollector`).

While another operator acts in the queue's namespace (`rivals`), the queue
shows it in its `OperatorConflict` condition: its limits cannot hold.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Literal

from conveyor.api.v1alpha1 import Condition, JobQueueStatus
from conveyor.core import conditions, deprecation
from conveyor.runtime import kube
from conveyor.runtime.admitter import Admitter
from conveyor.runtime.cache import Cache
from conveyor.runtime.rivals import CONDITION, Rivals

INTERVAL = datetime.timedelta(seconds=1)
AGE_TOLERANCE_SECONDS = 10
"""The oldest pending age alone is rewritten only when it moved more than this."""


class QueueStatusWriter:
    def __init__(
        self,
        api: kube.KubeApi,
        cache: Cache,
        admitter: Admitter,
        rivals: Rivals,
        *,
        clock: Callable[[], datetime.datetime],
    ) -> None:
        self._api = api
        self._cache = cache
        self._admitter = admitter
        self._rivals = rivals
        self._clock = clock

    async def write(self, namespace: str, queue: str) -> None:
        record = self._cache.queue(namespace, queue)
        if record is None:
            return
        now = self._clock()
        counts = self._cache.counts(namespace, queue)
        oldest = self._cache.oldest_pending(namespace, queue)
        ready: tuple[Literal["True", "False"], str, str]
        if record.spec is None:
            ready = ("False", "InvalidSpec", record.spec_error or "the spec is invalid")
        elif record.spec.paused:
            ready = ("False", "Paused", "spec.paused is true: admitting nothing new")
        else:
            ready = ("True", "Admitting", "admitting jobs")
        status = JobQueueStatus(
            pending=counts.get("Pending", 0) + counts.get("Queued", 0),
            delayed=counts.get("Delayed", 0) + counts.get("BackingOff", 0),
            blocked=counts.get("Blocked", 0),
            running=self._admitter.running(namespace, queue),
            succeeded=counts.get("Succeeded", 0),
            failed=counts.get("Failed", 0),
            oldest_pending_seconds=int((now - oldest).total_seconds()) if oldest else None,
            conditions=deprecation.with_condition(
                self._conflict(
                    conditions.set_condition(
                        record.status.conditions,
                        "Ready",
                        ready[0],
                        reason=ready[1],
                        message=ready[2],
                        now=now,
                        generation=record.generation,
                    ),
                    namespace,
                    now,
                    record.generation,
                ),
                deprecation.in_defaults(record.spec.defaults) if record.spec else None,
                now=now,
                generation=record.generation,
            ),
            observed_generation=record.generation,
        )
        if _same_counts(status, record.status):
            return
        await self._api.patch_queue_status(
            namespace, queue, status.model_dump(by_alias=True, mode="json")
        )

    def _conflict(
        self,
        current: list[Condition],
        namespace: str,
        now: datetime.datetime,
        generation: int | None,
    ) -> list[Condition]:
        """The OperatorConflict condition: True while another operator acts here; False once
        it stopped; absent on a queue that never had one."""
        others = self._rivals.active(namespace)
        if others:
            message = (
                f"another Conveyor operator acts in this namespace too ({', '.join(others)}): "
                "this queue's concurrency and rate limits cannot hold. Uninstall one, or give "
                "them disjoint watchNamespaces."
            )
            return conditions.set_condition(
                current,
                CONDITION,
                "True",
                reason="AnotherOperator",
                message=message,
                now=now,
                generation=generation,
            )
        if conditions.find(current, CONDITION) is None:
            return current
        return conditions.set_condition(
            current,
            CONDITION,
            "False",
            reason="NoOtherOperator",
            message="no other operator has created pods here lately",
            now=now,
            generation=generation,
        )


def _same_counts(new: JobQueueStatus, old: JobQueueStatus) -> bool:
    """Equal but for the age of the oldest pending job, which changes every second."""
    if (new.oldest_pending_seconds is None) != (old.oldest_pending_seconds is None):
        return False
    if (
        new.oldest_pending_seconds is not None
        and old.oldest_pending_seconds is not None
        and abs(new.oldest_pending_seconds - old.oldest_pending_seconds) > AGE_TOLERANCE_SECONDS
    ):
        return False
    return new.model_copy(update={"oldest_pending_seconds": None}) == old.model_copy(
        update={"oldest_pending_seconds": None}
    )
