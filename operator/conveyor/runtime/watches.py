"""What the operator watches, how each object is indexed, and what each change tells the controller.

Four resources: BackgroundJobs, the pods of their attempts (by label),
JobQueues, PriorityClasses. Each is listed and watched by an `Informer`; the
controller starts deciding only once all four are listed, so a restarted
operator counts every live pod before it admits anything.

Namespaces: none given, every namespace (one cluster-wide watch per
resource); plain names, one watch per name (a Role in each is enough); a
pattern such as `team-*` or `!kube-*` (kopf's syntax), a cluster-wide watch
whose events outside the pattern are ignored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any

import kubernetes
from kopf._cogs.structs.references import NamespaceName, match_namespace

from conveyor.api.v1alpha1 import GROUP, VERSION
from conveyor.core import naming
from conveyor.runtime.controller import (
    DEPENDENT_OF,
    IN_QUEUE,
    JOB,
    OF_JOB,
    OF_QUEUE,
    RUN_OF,
    Controller,
    Indices,
)
from conveyor.runtime.informer import Index, Informer, Lister
from conveyor.runtime.records import JobRecord, PodRecord, QueueRecord

log = logging.getLogger(__name__)

Entries = tuple[Any, Mapping[Hashable, Any]]


def job_entries(body: Mapping[str, Any]) -> Entries:
    """A job under its name, its name under its queue, each job it depends on, and its parent."""
    record = JobRecord.from_body(body)
    namespace, name = record.key
    entries: dict[Hashable, Any] = {
        (JOB, namespace, name): record,
        (IN_QUEUE, namespace, record.queue): name,
    }
    for dep in record.depends_on:
        entries[(DEPENDENT_OF, namespace, dep)] = name
    if record.parent:
        entries[(RUN_OF, namespace, record.parent)] = name
    return record, entries


def pod_entries(body: Mapping[str, Any]) -> Entries | None:
    record = PodRecord.from_body(body)
    if record is None:
        return None
    return record, {
        (OF_JOB, record.namespace, record.job): record,
        (OF_QUEUE, record.namespace, record.queue): record,
    }


def queue_entries(body: Mapping[str, Any]) -> Entries:
    record = QueueRecord.from_body(body)
    return record, {(record.namespace, record.name): record}


def priority_class_entries(body: Mapping[str, Any]) -> Entries:
    name = str((body.get("metadata") or {}).get("name") or "")
    value = int(body.get("value") or 0)
    return (name, value), {name: value}


def is_pattern(namespace: str) -> bool:
    return any(char in namespace for char in "*?[]!,")


class Watches:
    """The four informers of one operator, feeding one controller."""

    def __init__(
        self,
        client: kubernetes.client.ApiClient,
        controller: Controller,
        *,
        namespaces: Sequence[str] = (),
        in_pool: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None,
    ) -> None:
        self.controller = controller
        job_index, pod_index, queue_index, class_index = Index(), Index(), Index(), Index()
        self.indices = Indices(
            jobs=job_index, pods=pod_index, queues=queue_index, priority_classes=class_index
        )
        custom = kubernetes.client.CustomObjectsApi(client)
        core = kubernetes.client.CoreV1Api(client)
        scheduling = kubernetes.client.SchedulingV1Api(client)

        def jobs_changed(record: JobRecord, deleted: bool) -> None:
            controller.job_changed(record, deleted=deleted)

        def pods_changed(record: PodRecord, deleted: bool) -> None:
            controller.pod_changed(record, deleted=deleted)

        def queues_changed(record: QueueRecord, deleted: bool) -> None:
            controller.queue_changed(record.namespace, record.name)

        def nothing(_record: Any, _deleted: bool) -> None:
            return None

        patterns = [ns for ns in namespaces if is_pattern(ns)]
        scopes: list[str | None] = [None] if not namespaces or patterns else list(namespaces)
        accept = functools.partial(_matches_any, patterns=list(namespaces)) if patterns else None
        self.informers: list[Informer] = []

        def add(
            name: str,
            lister: Lister,
            index: Index,
            indexer: Callable[[Mapping[str, Any]], Entries | None],
            on_change: Callable[[Any, bool], None],
            *,
            scope: str | None,
            selector: str | None = None,
            cluster_scoped: bool = False,
        ) -> None:
            self.informers.append(
                Informer(
                    name if scope is None else f"{name}@{scope}",
                    lister,
                    index=index,
                    indexer=indexer,
                    on_change=on_change,
                    label_selector=selector,
                    namespace_filter=accept if scope is None and not cluster_scoped else None,
                    in_pool=in_pool,
                )
            )

        for scope in scopes:
            if scope is None:
                jobs: Lister = functools.partial(
                    custom.list_cluster_custom_object, GROUP, VERSION, "backgroundjobs"
                )
                queues: Lister = functools.partial(
                    custom.list_cluster_custom_object, GROUP, VERSION, "jobqueues"
                )
                pods: Lister = core.list_pod_for_all_namespaces
            else:
                jobs = functools.partial(
                    custom.list_namespaced_custom_object, GROUP, VERSION, scope, "backgroundjobs"
                )
                queues = functools.partial(
                    custom.list_namespaced_custom_object, GROUP, VERSION, scope, "jobqueues"
                )
                pods = functools.partial(core.list_namespaced_pod, scope)
            add("queues", queues, queue_index, queue_entries, queues_changed, scope=scope)
            add("jobs", jobs, job_index, job_entries, jobs_changed, scope=scope)
            add(
                "pods",
                pods,
                pod_index,
                pod_entries,
                pods_changed,
                scope=scope,
                selector=naming.LABEL_JOB,
            )
        add(
            "priorityclasses",
            scheduling.list_priority_class,
            class_index,
            priority_class_entries,
            nothing,
            scope=None,
            cluster_scoped=True,
        )
        self._starting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start watching; the controller starts deciding once everything is listed."""
        self.controller.bind(self.indices)
        for informer in self.informers:
            informer.start()
        self._starting = asyncio.create_task(self._start_when_synced(), name="conveyor-sync")

    async def _start_when_synced(self) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.gather(*(informer.synced.wait() for informer in self.informers))
        counts = ", ".join(f"{len(informer)} {informer.name}" for informer in self.informers)
        log.info("listed %s in %.2f s: deciding", counts, loop.time() - began)
        self.controller.start()

    def health(self) -> dict[str, Any]:
        return {
            informer.name: {"synced": informer.synced.is_set(), "events": informer.events_seen}
            for informer in self.informers
        }

    async def stop(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
        await asyncio.gather(*(informer.stop() for informer in self.informers))


def _matches_any(namespace: str, *, patterns: list[str]) -> bool:
    return any(match_namespace(NamespaceName(namespace), pattern) for pattern in patterns)
