"""What the operator watches, and in which namespaces: the informers that fill the cache.

Four resources: BackgroundJobs, the pods of their attempts (by label),
JobQueues, PriorityClasses, each listed and watched by an `Informer` into its
store in the cache. The controller starts deciding only once all of them
have listed (`wait_ready`), so a restarted operator counts every live pod
before it admits anything. Jobs and pods list in two steps: those not
finished first (a field selector on `status.phase`), which is all that
admission needs, then, once every informer has listed that much, all of
them (`wait_synced`); the controller holds back what needs the finished ones
until then. After a restart over 50,000 finished jobs and their 40,000
pods, the first step is a few thousand objects and the second most of the
300 MB the lists bring.

Namespaces (`core.namespaces`): none given, every namespace (one
cluster-wide watch per resource); plain names, one watch per name (a Role in
each is enough); a pattern such as `team-*` or `!kube-*`, a cluster-wide
watch whose events outside the pattern are ignored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import kubernetes

from conveyor.api.v1alpha1 import GROUP, VERSION
from conveyor.core import decisions, naming
from conveyor.core import namespaces as namespace_rules
from conveyor.runtime import metrics
from conveyor.runtime.cache import Cache, Resource
from conveyor.runtime.informer import Informer, Lister
from conveyor.runtime.workqueue import WorkQueue

log = logging.getLogger(__name__)

UNFINISHED = ",".join(f"status.phase!={phase}" for phase in sorted(decisions.TERMINAL))
"""The field selector of the jobs not finished (the CRD makes `.status.phase` selectable),
and of the pods not finished (their phases end the same two ways)."""


class Watches:
    """The informers of one operator, feeding one cache."""

    def __init__(
        self,
        client: kubernetes.client.ApiClient,
        cache: Cache,
        *,
        namespaces: Sequence[str] = (),
        in_pool: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None,
    ) -> None:
        custom = kubernetes.client.CustomObjectsApi(client)
        core = kubernetes.client.CoreV1Api(client)
        scheduling = kubernetes.client.SchedulingV1Api(client)
        patterns = any(namespace_rules.is_pattern(ns) for ns in namespaces)
        scopes: list[str | None] = [None] if not namespaces or patterns else list(namespaces)
        accept = functools.partial(_served, values=list(namespaces)) if patterns else None
        self.informers: list[Informer] = []

        def add(resource: Resource, lister: Lister, scope: str | None, **options: Any) -> None:
            self.informers.append(
                Informer(
                    resource.value if scope is None else f"{resource.value}@{scope}",
                    lister,
                    cache.store(resource),
                    namespace=scope,
                    in_pool=in_pool,
                    **options,
                )
            )

        for scope in scopes:
            if scope is None:
                jobs: Lister = functools.partial(
                    custom.list_cluster_custom_object, GROUP, VERSION, Resource.JOBS.value
                )
                queues: Lister = functools.partial(
                    custom.list_cluster_custom_object, GROUP, VERSION, Resource.QUEUES.value
                )
                pods: Lister = core.list_pod_for_all_namespaces
            else:
                jobs = functools.partial(
                    custom.list_namespaced_custom_object, GROUP, VERSION, scope, Resource.JOBS.value
                )
                queues = functools.partial(
                    custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    scope,
                    Resource.QUEUES.value,
                )
                pods = functools.partial(core.list_namespaced_pod, scope)
            add(Resource.QUEUES, queues, scope, namespace_filter=accept)
            add(
                Resource.JOBS,
                jobs,
                scope,
                namespace_filter=accept,
                first_selector=UNFINISHED,
                before_the_rest=self.wait_ready,
            )
            add(
                Resource.PODS,
                pods,
                scope,
                namespace_filter=accept,
                label_selector=naming.LABEL_JOB,
                first_selector=UNFINISHED,
                before_the_rest=self.wait_ready,
            )
        add(Resource.PRIORITY_CLASSES, scheduling.list_priority_class, None)

    def start(self) -> None:
        for informer in self.informers:
            informer.start()

    def recheck(self, resource: str) -> None:
        """A request about `resource` was forbidden: its watches begin again, and find out."""
        for informer in self.informers:
            if informer.resource == resource:
                informer.recheck()

    async def wait_ready(self) -> None:
        """Until every informer has listed once, the jobs and pods perhaps only those not
        finished."""
        await asyncio.gather(*(informer.ready.wait() for informer in self.informers))

    async def wait_synced(self) -> None:
        """Until every informer has listed everything once."""
        await asyncio.gather(*(informer.synced.wait() for informer in self.informers))

    @property
    def synced(self) -> bool:
        return all(informer.synced.is_set() for informer in self.informers)

    def counts(self) -> str:
        """What each informer listed last, for the log."""
        return ", ".join(f"{informer.objects} {informer.name}" for informer in self.informers)

    def health(self) -> dict[str, Any]:
        return {
            informer.name: {
                "synced": informer.synced.is_set(),
                "events": informer.events_seen,
                "failing": informer.last_error if informer.failing_since is not None else None,
            }
            for informer in self.informers
        }

    def stale(self, grace: float) -> dict[str, str]:
        """The watches the operator may not act on: listing has failed for more than `grace`
        seconds (their objects may be long gone, or never were). PriorityClasses only order
        queues, and never stop it."""
        now = time.monotonic()
        found = {}
        for informer in self.informers:
            since = informer.failing_since
            healthy = since is None or now - since <= grace
            metrics.WATCH_HEALTHY.labels(informer.name).set(1 if healthy else 0)
            if not healthy and not informer.name.startswith(Resource.PRIORITY_CLASSES.value):
                found[informer.name] = informer.last_error
        return found

    async def guard(self, work: Callable[[], WorkQueue | None], grace: float = 5.0) -> None:
        """Hold the controller's work while a watch is stale, and let it go on once it lists
        again: deciding from a stale copy beside fresh pods (a resource deleted, its RBAC
        revoked) would recreate or fail jobs that are not there."""
        held: dict[str, str] = {}
        while True:
            stale = self.stale(grace)
            queue = work()
            if stale and not held:
                log.warning(
                    "not acting: %s",
                    "; ".join(
                        f"{name} cannot be listed ({error})" for name, error in stale.items()
                    ),
                )
            elif held and not stale:
                log.info("acting again: every watch lists")
            held = stale
            if queue is not None:
                if stale and not queue.paused:
                    queue.pause()
                elif not stale and queue.paused:
                    queue.resume()
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        await asyncio.gather(*(informer.stop() for informer in self.informers))


def _served(namespace: str, *, values: list[str]) -> bool:
    return namespace_rules.served(namespace, values)
