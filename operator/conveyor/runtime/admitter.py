"""The admitter: which ready jobs start now, one pass per queue, and the pod creates.

Admission is state the job reconciler reads, as in Kueue: a job ready to
start is *offered* to its queue and waits in the queue's line; an admission
pass (the queue's own work key, never run twice at once) takes as many jobs
from the front of the line as the concurrency quota and the rate limit allow,
and gives each a *reservation*: a slot, and a start in the rate window. The
pass only decides. Each admitted job's own key then comes back first in the
work queue (priority START); its reconcile sees the reservation, decides to
start the next attempt, and calls `start`, which creates the pod and turns the
reservation into the pod it now counts. So one job is only ever acted on
under its one key, and needs no lock.

What a queue holds is counted as events arrive, not recounted per pass
(`core.admission.Occupancy`: live pods by uid, recent starts, reservations),
and its line is a heap, so a pass costs the jobs it admits, not the ten
thousand that wait. The pods of a queue are counted from the cache when the
queue is first needed or its limits change, the operator's own creates
included, so a restarted operator counts every live pod before it admits.

A pod's start, for the rate limit, is when the operator received the create's
response: the API server stamped the pod before that, so a window measured
with the API server's own creationTimestamps never holds more starts than
the limit.

A job offered to an empty line of a queue without a rate limit, while no
other key waits in the work queue, is passed on at once, within its own
reconcile, which goes on to start it: a job submitted to an idle queue costs
one reconcile, not two and a pass. (A burst or a restart's resync goes
through passes, which take the line by priority; a rate limit's passes wait
for the finished pods to be listed: see `controller`.)

Jobs ready to start whose status was never written (a job submitted a moment
ago) are not written Queued at once: most are admitted within the next pass,
and the Queued write would be wasted. A pass that leaves such a job waiting
asks for its Queued write, last in the work queue (priority INFORM).

A start that fails for a reason not the job's own (the API server answers
500 or 429, a timeout) frees the slot and raises, so the job's key is retried
with the work queue's backoff. But that retry would offer the job again at
once, a successful reconcile that resets the work queue's count: admitted,
failed, offered, admitted, failed, twenty times a second per job during an
outage. So the admitter holds such a job back itself (`_held`), for a backoff
that grows with its failed starts in a row (`workqueue.retry_delay`: 1 s up
to 60 s), and lets it be offered again only after.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.core import admission, naming, podspec, starting
from conveyor.core.effective import Effective
from conveyor.runtime import kube, kube_errors, metrics
from conveyor.runtime.cache import Cache
from conveyor.runtime.records import JobRecord, PodRecord
from conveyor.runtime.workqueue import Key, Kind, Priority, WorkQueue, retry_delay

log = logging.getLogger(__name__)

COALESCING = datetime.timedelta(milliseconds=100)
"""A pass waits this long after a newcomer or a freed slot, to serve many at once."""

QueueRef = tuple[str, str]  # (namespace, queue name; "" for jobs that name no queue)
JobRef = tuple[str, str]  # (namespace, job name)


@dataclass(frozen=True)
class Refusal:
    """Why an attempt's pod cannot be created that is the job's own fault."""

    message: str
    forbidden: bool = False
    """A policy of the namespace refused it (the job fails, PodForbidden); else the spec is
    at fault (InvalidSpec: it waits for a new spec)."""


@dataclass
class _Queue:
    line: admission.WaitingLine
    occupancy: admission.Occupancy | None = None
    """None until first needed, and again when the queue's limits change."""
    unwritten: set[str] | None = None
    """Jobs in line whose status was never written, since the last pass."""


class Admitter:
    def __init__(
        self,
        api: kube.KubeApi,
        cache: Cache,
        work: WorkQueue,
        *,
        clock: Callable[[], datetime.datetime],
        identity: str = "",
    ) -> None:
        self._identity = identity
        self._api = api
        self._cache = cache
        self._work = work
        self._clock = clock
        self._queues: dict[QueueRef, _Queue] = {}
        self._member_of: dict[JobRef, str] = {}
        """The queue each job waits in or holds a reservation of."""
        self._passed_over: set[JobRef] = set()
        self._held: dict[JobRef, tuple[int, datetime.datetime]] = {}
        """Jobs whose start failed, not by their fault: failures in a row, held until when."""

    # ------------------------------------------------------------ the job reconciler's side

    def admitted(self, record: JobRecord) -> bool:
        """The job holds a reservation of its queue: it may start its next attempt now."""
        queue = self._queues.get((record.namespace, record.queue))
        return (
            queue is not None and queue.occupancy is not None and queue.occupancy.holds(record.name)
        )

    def offer(self, record: JobRecord, effective: Effective) -> bool:
        """The job is ready to start: put it in its queue's line (or update its place), unless
        its last start failed a moment ago: then its key comes back when its backoff ends.

        Returns whether it is admitted already: alone in the line of a queue without a rate
        limit, it is passed on at once (see the docstring)."""
        held = self._held.get((record.namespace, record.name))
        if held is not None and held[1] > self._clock():
            self._work.add_after(Key(Kind.JOB, record.namespace, record.name), held[1])
            return False
        self._leave_other_queue(record)
        ref = (record.namespace, record.queue)
        queue = self._queue(ref)
        was_empty = not queue.line
        joined = queue.line.add(
            admission.Candidate(record.name, effective.priority, record.created_at)
        )
        self._member_of[record.namespace, record.name] = record.queue
        if record.phase is None and joined:
            if queue.unwritten is None:
                queue.unwritten = set()
            queue.unwritten.add(record.name)
        if was_empty:
            limits = self._limits(*ref)
            # Alone: no other key waits in the work queue that could offer a job of higher
            # priority first (a burst, a restart's resync: those go through one pass).
            if limits is not None and limits.rate_max is None and len(self._work) == 0:
                self._pass(ref, limits, offering=record.name)
                return self.admitted(record)
            self._work.add(Key(Kind.ADMIT, *ref))
        elif joined:
            # A line is forming: one pass a moment later admits the newcomers together,
            # instead of one pass over the whole line per newcomer.
            self._work.add_after(Key(Kind.ADMIT, *ref), self._clock() + COALESCING)
        return False

    def may_write_queued(self, record: JobRecord) -> bool:
        """Whether a job that must wait gets its Queued phase written now (see the docstring)."""
        return record.phase is not None or (record.namespace, record.name) in (self._passed_over)

    def withdraw(self, namespace: str, name: str) -> None:
        """The job is not ready to start (or gone): out of line, and its unused slot freed."""
        self._held.pop((namespace, name), None)
        self._leave(namespace, name)

    def _leave(self, namespace: str, name: str) -> None:
        self._passed_over.discard((namespace, name))
        queue_name = self._member_of.pop((namespace, name), None)
        if queue_name is None:
            return
        ref = (namespace, queue_name)
        queue = self._queues.get(ref)
        if queue is None:
            return
        queue.line.discard(name)
        if queue.occupancy is not None and queue.occupancy.release(name):
            self._work.add_after(Key(Kind.ADMIT, *ref), self._clock() + COALESCING)

    async def start(self, record: JobRecord, attempt: int, effective: Effective) -> Refusal | None:
        """Create the pod of the job's next attempt. Returns why it cannot be, if that is the
        job's fault; raises on any other failure. Either way the job's reservation is over:
        its pod holds the slot now, or the slot is free."""
        name = naming.pod_name(record.name, attempt)
        try:
            body = podspec.render_pod(
                record.view(),
                uid=record.uid,
                attempt=attempt,
                effective=effective,
                now=self._clock(),
                operator=self._identity,
            )
            created, received = await self._create_or_read(record.namespace, name, body)
        except podspec.TemplateError as error:
            self.withdraw(record.namespace, record.name)
            return Refusal(f"the pod template cannot be used: {error}")
        except kube_errors.ApiError as error:
            if error.status in (400, 422):
                self.withdraw(record.namespace, record.name)
                return Refusal(f"the API server refused the attempt's pod: {error.message}")
            if error.refused_by_policy:
                self.withdraw(record.namespace, record.name)
                return Refusal(
                    f"the namespace's policy refused the attempt's pod: {error.message}",
                    forbidden=True,
                )
            self._leave(record.namespace, record.name)
            self._hold(record)
            raise
        except Exception:
            self._leave(record.namespace, record.name)
            self._hold(record)
            raise
        except BaseException:
            self.withdraw(record.namespace, record.name)
            raise
        pod = PodRecord.from_body(created)
        if pod is None or pod.job != record.name or pod.view.attempt != attempt:
            self.withdraw(record.namespace, record.name)
            return Refusal(f"a pod named {name} exists and is not attempt {attempt} of this job")
        if received is not None:
            _count_start(record, attempt, received)
        self._cache.created_pod(pod)
        queue = self._queues.get((record.namespace, record.queue))
        if queue is not None and queue.occupancy is not None:
            queue.occupancy.observe(pod.uid, live=pod.view.live, created_at=pod.view.created_at)
            if received is not None:
                queue.occupancy.started(pod.uid, received)
            queue.occupancy.release(record.name)
        self._member_of.pop((record.namespace, record.name), None)
        self._passed_over.discard((record.namespace, record.name))
        self._held.pop((record.namespace, record.name), None)
        return None

    def _hold(self, record: JobRecord) -> None:
        """Its start failed, not by its fault: not offered again until a backoff has passed."""
        ref = (record.namespace, record.name)
        failures = self._held.get(ref, (0, self._clock()))[0] + 1
        until = self._clock() + datetime.timedelta(seconds=retry_delay(failures))
        self._held[ref] = (failures, until)

    async def _create_or_read(
        self, namespace: str, name: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], datetime.datetime | None]:
        """The pod created, and when the response came; or, if it exists, the pod as it is."""
        try:
            created = await self._api.create_pod(namespace, body)
            return created, self._clock()
        except kube_errors.ConflictError as conflict:
            # Created before a restart, or by another operator, and not yet shown by the
            # watch: read it, so that its slot and its attempt count now.
            log.info("pod %s/%s exists already: adopting it", namespace, name)
            existing = await self._api.read_pod(namespace, name)
            if existing is None:
                raise kube_errors.ConflictError(f"pod {name} existed, then went") from conflict
            return existing, None

    # ------------------------------------------------------------ the controller's side

    def pod_changed(self, before: PodRecord | None, after: PodRecord | None) -> None:
        """Count the pod's slot; a pod that ended or went frees one: a pass a moment later."""
        pod = after or before
        assert pod is not None
        queue = self._queues.get((pod.namespace, pod.queue))
        if queue is None or queue.occupancy is None:
            return
        if after is None:
            queue.occupancy.forget(pod.uid)
        else:
            queue.occupancy.observe(pod.uid, live=after.view.live, created_at=after.view.created_at)
        if after is None or after.view.terminal:
            self._work.add_after(
                Key(Kind.ADMIT, pod.namespace, pod.queue), self._clock() + COALESCING
            )

    def limits_changed(self, namespace: str, queue: str) -> None:
        """The queue appeared, went or changed its spec: count its pods again, and admit."""
        state = self._queues.get((namespace, queue))
        if state is not None and state.occupancy is not None:
            reserved = state.occupancy.reservations
            state.occupancy = None
            limits = self._limits(namespace, queue)
            if reserved and limits is not None:
                occupancy = self._occupancy((namespace, queue), limits)
                for name in reserved:
                    occupancy.reserve(name, self._clock())
        self._work.add(Key(Kind.ADMIT, namespace, queue))

    def rate_limited(self, namespace: str, queue: str) -> bool:
        limits = self._limits(namespace, queue)
        return limits is not None and limits.rate_max is not None

    def running(self, namespace: str, queue: str) -> int:
        """Jobs of the queue holding a slot: live pods and admitted jobs."""
        limits = self._limits(namespace, queue)
        if limits is None:
            return 0
        return self._occupancy((namespace, queue), limits).running

    async def admit(self, namespace: str, queue_name: str) -> datetime.datetime | None:
        """One admission pass of the queue. Returns when to pass again (the rate limit)."""
        ref = (namespace, queue_name)
        limits = self._limits(namespace, queue_name)
        if limits is None:
            return None
        return self._pass(ref, limits, offering=None)

    def _pass(
        self, ref: QueueRef, limits: admission.QueueLimits, *, offering: str | None
    ) -> datetime.datetime | None:
        """Admit what the queue has room for; the job `offering` is being reconciled already,
        and its key is not asked for again."""
        namespace = ref[0]
        queue = self._queues.get(ref)
        if queue is None or not queue.line:
            return None
        now = self._clock()
        occupancy = self._occupancy(ref, limits)
        plan = admission.plan(
            limits=limits,
            now=now,
            running=occupancy.running,
            recent_starts=occupancy.recent_starts(now),
            waiting=len(queue.line),
        )
        for candidate in queue.line.take(plan.slots):
            occupancy.reserve(candidate.name, now)
            if candidate.name != offering:
                self._work.add(Key(Kind.JOB, namespace, candidate.name), Priority.START)
        unwritten, queue.unwritten = queue.unwritten or set(), None
        for name in unwritten:
            if name in queue.line:
                self._passed_over.add((namespace, name))
                if name != offering:
                    self._work.add(Key(Kind.JOB, namespace, name), Priority.INFORM)
        return plan.retry_at

    # ------------------------------------------------------------ helpers

    def _queue(self, ref: QueueRef) -> _Queue:
        queue = self._queues.get(ref)
        if queue is None:
            queue = self._queues[ref] = _Queue(admission.WaitingLine())
        return queue

    def _leave_other_queue(self, record: JobRecord) -> None:
        current = self._member_of.get((record.namespace, record.name))
        if current is not None and current != record.queue:
            self.withdraw(record.namespace, record.name)

    def _limits(self, namespace: str, queue: str) -> admission.QueueLimits | None:
        """The queue's limits; None while it does not exist."""
        if queue == naming.NO_QUEUE:
            return admission.QueueLimits.unlimited()
        record = self._cache.queue(namespace, queue)
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

    def _occupancy(self, ref: QueueRef, limits: admission.QueueLimits) -> admission.Occupancy:
        """The queue's occupancy, counted from the cache once and kept up to date by events."""
        queue = self._queue(ref)
        if queue.occupancy is None:
            period = (
                datetime.timedelta(seconds=limits.rate_period_seconds)
                if limits.rate_max is not None
                else None
            )
            queue.occupancy = admission.Occupancy(period)
            for pod in self._cache.pods_of_queue(*ref):
                queue.occupancy.observe(pod.uid, live=pod.view.live, created_at=pod.view.created_at)
        return queue.occupancy


def _count_start(record: JobRecord, attempt: int, created: datetime.datetime) -> None:
    """Count an attempt started; the first one also tells how long the job waited for it."""
    metrics.ATTEMPTS_STARTED.labels(record.namespace, record.queue).inc()
    if attempt == 1:
        view = record.view()
        since = max(record.created_at, starting.first_start_at(view) or record.created_at)
        waited = (created - since).total_seconds()
        metrics.ADMISSION_WAIT.labels(record.namespace, record.queue).observe(max(waited, 0.0))
