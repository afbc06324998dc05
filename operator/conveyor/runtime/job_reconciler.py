"""The job reconciler: carries out what the job's state machine decides, for one job at a time.

`core.lifecycle.step` decides; this module gathers what it reads (the job,
its pods, its dependencies, its queue, whether its queue admitted it) from
the cache, and does what it says: create the next attempt's pod (through the
admitter, which counts it), delete a pod that never started, write the
status, record the events, delete the job when its TTL ran out. It returns
when the job wants to be looked at again (a backoff's end, a start deadline,
a TTL), and the controller's work queue wakes it then.

A job that is ready to start but not admitted is offered to its queue's
admitter, and waits; the admitter brings its key back when it may start.

Writes per job are few by construction: a job that starts at once costs the
pod create and two status patches (Running, then Succeeded); one that waits
first costs one more (Queued).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping

from conveyor.api.v1alpha1 import BackgroundJobStatus
from conveyor.core import attempts, decisions, dependencies, lifecycle
from conveyor.core.effective import Effective, resolve
from conveyor.core.outcome import PodView
from conveyor.runtime import events, kube, kube_errors, metrics
from conveyor.runtime.admitter import Admitter, Refusal
from conveyor.runtime.cache import Cache
from conveyor.runtime.records import JobRecord, PodRecord, resource_version

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 20


def subject(record: JobRecord) -> events.Subject:
    return events.Subject("BackgroundJob", record.namespace, record.name, record.uid)


async def write_status(
    api: kube.KubeApi, cache: Cache, record: JobRecord, status: BackgroundJobStatus
) -> JobRecord | None:
    """Patch the job's status, and see it in the cache at once. None: the job is gone."""
    body = status.model_dump(by_alias=True, mode="json")
    try:
        patched = await api.patch_job_status(record.namespace, record.name, body)
    except kube_errors.NotFoundError:
        return None
    return cache.wrote_status(record, status, resource_version(patched.get("metadata") or {}))


class JobReconciler:
    def __init__(
        self,
        api: kube.KubeApi,
        cache: Cache,
        admitter: Admitter,
        recorder: events.EventRecorder,
        *,
        clock: Callable[[], datetime.datetime],
    ) -> None:
        self._api = api
        self._cache = cache
        self._admitter = admitter
        self._recorder = recorder
        self._clock = clock
        self._log_tails: dict[tuple[str, str], str] = {}

    async def reconcile(self, record: JobRecord) -> datetime.datetime | None:
        """Take the job one step on; returns when to look at it again, if it asks to be."""
        if record.spec is None:
            self._admitter.withdraw(record.namespace, record.name)
            invalid = record.spec_error or "the spec is invalid"
            decision = lifecycle.reject(
                record.status, generation=record.generation, message=invalid, now=self._clock()
            )
            return await self._carry_out(record, decision, None)
        pods = self._cache.pods_of(record)
        await self._fetch_log_tail(record, pods)
        effective = self.effective(record)
        assert effective is not None
        decision = lifecycle.step(
            record.view(),
            self._surroundings(record, effective, pods, admit=self._admitter.admitted(record)),
        )
        if decision.wants_admission and self._admitter.offer(record, effective):
            decision = lifecycle.step(  # admitted at once: start it now
                record.view(), self._surroundings(record, effective, pods, admit=True)
            )
        if decision.wants_admission:
            if not self._admitter.may_write_queued(record):
                return None  # its first pass decides whether it waits at all
        elif not any(isinstance(a, decisions.CreatePod) for a in decision.actions):
            self._admitter.withdraw(record.namespace, record.name)
        return await self._carry_out(record, decision, effective)

    def forget_pod(self, namespace: str, pod: str) -> None:
        """The pod is gone: its log tail is recorded in its job's history, if it was needed."""
        self._log_tails.pop((namespace, pod), None)

    def effective(self, record: JobRecord) -> Effective | None:
        if record.spec is None:
            return None
        queue = self._cache.queue(record.namespace, record.queue) if record.queue else None
        defaults = queue.spec.defaults if queue is not None and queue.spec is not None else None
        return resolve(record.spec, defaults, self._cache.priority_values)

    # ------------------------------------------------------------ reads

    def _surroundings(
        self,
        record: JobRecord,
        effective: Effective,
        pods: Mapping[int, PodRecord],
        *,
        admit: bool,
    ) -> decisions.Surroundings:
        namespace = record.namespace
        deps: dict[str, str | None] = {}
        for dep in record.depends_on:
            found = self._cache.job(namespace, dep)
            deps[dep] = None if found is None else (found.phase or "")
        cycle = None
        if any(phase not in (None, "Succeeded", "Failed") for phase in deps.values()):

            def edges(name: str) -> list[str]:
                found = self._cache.job(namespace, name)
                return found.depends_on if found is not None else []

            cycle = dependencies.find_cycle(record.name, edges)
        return decisions.Surroundings(
            now=self._clock(),
            effective=effective,
            queue_exists=not record.queue or self._cache.queue(namespace, record.queue) is not None,
            dependencies=deps,
            dependency_cycle=cycle,
            pods={attempt: self._with_log_tail(pod) for attempt, pod in pods.items()},
            admit=admit,
        )

    def _with_log_tail(self, pod: PodRecord) -> PodView:
        tail = self._log_tails.get((pod.namespace, pod.view.name))
        return dataclasses.replace(pod.view, log_tail=tail) if tail is not None else pod.view

    async def _fetch_log_tail(self, record: JobRecord, pods: Mapping[int, PodRecord]) -> None:
        """Read the log tail of the running attempt's pod once, when it has failed."""
        if record.status.phase != "Running":
            return
        pod = pods.get(record.status.attempts)
        if pod is None or pod.view.phase != "Failed":
            return
        key = (record.namespace, pod.view.name)
        if key in self._log_tails:
            return
        tail = await self._api.read_log_tail(
            record.namespace,
            pod.view.name,
            pod.failing_container,
            LOG_TAIL_LINES,
            attempts.LOG_TAIL_BYTES * 2,
        )
        self._log_tails[key] = tail or ""

    # ------------------------------------------------------------ writes

    def _refused(
        self, record: JobRecord, effective: Effective, refusal: Refusal
    ) -> decisions.Decision:
        """What a pod refused for the job's own fault makes of the job."""
        if refusal.forbidden:
            return lifecycle.fail(
                record.view(),
                effective,
                reason="PodForbidden",
                message=refusal.message,
                now=self._clock(),
            )
        return lifecycle.reject(
            record.status, generation=record.generation, message=refusal.message, now=self._clock()
        )

    async def _carry_out(
        self, record: JobRecord, decision: decisions.Decision, effective: Effective | None
    ) -> datetime.datetime | None:
        namespace, name = record.namespace, record.name
        delete_job = False
        for action in decision.actions:
            if isinstance(action, decisions.CreatePod):
                assert effective is not None
                refused = await self._admitter.start(record, action.attempt, effective)
                if refused is not None:
                    return await self._carry_out(
                        record, self._refused(record, effective, refused), effective
                    )
            elif isinstance(action, decisions.DeletePod):
                await self._api.delete_pod(namespace, action.name)
            elif isinstance(action, decisions.DeleteJob):
                delete_job = True  # after its final status and events are written
        if decision.status != record.status:
            if await write_status(self._api, self._cache, record, decision.status) is None:
                return None
            _count_transition(record, decision.status)
            if decision.status.phase != record.status.phase:
                log.info(
                    "%s/%s: %s → %s (attempt %d)",
                    namespace,
                    name,
                    record.status.phase or "new",
                    decision.status.phase,
                    decision.status.attempts,
                )
        self._recorder.record(subject(record), decision.events)
        if delete_job:
            log.info("%s/%s: deleted, ttlSecondsAfterFinished has passed", namespace, name)
            await self._api.delete_job(namespace, name)
            return None
        return decision.wake_at


def _count_transition(record: JobRecord, new: BackgroundJobStatus) -> None:
    """Count the attempts that ended (and time them) and the jobs that finished in this
    transition."""
    old = record.status
    ended = [h for h in new.history if h.result and h not in old.history]
    for attempt in ended:
        result = str(attempt.result)
        metrics.ATTEMPTS_FINISHED.labels(
            record.namespace, record.queue, result, metrics.reason_label(attempt.reason)
        ).inc()
        if attempt.start_time is not None and attempt.finished_at is not None:
            ran = (attempt.finished_at - attempt.start_time).total_seconds()
            metrics.ATTEMPT_DURATION.labels(record.namespace, record.queue, result).observe(
                max(ran, 0.0)
            )
    if new.phase != old.phase and decisions.is_terminal(new.phase):
        metrics.JOBS_FINISHED.labels(record.namespace, record.queue, new.phase).inc()
