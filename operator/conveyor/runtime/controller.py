"""The controller: turns changes into work keys, and work keys into the reconciler that owns them.

Three kinds of key go through one work queue (`workqueue.Kind`):

- a job (`JOB`): the job reconciler (`job_reconciler`), or for a recurring
  job the recurring reconciler (`recurring_reconciler`);
- a queue's admission pass (`ADMIT`): the admitter (`admitter`);
- a queue's status (`QUEUE_STATUS`): the queue-status writer (`queue_status`).

A reconciler returns when it wants its key back (a backoff's end, the rate
limit's next token); the controller asks the work queue for it
(`add_after`). Nothing else waits anywhere.

Changes come from the cache (`cache.Listener`), with the record before and
after: a job's change reconciles the job, unless it is the echo of the
operator's own write; a change of its phase also looks again at the jobs that
depend on it, its recurring parent, and its queue's counts. A pod's change
reconciles its job and updates its queue's occupancy; a new pod made by
another operator is reported (`rivals`). A queue's new spec looks again at
its limits and at the jobs that wait in it.

A controller may begin before the finished jobs and pods are listed
(`complete` false: see `watches`). Admission needs only the unfinished ones,
so it goes on: a pod it creates that exists already, finished, is a 409 and
is adopted (`admitter`). What needs the finished ones waits for
`completed()`:
- a Running job: its pod may have finished unseen, and would look lost;
- a job with a dependency not yet seen: it would be written Blocked;
- a recurring job: its finished runs count toward its history;
- a queue with a rate limit: its window counts the pods started lately,
  finished ones too;
- the queues' status: its counts.
Each finished job, and each finished pod of a finished job, listed after is
looked at last (priority SETTLED), as `resync` does; and a finished pod
listed after is no news of another operator (`rivals`).

Each reconcile is counted by kind and result, and timed
(`conveyor_reconcile_*`); the controller also reports its queues' counts and
its work queue's depth when Prometheus scrapes (`metrics.State`).
"""

from __future__ import annotations

import datetime
import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import Counter

from conveyor.core import decisions
from conveyor.runtime import events, kube, kube_errors, metrics
from conveyor.runtime.admitter import Admitter
from conveyor.runtime.cache import Cache
from conveyor.runtime.job_reconciler import JobReconciler, subject, write_status
from conveyor.runtime.queue_status import INTERVAL, QueueStatusWriter
from conveyor.runtime.records import JobRecord, PodRecord, QueueRecord
from conveyor.runtime.recurring_reconciler import RecurringReconciler
from conveyor.runtime.rivals import Rivals
from conveyor.runtime.workqueue import Key, Kind, Priority, WorkQueue, utcnow

log = logging.getLogger(__name__)

WAITING_PHASES = (None, "Pending", "Queued")
"""Jobs in these phases are looked at again when their queue changes."""


class Controller:
    def __init__(
        self,
        api: kube.KubeApi,
        cache: Cache,
        *,
        workers: int = 16,
        clock: Callable[[], datetime.datetime] = utcnow,
        identity: str = "conveyor",
        quiet_events: frozenset[str] = frozenset(),
        complete: bool = True,
    ) -> None:
        """`identity`: this operator's release, written on its pods (see `rivals`);
        `quiet_events`: reasons of events not to post (see `events`); `complete`: the cache
        holds the finished jobs and pods too (else `completed()` says when it does)."""
        self.cache = cache
        self.complete = complete
        self._held_back: set[Key] = set()
        self.clock = clock
        self.work = WorkQueue(self._dispatch, workers=workers, clock=clock)
        self.recorder = events.EventRecorder(api, clock=clock, quiet=quiet_events)
        self.rivals = Rivals(identity, clock=clock)
        self.admitter = Admitter(api, cache, self.work, clock=clock, identity=identity)
        self.jobs = JobReconciler(api, cache, self.admitter, self.recorder, clock=clock)
        self.recurring = RecurringReconciler(
            api,
            cache,
            self.recorder,
            lambda record, status: write_status(api, cache, record, status),
            clock=clock,
        )
        self.queue_status = QueueStatusWriter(api, cache, self.admitter, self.rivals, clock=clock)
        cache.listen(self)

    def start(self) -> None:
        """Start deciding (once every watch has listed: see `watches`)."""
        self.work.start()
        self.recorder.start()

    def resync(self) -> None:
        """Look at every job and queue in the cache once: what a new term (a restart, or a
        takeover by a follower whose cache is warm) begins with."""
        for namespace, name in self.cache.jobs.known():
            job = self.cache.job(namespace, name)
            self.work.add(Key(Kind.JOB, namespace, name), _settled_if(_finished(job)))
        for namespace, name in self.cache.queues.known():
            self.admitter.limits_changed(namespace, name)
            self._queue_status_soon(namespace, name)

    def completed(self) -> None:
        """The finished jobs and pods are listed now: what waited for them goes on."""
        if self.complete:
            return
        self.complete = True
        log.info("every job and pod is listed: %d held back go on", len(self._held_back))
        for key in self._held_back:
            self.work.add(key)
        self._held_back.clear()

    async def stop(self) -> None:
        await self.work.stop()
        await self.recorder.stop()

    @property
    def idle(self) -> bool:
        """No key waits or is being worked on, and every event is posted (for tests)."""
        return self.work.idle and self.recorder.idle

    # ------------------------------------------------------------ changes → keys

    def job_changed(self, before: JobRecord | None, after: JobRecord | None, *, echo: bool) -> None:
        record = after or before
        assert record is not None
        namespace = record.namespace
        if not echo:
            newly_finished = before is None and _finished(record)
            self.work.add(Key(Kind.JOB, namespace, record.name), _settled_if(newly_finished))
        if after is None:
            self.admitter.withdraw(namespace, record.name)
        if _phase(before) == _phase(after):
            return
        for dependent in self.cache.dependents(namespace, record.name):
            self.work.add(Key(Kind.JOB, namespace, dependent))
        if record.parent:
            self.work.add(Key(Kind.JOB, namespace, record.parent))
        for queue in {r.queue for r in (before, after) if r is not None}:
            self._queue_status_soon(namespace, queue)

    def pod_changed(self, before: PodRecord | None, after: PodRecord | None) -> None:
        pod = after or before
        assert pod is not None
        self.admitter.pod_changed(before, after)
        settled = before is None and after is not None and not after.view.live
        if settled:
            job = self.cache.job(pod.namespace, pod.job)
            settled = job is None or _finished(job)
        self.work.add(Key(Kind.JOB, pod.namespace, pod.job), _settled_if(settled))
        if after is None:
            self.jobs.forget_pod(pod.namespace, pod.view.name)
        elif before is None and (self.complete or after.view.live):
            self._check_creator(after)

    def _check_creator(self, pod: PodRecord) -> None:
        """A pod newly seen: report it if another operator made it (see `rivals`)."""
        event = self.rivals.saw_pod(pod.namespace, pod.creator)
        if event is None:
            return
        job = self.cache.job(pod.namespace, pod.job)
        if job is not None:
            self.recorder.record(subject(job), [event])
        until = self.rivals.until(pod.namespace)
        for namespace, queue in self.cache.queues.known():
            if namespace == pod.namespace:
                self.work.add(Key(Kind.QUEUE_STATUS, namespace, queue))
                if until is not None:  # and again once the conflict is over
                    self.work.add_after(Key(Kind.QUEUE_STATUS, namespace, queue), until)

    def queue_changed(self, before: QueueRecord | None, after: QueueRecord | None) -> None:
        """A queue appeared, went, or changed its spec. Changes of its status alone (its own
        writes) change nothing."""
        if before is not None and after is not None and _same_spec(before, after):
            return
        queue = after or before
        assert queue is not None
        self.admitter.limits_changed(queue.namespace, queue.name)
        self._queue_status_soon(queue.namespace, queue.name)
        for name in self.cache.job_names_in_queue(queue.namespace, queue.name):
            job = self.cache.job(queue.namespace, name)
            if job is None or job.phase in WAITING_PHASES:
                self.work.add(Key(Kind.JOB, queue.namespace, name))

    # ------------------------------------------------------------ keys → reconcilers

    async def _dispatch(self, key: Key) -> None:
        began = time.perf_counter()
        counted = _COUNTED[key.kind]
        try:
            wake_at = await self._reconcile(key)
        except kube_errors.FencedError:
            # No longer the leader: this controller is being stopped, and the next term's
            # begins by looking at everything again.
            log.debug("%s: not written, not the leader", key)
            wake_at = None
        except kube_errors.NamespaceTerminatingError:
            # Its namespace is being deleted, and everything in it with it: nothing to do.
            log.info("%s: its namespace is being deleted; leaving it", key)
            wake_at = None
        except Exception:
            counted.time.observe(time.perf_counter() - began)
            counted.error.inc()
            counted.errors.inc()
            raise  # the work queue retries it
        counted.time.observe(time.perf_counter() - began)
        if wake_at is None:
            counted.success.inc()
            return
        counted.requeue_after.inc()
        self.work.add_after(key, wake_at)

    async def _reconcile(self, key: Key) -> datetime.datetime | None:
        if key.kind is Kind.JOB:
            record = self.cache.job(key.namespace, key.name)
            if record is None or record.deleting:
                self.admitter.withdraw(key.namespace, key.name)
                return None
            recurring = record.spec is not None and record.spec.is_recurring
            if not self.complete and (
                recurring or record.phase == "Running" or self._dependency_unseen(record)
            ):
                self._held_back.add(key)
                return None
            if recurring:
                return await self.recurring.reconcile(record)
            return await self.jobs.reconcile(record)
        if key.kind is Kind.ADMIT:
            if not self.complete and self.admitter.rate_limited(key.namespace, key.name):
                self._held_back.add(key)
                return None
            retry_at = await self.admitter.admit(key.namespace, key.name)
            self._queue_status_soon(key.namespace, key.name)
            return retry_at
        if not self.complete:
            self._held_back.add(key)
            return None
        await self.queue_status.write(key.namespace, key.name)
        return None

    def _dependency_unseen(self, record: JobRecord) -> bool:
        return any(self.cache.job(record.namespace, dep) is None for dep in record.depends_on)

    def _queue_status_soon(self, namespace: str, queue: str) -> None:
        if queue:
            self.work.add_after(Key(Kind.QUEUE_STATUS, namespace, queue), self.clock() + INTERVAL)

    # ------------------------------------------------------------ state, for the scrape

    def queue_states(self) -> Iterator[metrics.QueueState]:
        """Every queue's jobs by phase, as the cache counts them now (`metrics.State`)."""
        now = self.clock()
        for namespace, name in self.cache.queues.known():
            record = self.cache.queue(namespace, name)
            if record is None:
                continue
            oldest = self.cache.oldest_pending(namespace, name)
            yield metrics.QueueState(
                namespace,
                name,
                self.cache.counts(namespace, name),
                max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
                paused=record.spec is None or record.spec.paused,
            )

    def work_queue_depth(self) -> Mapping[str, int]:
        return self.work.depth()


@dataclass(frozen=True)
class _Counted:
    """The reconcile metrics of one kind of key, bound once."""

    time: metrics.Observations
    errors: Counter
    success: Counter
    error: Counter
    requeue_after: Counter

    @classmethod
    def of(cls, kind: Kind) -> _Counted:
        result = functools.partial(metrics.RECONCILES.labels, kind.label)
        return cls(
            time=metrics.RECONCILE_TIME.labels(kind.label),
            errors=metrics.RECONCILE_ERRORS.labels(kind.label),
            success=result("success"),
            error=result("error"),
            requeue_after=result("requeue_after"),
        )


_COUNTED = {kind: _Counted.of(kind) for kind in Kind}


def _finished(job: JobRecord | None) -> bool:
    return job is not None and decisions.is_terminal(job.phase)


def _settled_if(settled: bool) -> Priority | None:
    """A finished job listed or relisted is looked at after everything else (SETTLED)."""
    return Priority.SETTLED if settled else None


def _phase(record: JobRecord | None) -> object:
    """A job's phase for what depends on it: absent, or the phase it shows."""
    return _ABSENT if record is None else record.phase


_ABSENT = object()


def _same_spec(before: QueueRecord, after: QueueRecord) -> bool:
    return before.generation == after.generation and (before.spec is None) == (after.spec is None)
