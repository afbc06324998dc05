"""The recurring reconciler: creates a recurring job's runs when they are due, prunes old ones.

`core.recurring.step` decides from the job, its runs as the cache shows them
and the time; this module creates the runs it names (each named by its
scheduled time, so a second create is an `AlreadyExists`, never a second
run), deletes the ones it names (replaced or pruned), writes the parent's
status and records its events. It returns the next scheduled time, when the
controller's work queue wakes it again.

It decides only on runs whose status is up to date. A run still written
Running whose attempt's pod has ended (or gone) is about to be written
otherwise by its own reconcile, typically after a restart, when every key
is looked at in no particular order: counted as active, it would make
Forbid skip a run that is due, for good. So the parent waits for it; the
run's phase change brings the parent's key back.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from conveyor.api.v1alpha1 import BackgroundJobStatus
from conveyor.core import naming, recurring
from conveyor.runtime import events, kube, kube_errors
from conveyor.runtime.cache import Cache
from conveyor.runtime.records import JobRecord

log = logging.getLogger(__name__)

StatusWriter = Callable[[JobRecord, BackgroundJobStatus], Awaitable[object]]
UNSETTLED_RETRY = datetime.timedelta(seconds=5)
"""Waiting for a run's status to catch up, look again after this at the latest."""


class RecurringReconciler:
    def __init__(
        self,
        api: kube.KubeApi,
        cache: Cache,
        recorder: events.EventRecorder,
        write_status: StatusWriter,
        *,
        clock: Callable[[], datetime.datetime],
    ) -> None:
        self._api = api
        self._cache = cache
        self._recorder = recorder
        self._write_status = write_status
        self._clock = clock

    async def reconcile(self, record: JobRecord) -> datetime.datetime | None:
        """Create and delete runs as the schedule says; returns the next scheduled time."""
        view = record.view()
        children = self._children(record)
        if any(not self._settled(child) for child in children):
            return self._clock() + UNSETTLED_RETRY
        runs = [_run(child) for child in children]
        decision = recurring.step(view, runs, self._clock())
        for moment in decision.create:
            body = recurring.render_run(
                view, uid=record.uid, raw_spec=dict(record.raw_spec), scheduled_at=moment
            )
            await self._create_run(body)
        if decision.run_now is not None:
            await self._create_run(
                recurring.render_run(
                    view,
                    uid=record.uid,
                    raw_spec=dict(record.raw_spec),
                    scheduled_at=self._clock(),
                    manual_request=decision.run_now,
                )
            )
        for name in decision.delete:
            await self._api.delete_job(record.namespace, name)
        if decision.status != record.status:
            await self._write_status(record, decision.status)
        self._recorder.record(
            events.Subject("BackgroundJob", record.namespace, record.name, record.uid),
            decision.events,
        )
        return decision.wake_at

    async def _create_run(self, body: dict[str, Any]) -> None:
        try:
            await self._api.create_job(body["metadata"]["namespace"], body)
        except kube_errors.ConflictError:
            log.info("run %s exists already", body["metadata"]["name"])

    def _children(self, record: JobRecord) -> list[JobRecord]:
        """The job's runs: its children by label that it owns."""
        return [
            c for c in self._cache.runs(record.namespace, record.name) if c.owner_uid == record.uid
        ]

    def _settled(self, run: JobRecord) -> bool:
        """The run's status says what its pods say (see the module's docstring)."""
        if run.status.phase != "Running":
            return True
        pod = self._cache.pods_of(run).get(run.status.attempts)
        return pod is not None and not pod.view.terminal


def _run(child: JobRecord) -> recurring.Run:
    scheduled = naming.parse_time(child.annotations.get(naming.ANNOTATION_SCHEDULED_AT))
    return recurring.Run(
        name=child.name,
        scheduled_at=scheduled or child.created_at,
        phase=child.status.phase,
        manual_request=child.annotations.get(naming.ANNOTATION_MANUAL_RUN),
    )
