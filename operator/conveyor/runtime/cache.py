"""What the operator knows: the watched objects, their indices, and its own writes not yet seen.

Four stores (BackgroundJobs, the pods of their attempts, JobQueues and
PriorityClasses) are filled by the informers (`watches`) or, in unit tests,
by the fake API; both go through the same indexers below. The reconcilers
read them only through the typed helpers here, never the raw index.

A write of the operator's own is visible to the next reconcile at once,
before its watch event arrives, through two explicit overlays:

- `wrote_status`: the status the operator patched on a job, kept until the
  watch shows that resourceVersion (or a newer one). The watch event carrying
  exactly a resourceVersion the operator's write returned is its *echo*: it
  is news to nobody, and is not reconciled again.
- `created_pod`: a pod the operator created, kept until the watch shows it,
  so that the next look at the job sees its attempt's pod.

A pod deleted before its job's status recorded its attempt (its status
write was refused, say, while someone deleted its pods) is remembered as
*gone* until the status records it, so that the attempt is counted as lost
rather than run again under the same number. Memory is all that keeps it:
an operator restarted in that window cannot know the attempt ever ran.

Each change of a job as the controller sees it (from a watch event or from
an overlay) is also counted in the queues' tallies, and told to the
listener (the controller) with the record before and after.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

from conveyor.api.v1alpha1 import BackgroundJobStatus
from conveyor.core import tally
from conveyor.runtime.records import JobRecord, PodRecord, QueueRecord
from conveyor.runtime.store import Indexed, Store

T = TypeVar("T")


class By(enum.Enum):
    """The indices, and what each holds under a (namespace, name) key."""

    JOB = "job"
    """A job's name → its JobRecord."""
    IN_QUEUE = "in-queue"
    """A queue's name → the names of the jobs that name it."""
    DEPENDENT_OF = "dependent-of"
    """A job's name → the names of the jobs whose dependsOn lists it."""
    RUN_OF = "run-of"
    """A recurring job's name → the names of its runs."""
    POD_OF_JOB = "pod-of-job"
    """A job's name → the PodRecords of its attempts."""
    POD_OF_QUEUE = "pod-of-queue"
    """A queue's name → the PodRecords of its jobs' attempts."""
    QUEUE = "queue"
    """A queue's name → its QueueRecord."""
    PRIORITY_CLASS = "priority-class"
    """A PriorityClass's name (namespace "") → its value."""


class IndexKey(NamedTuple):
    by: By
    namespace: str
    name: str


class Resource(enum.Enum):
    JOBS = "backgroundjobs"
    PODS = "pods"
    QUEUES = "jobqueues"
    PRIORITY_CLASSES = "priorityclasses"


# ------------------------------------------------------------ indexers


@functools.lru_cache(maxsize=4096)
def _shared_key(by: By, namespace: str, name: str) -> IndexKey:
    """One key object for the entries that thousands of objects share (their queue's)."""
    return IndexKey(by, namespace, name)


def index_job(body: Mapping[str, Any]) -> Indexed[JobRecord]:
    record = JobRecord.from_body(body)
    namespace, name = record.key
    entries: dict[Hashable, object] = {
        IndexKey(By.JOB, namespace, name): record,
        _shared_key(By.IN_QUEUE, namespace, record.queue): name,
    }
    for dependency in record.depends_on:
        entries[IndexKey(By.DEPENDENT_OF, namespace, dependency)] = name
    if record.parent:
        entries[IndexKey(By.RUN_OF, namespace, record.parent)] = name
    return Indexed(record, entries)


def index_pod(body: Mapping[str, Any]) -> Indexed[PodRecord] | None:
    record = PodRecord.from_body(body)
    if record is None:
        return None
    return Indexed(
        record,
        {
            IndexKey(By.POD_OF_JOB, record.namespace, record.job): record,
            _shared_key(By.POD_OF_QUEUE, record.namespace, record.queue): record,
        },
    )


def index_queue(body: Mapping[str, Any]) -> Indexed[QueueRecord]:
    record = QueueRecord.from_body(body)
    return Indexed(record, {IndexKey(By.QUEUE, record.namespace, record.name): record})


def index_priority_class(body: Mapping[str, Any]) -> Indexed[tuple[str, int]]:
    name = str((body.get("metadata") or {}).get("name") or "")
    value = int(body.get("value") or 0)
    return Indexed((name, value), {IndexKey(By.PRIORITY_CLASS, "", name): value})


# ------------------------------------------------------------ the cache


class Listener(Protocol):
    """Told of every change, with the records before and after (None: absent)."""

    def job_changed(
        self, before: JobRecord | None, after: JobRecord | None, *, echo: bool
    ) -> None: ...
    def pod_changed(self, before: PodRecord | None, after: PodRecord | None) -> None: ...
    def queue_changed(self, before: QueueRecord | None, after: QueueRecord | None) -> None: ...


@dataclasses.dataclass
class _Written:
    """The newest status the operator wrote on a job, and every resourceVersion it produced."""

    record: JobRecord
    versions: set[int]


class Cache:
    def __init__(self) -> None:
        self.jobs: Store[JobRecord] = Store(index_job)
        self.pods: Store[PodRecord] = Store(index_pod)
        self.queues: Store[QueueRecord] = Store(index_queue)
        self.priority_classes: Store[tuple[str, int]] = Store(index_priority_class)
        self.jobs.on_change = self._job_event
        self.pods.on_change = self._pod_event
        self.queues.on_change = self._queue_event
        self._listener: Listener | None = None
        self._written: dict[tuple[str, str], _Written] = {}
        self._created: dict[tuple[str, str], dict[int, PodRecord]] = {}
        self._gone: dict[tuple[str, str], dict[int, PodRecord]] = {}
        """Pods deleted before their attempt was recorded, by job and attempt."""
        self._tally = tally.Tally()
        self.priority_values: Mapping[str, int] = _PriorityClasses(self.priority_classes)

    def store(self, resource: Resource) -> Store[Any]:
        stores: dict[Resource, Store[Any]] = {
            Resource.JOBS: self.jobs,
            Resource.PODS: self.pods,
            Resource.QUEUES: self.queues,
            Resource.PRIORITY_CLASSES: self.priority_classes,
        }
        return stores[resource]

    def listen(self, listener: Listener) -> None:
        self._listener = listener

    # ------------------------------------------------------------ reads

    def job(self, namespace: str, name: str) -> JobRecord | None:
        """The job as last seen, with the status the operator wrote since, if any."""
        indexed = self._one_job(namespace, name)
        return None if indexed is None else self._overlaid(indexed)

    def job_names_in_queue(self, namespace: str, queue: str) -> list[str]:
        return self._names(IndexKey(By.IN_QUEUE, namespace, queue))

    def dependents(self, namespace: str, name: str) -> list[str]:
        return self._names(IndexKey(By.DEPENDENT_OF, namespace, name))

    def runs(self, namespace: str, name: str) -> list[JobRecord]:
        """The runs of a recurring job (by label: check their owner)."""
        found = (
            self.job(namespace, run) for run in self._names(IndexKey(By.RUN_OF, namespace, name))
        )
        return [run for run in found if run is not None]

    def pods_of(self, job: JobRecord) -> dict[int, PodRecord]:
        """The job's pods by attempt, those the operator created and the watch has not shown
        yet included."""
        key = IndexKey(By.POD_OF_JOB, job.namespace, job.name)
        pods = {pod.view.attempt: pod for pod in _records(self.pods.index.values(key), PodRecord)}
        for attempt, pod in self._created.get(job.key, {}).items():
            pods.setdefault(attempt, pod)
        gone = self._gone.get(job.key)
        if gone:
            for attempt in [a for a in gone if a <= job.status.attempts]:
                del gone[attempt]  # recorded now
            for attempt, pod in gone.items():
                pods.setdefault(attempt, pod)
            if not gone:
                del self._gone[job.key]
        return pods

    def pods_of_queue(self, namespace: str, queue: str) -> list[PodRecord]:
        """Every pod of the queue's jobs, those the watch has not shown yet included."""
        key = IndexKey(By.POD_OF_QUEUE, namespace, queue)
        pods = list(_records(self.pods.index.values(key), PodRecord))
        seen = {pod.uid for pod in pods}
        for (pod_namespace, _job), created in self._created.items():
            if pod_namespace == namespace:
                pods += [p for p in created.values() if p.queue == queue and p.uid not in seen]
        return pods

    def queue(self, namespace: str, name: str) -> QueueRecord | None:
        found = _records(self.queues.index.values(IndexKey(By.QUEUE, namespace, name)), QueueRecord)
        return next(iter(found), None)

    def counts(self, namespace: str, queue: str) -> Mapping[str, int]:
        """The queue's jobs by phase."""
        return self._tally.counts(namespace, queue)

    def oldest_pending(self, namespace: str, queue: str) -> datetime.datetime | None:
        return self._tally.oldest_pending(namespace, queue)

    # ------------------------------------------------------------ the operator's own writes

    def wrote_status(
        self, record: JobRecord, status: BackgroundJobStatus, resource_version: int
    ) -> JobRecord:
        """The operator patched the job's status: see it at once. Returns the job as written."""
        written = record.with_status(status, resource_version)
        indexed = self._one_job(record.namespace, record.name)
        if indexed is None or indexed.resource_version < resource_version:
            known = self._written.get(record.key)
            versions = known.versions if known is not None else set()
            versions.add(resource_version)
            self._written[record.key] = _Written(written, versions)
        self._count(written.namespace, written.name, written)
        if self._listener is not None:
            self._listener.job_changed(record, written, echo=True)
        return written

    def created_pod(self, pod: PodRecord) -> None:
        """The operator created this pod: count it before the watch shows it."""
        seen = self.pods.index.values(IndexKey(By.POD_OF_JOB, pod.namespace, pod.job))
        if not any(p.uid == pod.uid for p in _records(seen, PodRecord)):
            self._created.setdefault((pod.namespace, pod.job), {})[pod.view.attempt] = pod

    # ------------------------------------------------------------ store events

    def _job_event(self, old: JobRecord | None, new: JobRecord | None) -> None:
        record = new or old
        assert record is not None
        if new is None:
            self._gone.pop(record.key, None)
        written = self._written.get(record.key)
        before = None if old is None else self._overlaid(old)
        echo = new is not None and written is not None and new.resource_version in written.versions
        if written is not None and (
            new is None or new.resource_version >= written.record.resource_version
        ):
            del self._written[record.key]
        after = None if new is None else self._overlaid(new)
        self._count(record.namespace, record.name, after)
        if self._listener is not None:
            self._listener.job_changed(before, after, echo=echo)

    def _pod_event(self, old: PodRecord | None, new: PodRecord | None) -> None:
        record = new or old
        assert record is not None
        created = self._created.get((record.namespace, record.job))
        if created is not None:
            created.pop(record.view.attempt, None)
            if not created:
                del self._created[(record.namespace, record.job)]
        if new is None:
            job = self.job(record.namespace, record.job)
            if job is not None and job.status.attempts < record.view.attempt:
                gone = dataclasses.replace(record, view=dataclasses.replace(record.view, gone=True))
                self._gone.setdefault(job.key, {})[record.view.attempt] = gone
        if self._listener is not None:
            self._listener.pod_changed(old, new)

    def _queue_event(self, old: QueueRecord | None, new: QueueRecord | None) -> None:
        if self._listener is not None:
            self._listener.queue_changed(old, new)

    # ------------------------------------------------------------ helpers

    def _one_job(self, namespace: str, name: str) -> JobRecord | None:
        found = _records(self.jobs.index.values(IndexKey(By.JOB, namespace, name)), JobRecord)
        return next(iter(found), None)

    def _overlaid(self, indexed: JobRecord) -> JobRecord:
        written = self._written.get(indexed.key)
        if written is None or indexed.resource_version >= written.record.resource_version:
            return indexed
        # The operator's write is newer than the index; the spec may still have changed since.
        return indexed.with_status_of(written.record)

    def _names(self, key: IndexKey) -> list[str]:
        return [str(value) for value in self.jobs.index.values(key)]

    def _count(self, namespace: str, name: str, record: JobRecord | None) -> None:
        """Keep the queue's job counts (recurring parents are not jobs of the queue)."""
        if record is None or (record.spec is not None and record.spec.is_recurring):
            self._tally.update(namespace, name, None)
        else:
            phase = record.phase or "Pending"
            self._tally.update(namespace, name, tally.Entry(record.queue, phase, record.created_at))


def _records(values: Iterable[object], kind: type[T]) -> Iterator[T]:
    """The values of an index entry, typed (each index holds one kind of value)."""
    for value in values:
        assert isinstance(value, kind)
        yield value


class _PriorityClasses(Mapping[str, int]):
    """PriorityClass name → value, read through the index."""

    def __init__(self, store: Store[tuple[str, int]]) -> None:
        self._store = store

    def __getitem__(self, name: str) -> int:
        for value in self._store.index.values(IndexKey(By.PRIORITY_CLASS, "", name)):
            assert isinstance(value, int)
            return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (name for _namespace, name in self._store.known())

    def __len__(self) -> int:
        return len(self._store)
