"""The controller: carries out the core's decisions against the API server.

Everything it knows comes from the indices the informers fill (`watches`; it
starts deciding once every resource is listed, so a restarted operator counts
every live pod before it admits anything) and from the responses to its own
writes, kept in small overlays until the watch catches up.

Three kinds of work go through one deduplicating work queue:

- `("job", ns, name)`: run the lifecycle of one job; record an attempt's end,
  back off, block, delay, or declare the job ready to start. A ready job joins
  its queue's waiting line; it never creates a pod itself.
- `("queue", ns, queue)`: the admitter of one queue. It alone creates pods for
  the queue's jobs, and the work queue never runs it twice at once, so
  concurrency and rate limit are checked against a count that includes every
  pod it created a moment ago. Jobs with no queue go through an admitter too,
  one without limits.
- `("queue-status", ns, queue)`: the queue's counts, written at most once a
  second however many jobs change.
- `("queued", ns, name)`: write Queued on a job the admitter could not start
  yet, outside the admission pass, so a long waiting line never holds it up.

Writes per job are few by construction: a job that starts at once costs the
pod create and two status patches (Running, then Succeeded); one that waits
first costs one more (Queued).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import logging
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from conveyor.api.v1alpha1 import (
    BackgroundJobSpec,
    BackgroundJobStatus,
    JobQueueStatus,
    PodSpecShape,
    PodTemplate,
)
from conveyor.core import (
    admission,
    conditions,
    dependencies,
    lifecycle,
    naming,
    podspec,
    recurring,
    tally,
)
from conveyor.core.effective import Effective, resolve
from conveyor.core.outcome import PodView
from conveyor.runtime import kube, metrics
from conveyor.runtime.records import JobRecord, PodRecord, QueueRecord, resource_version
from conveyor.runtime.timers import Scheduler
from conveyor.runtime.workqueue import WorkQueue

log = logging.getLogger(__name__)

Key = tuple[str, str]
LOG_TAIL_LINES = 20
QUEUE_STATUS_INTERVAL = datetime.timedelta(seconds=1)
ADMISSION_COALESCING = datetime.timedelta(milliseconds=100)
EVENT_POSTERS = 8
EVENT_BACKLOG = 10_000


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Lookup(Protocol):
    """The read side of an index: key → the values indexed under it."""

    def get(self, key: Any, default: Any = None) -> Any: ...
    def __contains__(self, key: object) -> bool: ...


# Keys of the jobs index: (kind, namespace, name).
JOB = "job"  # → the JobRecord
IN_QUEUE = "in-queue"  # queue name → the names of its jobs
DEPENDENT_OF = "dependent-of"  # job name → the jobs that depend on it
RUN_OF = "run-of"  # recurring job name → its runs
# Keys of the pods index.
OF_JOB = "of-job"  # job name → its PodRecords
OF_QUEUE = "of-queue"  # queue name → its PodRecords


@dataclasses.dataclass
class Indices:
    jobs: Lookup
    pods: Lookup
    queues: Lookup
    priority_classes: Lookup


def _values(lookup: Lookup, key: Any) -> list[Any]:
    store = lookup.get(key)
    return list(store) if store is not None else []


def _one(lookup: Lookup, key: Any) -> Any:
    values = _values(lookup, key)
    return values[0] if values else None


class Controller:
    def __init__(
        self,
        api: kube.KubeApi,
        *,
        workers: int = 16,
        parallelism: int = 32,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        self.api = api
        self.clock = clock
        self.indices: Indices | None = None
        self.work = WorkQueue(self._handle, workers=workers, priority=_priority)
        self.scheduler = Scheduler(self.work.add, clock=clock)
        self._job_overlay: dict[Key, JobRecord] = {}
        # Pods this process created that the watch has not shown yet, by (namespace, job).
        self._created_pods: dict[Key, dict[int, PodRecord]] = {}
        self._log_tails: dict[Key, str] = {}
        # By (namespace, queue): the jobs ready to start, and the pods holding slots.
        self._waiting: dict[Key, admission.WaitingLine] = collections.defaultdict(
            admission.WaitingLine
        )
        self._occupancy: dict[Key, admission.Occupancy] = {}
        self._stale_occupancy: set[Key] = set()
        # How many pods are created at once (the API client's pool size).
        self._start_slots = asyncio.Semaphore(parallelism)
        self._tally = tally.Tally()
        self._events: asyncio.Queue[tuple[str, str, str, lifecycle.Event]] = asyncio.Queue(
            maxsize=EVENT_BACKLOG
        )
        self._event_posters: list[asyncio.Task[None]] = []
        self._queue_generations: dict[Key, object] = {}
        self._unwritten: dict[Key, set[str]] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ wiring

    def bind(self, indices: Indices) -> None:
        """Read from these indices; changes are noted from now on, and decided after start()."""
        self.indices = indices

    def start(self) -> None:
        if not self._event_posters:
            self.work.start()
            self.scheduler.start()
            self._event_posters = [
                asyncio.create_task(self._post_events_forever(), name=f"conveyor-events-{i}")
                for i in range(EVENT_POSTERS)
            ]

    async def stop(self) -> None:
        await self.work.stop()
        await self.scheduler.stop()
        await asyncio.gather(*self._background, return_exceptions=True)
        for task in self._event_posters:
            task.cancel()
        await asyncio.gather(*self._event_posters, return_exceptions=True)

    def job_changed(self, record: JobRecord, *, deleted: bool) -> None:
        namespace, name = record.key
        overlay = self._job_overlay.get(record.key)
        if deleted or overlay is None or record.resource_version > overlay.resource_version:
            self.work.add(("job", namespace, name))
        # else: the echo of our own status write, decided on already.
        for dependent in self._dependents(namespace, name):
            self.work.add(("job", namespace, dependent))
        if record.parent:
            self.work.add(("job", namespace, record.parent))
        self._count(namespace, name, None if deleted else self.job(namespace, name))
        if deleted:
            key = (namespace, name)
            self._job_overlay.pop(key, None)
            self._locks.pop(key, None)
            for waiting in self._waiting.values():
                waiting.discard(name)

    def pod_changed(self, record: PodRecord, *, deleted: bool) -> None:
        job_key = (record.namespace, record.job)
        created = self._created_pods.get(job_key)
        if created is not None:
            created.pop(record.view.attempt, None)
            if not created:
                del self._created_pods[job_key]
        occupancy = self._occupancy.get((record.namespace, record.queue))
        if occupancy is not None:
            if deleted:
                occupancy.forget(record.uid)
            else:
                occupancy.observe(
                    record.uid, live=record.view.live, created_at=record.view.created_at
                )
        self.work.add(("job", record.namespace, record.job))
        if deleted or record.view.terminal:
            # A slot freed. Pods of a busy queue finish by the hundred: one admission pass
            # a moment later serves them all.
            self.scheduler.at(
                ("queue", record.namespace, record.queue), self.clock() + ADMISSION_COALESCING
            )
        if deleted:
            self._log_tails.pop((record.namespace, record.view.name), None)

    def queue_changed(self, namespace: str, name: str) -> None:
        """A queue appeared, went, or changed its spec: its jobs and limits are looked at again.

        Changes of its status alone (our own writes, once a second) change nothing.
        """
        key = (namespace, name)
        record = self.queue_record(namespace, name)
        seen = None if record is None else (record.generation, record.spec is not None)
        if self._queue_generations.get(key, _UNSEEN) == seen:
            return
        self._queue_generations[key] = seen
        self._stale_occupancy.add(key)  # the rate period may have changed
        self.work.add(("queue", namespace, name))
        self._queue_status_soon(namespace, name)
        for job_name in self._job_names_in_queue(namespace, name):
            job = self.job(namespace, job_name)
            if job is None or job.status.phase in (None, "Pending", "Queued"):
                self.work.add(("job", namespace, job_name))

    async def _handle(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        kind, namespace, name = key
        metrics.WORK_QUEUE_DEPTH.set(len(self.work))
        with metrics.RECONCILE_SECONDS.labels(kind).time():
            if kind == "job":
                await self.reconcile_job(namespace, name)
            elif kind == "queue":
                await self.admit_queue(namespace, name)
            elif kind == "queue-status":
                await self.write_queue_status(namespace, name)
            elif kind == "queued":
                await self._write_queued(namespace, name)

    # ------------------------------------------------------------ reads

    def job(self, namespace: str, name: str) -> JobRecord | None:
        assert self.indices is not None
        key = (namespace, name)
        indexed: JobRecord | None = _one(self.indices.jobs, (JOB, namespace, name))
        overlay = self._job_overlay.get(key)
        if overlay is None:
            return indexed
        if indexed is None:
            # Deleted and the DELETED event is processed; drop what we wrote to it.
            self._job_overlay.pop(key, None)
            return None
        if indexed.resource_version >= overlay.resource_version:
            del self._job_overlay[key]
            return indexed
        # Our write is newer than the index; the spec may still have changed since.
        return dataclasses.replace(indexed, status=overlay.status)

    def queue_record(self, namespace: str, name: str) -> QueueRecord | None:
        assert self.indices is not None
        record: QueueRecord | None = _one(self.indices.queues, (namespace, name))
        return record

    def pods_of(self, record: JobRecord) -> dict[int, PodRecord]:
        assert self.indices is not None
        pods: dict[int, PodRecord] = {
            p.view.attempt: p for p in _values(self.indices.pods, (OF_JOB, *record.key))
        }
        for attempt, pod in self._created_pods.get(record.key, {}).items():
            pods.setdefault(attempt, pod)
        return pods

    def _dependents(self, namespace: str, name: str) -> list[str]:
        if self.indices is None:
            return []
        return [str(v) for v in _values(self.indices.jobs, (DEPENDENT_OF, namespace, name))]

    def _job_names_in_queue(self, namespace: str, queue: str) -> list[str]:
        assert self.indices is not None
        return [str(v) for v in _values(self.indices.jobs, (IN_QUEUE, namespace, queue))]

    def _count(self, namespace: str, name: str, record: JobRecord | None) -> None:
        """Keep the queue's job counts (recurring parents are not jobs of the queue)."""
        if record is None or (record.spec is not None and record.spec.is_recurring):
            self._tally.update(namespace, name, None)
        else:
            entry = tally.Entry(record.queue, record.status.phase or "Pending", record.created_at)
            self._tally.update(namespace, name, entry)

    def _priority_classes(self) -> Mapping[str, int]:
        assert self.indices is not None
        return _PriorityClasses(self.indices.priority_classes)

    def effective(self, record: JobRecord) -> Effective | None:
        if record.spec is None:
            return None
        queue = self.queue_record(record.namespace, record.queue) if record.queue else None
        defaults = queue.spec.defaults if queue is not None and queue.spec is not None else None
        return resolve(record.spec, defaults, self._priority_classes())

    def surroundings(
        self, record: JobRecord, *, admit: bool, pods: Mapping[int, PodRecord] | None = None
    ) -> lifecycle.Surroundings:
        now = self.clock()
        if record.spec is None:
            return lifecycle.Surroundings(now=now, effective=None, invalid=record.spec_error)
        namespace = record.namespace
        deps: dict[str, str | None] = {}
        for dep in record.depends_on:
            dep_record = self.job(namespace, dep)
            deps[dep] = None if dep_record is None else (dep_record.status.phase or "")
        cycle = None
        if any(phase not in (None, "Succeeded", "Failed") for phase in deps.values()):

            def edges(name: str) -> list[str]:
                found = self.job(namespace, name)
                return found.depends_on if found is not None else []

            cycle = dependencies.find_cycle(record.name, edges)
        if pods is None:
            pods = self.pods_of(record)
        views = {attempt: self._with_log_tail(p) for attempt, p in pods.items()}
        return lifecycle.Surroundings(
            now=now,
            effective=self.effective(record),
            queue_exists=not record.queue or self.queue_record(namespace, record.queue) is not None,
            dependencies=deps,
            dependency_cycle=cycle,
            pods=views,
            admit=admit,
        )

    def _with_log_tail(self, pod: PodRecord) -> PodView:
        tail = self._log_tails.get((pod.namespace, pod.view.name))
        return dataclasses.replace(pod.view, log_tail=tail) if tail is not None else pod.view

    # ------------------------------------------------------------ jobs

    def _lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault((namespace, name), asyncio.Lock())

    async def reconcile_job(self, namespace: str, name: str) -> None:
        async with self._lock(namespace, name):
            record = self.job(namespace, name)
            if record is None or record.deleting:
                return
            if record.spec is not None and record.spec.is_recurring:
                await self.reconcile_recurring(record)
                return
            pods = self.pods_of(record)
            await self._fetch_log_tail(record, pods)
            decision = lifecycle.step(
                record.view() if record.spec else _bare(record),
                self.surroundings(record, admit=False, pods=pods),
            )
            queue_key = (namespace, record.queue)
            if decision.wants_admission:
                assert record.spec is not None
                effective = self.effective(record)
                assert effective is not None
                waiting = self._waiting[queue_key]
                first = not waiting
                joined = waiting.add(
                    admission.Candidate(
                        name=name, priority=effective.priority, created_at=record.created_at
                    )
                )
                if first:
                    self.work.add(("queue", namespace, record.queue))
                elif joined:
                    # A line is forming: one pass a moment later admits the newcomers
                    # together, instead of one pass over the whole line per newcomer.
                    self.scheduler.at(
                        ("queue", namespace, record.queue), self.clock() + ADMISSION_COALESCING
                    )
                if record.status.phase is None:
                    # The admitter writes Running, or has Queued written if it must wait.
                    self._unwritten.setdefault(queue_key, set()).add(name)
                    return
            elif queue_key in self._waiting:
                self._waiting[queue_key].discard(name)
            await self._carry_out(record, decision, pods)

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
        tail = await self.api.read_log_tail(
            record.namespace,
            pod.view.name,
            pod.failing_container,
            LOG_TAIL_LINES,
            lifecycle.LOG_TAIL_BYTES * 2,
        )
        self._log_tails[key] = tail or ""

    async def _carry_out(
        self,
        record: JobRecord,
        decision: lifecycle.Decision,
        pods: Mapping[int, PodRecord],
    ) -> None:
        namespace, name = record.namespace, record.name
        delete_job = False
        for action in decision.actions:
            if isinstance(action, lifecycle.CreatePod):
                invalid = await self._create_pod(record, action.attempt)
                if invalid is not None:
                    await self._mark_invalid(record, invalid)
                    return
            elif isinstance(action, lifecycle.DeletePod):
                await self.api.delete_pod(namespace, action.name)
            elif isinstance(action, lifecycle.DeleteJob):
                delete_job = True  # after its final status and events are written
        if decision.status != record.status:
            await self._write_status(record, decision.status)
            _count(record, decision.status)
            if decision.status.phase != record.status.phase:
                log.info(
                    "%s/%s: %s → %s (attempt %d)",
                    namespace,
                    name,
                    record.status.phase or "new",
                    decision.status.phase,
                    decision.status.attempts,
                )
            if decision.status.phase != record.status.phase:
                self._queue_status_soon(namespace, record.queue)
                if lifecycle.is_terminal(decision.status.phase):
                    for dependent in self._dependents(namespace, name):
                        self.work.add(("job", namespace, dependent))
        self._post_events(record, decision.events)
        if delete_job:
            log.info("%s/%s: deleted, ttlSecondsAfterFinished has passed", namespace, name)
            await self.api.delete_job(namespace, name)
        elif decision.wake_at is not None:
            self.scheduler.at(("job", namespace, name), decision.wake_at)

    async def _create_pod(self, record: JobRecord, attempt: int) -> str | None:
        """Create an attempt's pod; returns why the API refused the pod spec, if it did."""
        effective = self.effective(record)
        assert effective is not None
        now = self.clock()
        body = podspec.render_pod(
            record.view(), uid=record.uid, attempt=attempt, effective=effective, now=now
        )
        try:
            created = await self.api.create_pod(record.namespace, body)
        except kube.ConflictError:
            log.info(
                "pod of %s/%s attempt %d exists already", record.namespace, record.name, attempt
            )
            return None
        except kube.ApiError as error:
            if error.status in (400, 422):
                return f"the API server refused the attempt's pod: {error}"
            raise
        metrics.ATTEMPTS_STARTED.labels(record.namespace, record.queue).inc()
        pod = PodRecord.from_body(created)
        if pod is not None:
            self._track_created(record, pod)
        return None

    def _track_created(self, record: JobRecord, pod: PodRecord) -> None:
        """Count a pod we created before the watch shows it (it may have shown it already)."""
        assert self.indices is not None
        occupancy = self._occupancy.get((record.namespace, pod.queue))
        if occupancy is not None:
            occupancy.observe(pod.uid, live=pod.view.live, created_at=pod.view.created_at)
            occupancy.release(record.name)
        seen = any(p.uid == pod.uid for p in _values(self.indices.pods, (OF_JOB, *record.key)))
        if not seen:
            self._created_pods.setdefault(record.key, {})[pod.view.attempt] = pod

    async def _mark_invalid(self, record: JobRecord, message: str) -> None:
        around = dataclasses.replace(self.surroundings(record, admit=False), invalid=message)
        decision = lifecycle.step(record.view(), around)
        await self._write_status(record, decision.status)
        self._post_events(record, decision.events)

    async def _write_status(self, record: JobRecord, status: BackgroundJobStatus) -> None:
        body = status.model_dump(by_alias=True, mode="json")
        try:
            patched = await self.api.patch_job_status(record.namespace, record.name, body)
        except kube.NotFoundError:
            return
        rv = resource_version(patched.get("metadata") or {})
        self._job_overlay[record.key] = updated = record.with_status(status, rv)
        self._count(record.namespace, record.name, updated)

    def _post_events(self, record: JobRecord, events: Iterable[lifecycle.Event]) -> None:
        """Queue events for the posters: they inform, so they never hold up a start or a status."""
        for event in events:
            try:
                self._events.put_nowait((record.namespace, record.name, record.uid, event))
            except asyncio.QueueFull:
                metrics.EVENTS_DROPPED.inc()
                log.warning(
                    "%s/%s: event %s dropped, %d events wait already",
                    record.namespace,
                    record.name,
                    event.reason,
                    EVENT_BACKLOG,
                )

    async def _post_events_forever(self) -> None:
        while True:
            namespace, name, uid, event = await self._events.get()
            try:
                await self.api.post_event(
                    namespace=namespace,
                    kind="BackgroundJob",
                    name=name,
                    uid=uid,
                    type_=event.type,
                    reason=event.reason,
                    message=event.message,
                )
            except Exception as error:
                log.warning("%s/%s: event %s not posted: %r", namespace, name, event.reason, error)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------ recurring jobs

    def runs_of(self, record: JobRecord) -> list[recurring.Run]:
        assert self.indices is not None
        runs = []
        for name in _values(self.indices.jobs, (RUN_OF, *record.key)):
            child = self.job(record.namespace, str(name))
            if child is None or child.owner_uid != record.uid:
                continue
            scheduled = naming.parse_time(child.annotations.get(naming.ANNOTATION_SCHEDULED_AT))
            runs.append(
                recurring.Run(
                    name=child.name,
                    scheduled_at=scheduled or child.created_at,
                    phase=child.status.phase,
                )
            )
        return runs

    async def reconcile_recurring(self, record: JobRecord) -> None:
        view = record.view()
        decision = recurring.step(view, self.runs_of(record), self.clock())
        for moment in decision.create:
            body = recurring.render_run(
                view, uid=record.uid, raw_spec=dict(record.raw_spec), scheduled_at=moment
            )
            try:
                await self.api.create_job(record.namespace, body)
            except kube.ConflictError:
                log.info("run %s exists already", body["metadata"]["name"])
        for name in decision.delete:
            await self.api.delete_job(record.namespace, name)
        if decision.status != record.status:
            await self._write_status(record, decision.status)
        self._post_events(record, decision.events)
        if decision.wake_at is not None:
            self.scheduler.at(("job", record.namespace, record.name), decision.wake_at)

    # ------------------------------------------------------------ queues

    def _limits(self, namespace: str, queue: str) -> admission.QueueLimits | None:
        if not queue:
            return admission.QueueLimits.unlimited()
        record = self.queue_record(namespace, queue)
        if record is None:
            return None
        spec = record.spec
        if spec is None:
            return admission.QueueLimits(paused=True)
        rate = spec.rate_limit
        return admission.QueueLimits(
            concurrency=spec.concurrency,
            rate_max=rate.max if rate else None,
            rate_period_seconds=rate.period_seconds if rate else 1.0,
            paused=spec.paused,
        )

    def _occupancy_of(
        self, namespace: str, queue: str, limits: admission.QueueLimits
    ) -> admission.Occupancy:
        """The queue's occupancy, counted from the index once and kept up to date by events."""
        key = (namespace, queue)
        occupancy = self._occupancy.get(key)
        if occupancy is None or key in self._stale_occupancy:
            assert self.indices is not None
            self._stale_occupancy.discard(key)
            starting = occupancy.reservations if occupancy is not None else frozenset()
            period = (
                datetime.timedelta(seconds=limits.rate_period_seconds)
                if limits.rate_max is not None
                else None
            )
            occupancy = self._occupancy[key] = admission.Occupancy(period)
            for pod in _values(self.indices.pods, (OF_QUEUE, namespace, queue)):
                occupancy.observe(pod.uid, live=pod.view.live, created_at=pod.view.created_at)
            for created in self._created_pods.values():
                for pod in created.values():
                    if pod.namespace == namespace and pod.queue == queue:
                        occupancy.observe(
                            pod.uid, live=pod.view.live, created_at=pod.view.created_at
                        )
            for job in starting:
                occupancy.reserve(job, self.clock())
        return occupancy

    async def admit_queue(self, namespace: str, queue: str) -> None:
        limits = self._limits(namespace, queue)
        waiting = self._waiting.get((namespace, queue))
        if limits is None or not waiting:
            return
        now = self.clock()
        occupancy = self._occupancy_of(namespace, queue, limits)
        decided = admission.plan(
            limits=limits,
            now=now,
            running=occupancy.running,
            recent_starts=occupancy.recent_starts(now),
            waiting=len(waiting),
        )
        # The pass only decides: the creates run on, each holding its slot, while the next
        # pass can already fill the slots that free meanwhile.
        for candidate in waiting.take(decided.slots):
            occupancy.reserve(candidate.name, now)
            self._spawn(self._start(namespace, queue, candidate.name))
        # Jobs that must wait and were never written get their Queued status from the
        # reconcilers, not from this pass, which would otherwise hold the queue meanwhile.
        unwritten = self._unwritten.pop((namespace, queue), set())
        for name in unwritten:
            if name in waiting:
                self.work.add(("queued", namespace, name))
        if decided.retry_at is not None:
            self.scheduler.at(("queue", namespace, queue), decided.retry_at)
        self._queue_status_soon(namespace, queue)

    async def _start(self, namespace: str, queue: str, name: str) -> None:
        try:
            async with self._start_slots:
                await self._start_now(namespace, name)
        except Exception:
            log.exception("starting %s/%s failed; it will be retried", namespace, name)
            self.scheduler.at(
                ("job", namespace, name), self.clock() + datetime.timedelta(seconds=2)
            )
        finally:
            occupancy = self._occupancy.get((namespace, queue))
            if occupancy is not None and occupancy.release(name):
                # No pod was created: the slot is free again.
                self.scheduler.at(("queue", namespace, queue), self.clock() + ADMISSION_COALESCING)

    async def _start_now(self, namespace: str, name: str) -> None:
        async with self._lock(namespace, name):
            record = self.job(namespace, name)
            if record is None or record.deleting or record.spec is None:
                return
            pods = self.pods_of(record)
            decision = lifecycle.step(
                record.view(), self.surroundings(record, admit=True, pods=pods)
            )
            if not any(isinstance(a, lifecycle.CreatePod) for a in decision.actions):
                self.work.add(("job", namespace, name))  # it changed; look again
                return
            await self._carry_out(record, decision, pods)

    async def _write_queued(self, namespace: str, name: str) -> None:
        async with self._lock(namespace, name):
            record = self.job(namespace, name)
            if record is None or record.spec is None or record.status.phase is not None:
                return
            decision = lifecycle.step(record.view(), self.surroundings(record, admit=False))
            if decision.wants_admission:
                await self._carry_out(record, decision, {})

    # ------------------------------------------------------------ queue status

    def _queue_status_soon(self, namespace: str, queue: str) -> None:
        if queue:
            self.scheduler.at(
                ("queue-status", namespace, queue), self.clock() + QUEUE_STATUS_INTERVAL
            )

    async def write_queue_status(self, namespace: str, queue: str) -> None:
        assert self.indices is not None
        record = self.queue_record(namespace, queue)
        if record is None:
            return
        now = self.clock()
        counts = self._tally.counts(namespace, queue)
        oldest = self._tally.oldest_pending(namespace, queue)
        limits = self._limits(namespace, queue)
        live = self._occupancy_of(namespace, queue, limits).running if limits else 0
        if record.spec is None:
            ready = ("False", "InvalidSpec", record.spec_error or "the spec is invalid")
        elif record.spec.paused:
            ready = ("False", "Paused", "spec.paused is true: admitting nothing new")
        else:
            ready = ("True", "Admitting", "admitting jobs")
        status = JobQueueStatus(
            pending=counts["Pending"] + counts["Queued"],
            delayed=counts["Delayed"] + counts["BackingOff"],
            blocked=counts["Blocked"],
            running=live,
            succeeded=counts["Succeeded"],
            failed=counts["Failed"],
            oldest_pending_seconds=int((now - oldest).total_seconds()) if oldest else None,
            conditions=conditions.set_condition(
                record.status.conditions,
                "Ready",
                ready[0],  # type: ignore[arg-type]
                reason=ready[1],
                message=ready[2],
                now=now,
                generation=record.generation,
            ),
            observed_generation=record.generation,
        )
        for phase_name, count in counts.items():
            metrics.QUEUE_JOBS.labels(namespace, queue, phase_name).set(count)
        metrics.QUEUE_OLDEST_PENDING.labels(namespace, queue).set(
            status.oldest_pending_seconds or 0
        )
        if _same_counts(status, record.status):
            return
        await self.api.patch_queue_status(
            namespace, queue, status.model_dump(by_alias=True, mode="json")
        )


_UNSEEN = object()
_PRIORITY = {"queue": 0, "job": 1, "queue-status": 2, "queued": 3}


def _priority(key: Hashable) -> int:
    """Admission first: a long line of job reconciles must not delay the starts."""
    assert isinstance(key, tuple)
    return _PRIORITY.get(key[0], 1)


class _PriorityClasses(Mapping[str, int]):
    """PriorityClass name → value, read through the index."""

    def __init__(self, index: Lookup) -> None:
        self._index = index

    def __getitem__(self, name: str) -> int:
        value = _one(self._index, name)
        if value is None:
            raise KeyError(name)
        return int(value)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _count(record: JobRecord, new: BackgroundJobStatus) -> None:
    """Count the attempts that ended and the jobs that finished in this transition."""
    old = record.status
    ended = [h for h in new.history if h.result and h not in old.history]
    for attempt in ended:
        metrics.ATTEMPTS_FINISHED.labels(record.namespace, record.queue, attempt.result).inc()
    if new.phase != old.phase and lifecycle.is_terminal(new.phase):
        metrics.JOBS_FINISHED.labels(record.namespace, record.queue, new.phase).inc()


def _same_counts(new: JobQueueStatus, old: JobQueueStatus) -> bool:
    """Equal but for the age of the oldest pending job, which changes every second."""
    if (new.oldest_pending_seconds is None) != (old.oldest_pending_seconds is None):
        return False
    if (
        new.oldest_pending_seconds is not None
        and old.oldest_pending_seconds is not None
        and abs(new.oldest_pending_seconds - old.oldest_pending_seconds) > 10
    ):
        return False
    return new.model_copy(update={"oldest_pending_seconds": None}) == old.model_copy(
        update={"oldest_pending_seconds": None}
    )


def _bare(record: JobRecord) -> lifecycle.JobView:
    """A JobView for a job whose spec could not be parsed: enough to report InvalidSpec."""
    placeholder = BackgroundJobSpec(
        template=PodTemplate(spec=PodSpecShape.model_validate({"containers": [{"name": "x"}]}))
    )
    return lifecycle.JobView(
        name=record.name,
        namespace=record.namespace,
        generation=record.generation,
        created_at=record.created_at,
        spec=placeholder,
        status=record.status,
        annotations=record.annotations,
    )
