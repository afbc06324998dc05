"""An in-memory API server behind the `KubeApi` interface, for the controller's unit tests.

httpx tests its client against `MockTransport`, an implementation of the
same transport interface; this is the same idea for the controller. It keeps
objects, assigns uids, resourceVersions, generations and creation stamps,
refuses a second create of a name (409) and a write to a missing object
(404), applies status patches as JSON merge patches, deletes what a deleted
job owns (as the garbage collector would), and delivers every change as a
watch event into the very stores the informers fill (`connect`), through
the same indexers. The test plays the other parts: the user (`create`,
`update`, `delete`), the kubelet (`finish_pod`, `set_pod`) and faults
(`fail`, `pause`, `hold_watch`).

Timing is the event loop's: each call yields once, a watch event arrives
after the call that caused it returned (the usual order), or later while
the watch is held. Nothing here sleeps, so a test of the controller runs in
milliseconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import dataclasses
import datetime
import functools
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from conveyor.api import v1alpha1
from conveyor.core import naming
from conveyor.runtime import kube, kube_errors
from conveyor.runtime.cache import Cache, Resource

Body = dict[str, Any]
ObjectKey = tuple[str, str]


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class _Failure:
    method: str
    error: Exception
    times: int
    when: Callable[..., bool] | None


@dataclass(frozen=True)
class Call:
    """A call the controller made, in order."""

    method: str
    namespace: str
    name: str
    body: Mapping[str, Any] | None = field(default=None, compare=False)


class FakeKubeApi:
    def __init__(self, *, clock: Callable[[], datetime.datetime] = utcnow) -> None:
        self.clock = clock
        self._objects: dict[Resource, dict[ObjectKey, Body]] = {r: {} for r in Resource}
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)
        self._caches: list[Cache] = []
        self._held: list[tuple[Resource, Body, bool]] = []
        self._holding: frozenset[Resource] = frozenset()
        self._failures: list[_Failure] = []
        self._paused: dict[str, asyncio.Event] = {}
        self.waiting: dict[str, list[str]] = collections.defaultdict(list)
        """By method: the names whose calls wait at a paused gate."""
        self.calls: list[Call] = []
        self.failed: list[Call] = []
        """Calls made to fail (by `fail`), in order."""
        self.events: list[kube.EventBody] = []
        self.logs: dict[ObjectKey, str] = {}
        self.live_pods: dict[ObjectKey, set[str]] = collections.defaultdict(set)
        self.most_live_pods: dict[ObjectKey, int] = collections.defaultdict(int)
        """By (namespace, queue label): the most pods alive at once, as this server saw them."""

    # ------------------------------------------------------------ KubeApi

    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        await self._enter("create_pod", namespace, body["metadata"]["name"], body)
        body = copy.deepcopy(body)
        body.setdefault("status", {"phase": "Pending"})
        return self._create(Resource.PODS, namespace, body)

    async def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        await self._enter("read_pod", namespace, name)
        return self.get(Resource.PODS, namespace, name)

    async def delete_pod(self, namespace: str, name: str) -> None:
        await self._enter("delete_pod", namespace, name)
        self._delete(Resource.PODS, namespace, name)

    async def read_log_tail(
        self, namespace: str, pod: str, container: str | None, lines: int, limit_bytes: int
    ) -> str | None:
        await self._enter("read_log_tail", namespace, pod)
        text = self.logs.get((namespace, pod))
        return None if text is None else "\n".join(text.splitlines()[-lines:])[-limit_bytes:]

    async def patch_job_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        await self._enter("patch_job_status", namespace, name, status)
        return self._patch_status(Resource.JOBS, namespace, name, status)

    async def delete_job(self, namespace: str, name: str) -> None:
        await self._enter("delete_job", namespace, name)
        self._delete(Resource.JOBS, namespace, name)

    async def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        await self._enter("create_job", namespace, body["metadata"]["name"], body)
        return self._create(Resource.JOBS, namespace, copy.deepcopy(body))

    async def patch_queue_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self._enter("patch_queue_status", namespace, name, status)
        with contextlib.suppress(kube_errors.NotFoundError):
            self._patch_status(Resource.QUEUES, namespace, name, status)

    async def post_event(self, event: kube.EventBody) -> None:
        await self._enter("post_event", event.namespace, event.object_name)
        if any((e.namespace, e.name) == (event.namespace, event.name) for e in self.events):
            raise kube_errors.ConflictError(f"events {event.name!r} already exists")
        self.events.append(event)

    async def patch_event(self, repeat: kube.EventRepeat) -> None:
        """Counts a repeat into the Event it names (in place: the list keeps post order)."""
        await self._enter("patch_event", repeat.namespace, repeat.name)
        for i, event in enumerate(self.events):
            if (event.namespace, event.name) == (repeat.namespace, repeat.name):
                self.events[i] = dataclasses.replace(
                    event,
                    count=repeat.count,
                    message=repeat.message,
                    at=repeat.at,
                    first_at=event.first_at or event.at,
                )
                return
        raise kube_errors.NotFoundError(f"events {repeat.name!r} not found")

    # ------------------------------------------------------------ the test's side

    def connect(
        self, cache: Cache, *, select: Callable[[Resource, Body], bool] | None = None
    ) -> None:
        """List every object (or those `select` picks) into the cache's stores, then deliver
        each change as an event."""
        for resource, objects in self._objects.items():
            for body in objects.values():
                if select is None or select(resource, body):
                    cache.store(resource).apply(copy.deepcopy(body))
        self._caches.append(cache)

    def relist(self, cache: Cache) -> None:
        """List every object into a connected cache again (what it has unchanged stays)."""
        for resource, objects in self._objects.items():
            for body in objects.values():
                cache.store(resource).apply(copy.deepcopy(body))

    def disconnect(self, cache: Cache) -> None:
        """Stop delivering to this cache (an operator that died)."""
        self._caches.remove(cache)

    def connected(self, cache: Cache) -> bool:
        return cache in self._caches

    def create(self, resource: Resource, body: Body) -> Body:
        """Create an object as a user would (`kubectl create`)."""
        meta = body["metadata"]
        return self._create(resource, meta.get("namespace", ""), copy.deepcopy(body))

    def update(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        *,
        spec: Mapping[str, Any] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Body:
        """Merge into the spec (a new generation) and the annotations, as `kubectl patch`."""
        body = self._get(resource, namespace, name)
        if spec is not None:
            body["spec"] = merge_patch(body.get("spec") or {}, spec)
            body["metadata"]["generation"] = body["metadata"].get("generation", 1) + 1
        if annotations is not None:
            meta = body["metadata"]
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        return self._changed(resource, body)

    def delete(self, resource: Resource, namespace: str, name: str) -> None:
        self._delete(resource, namespace, name)

    def set_pod(self, namespace: str, name: str, status: Mapping[str, Any]) -> Body:
        """Set a pod's status, as the kubelet does."""
        body = self._get(Resource.PODS, namespace, name)
        body["status"] = copy.deepcopy(dict(status))
        return self._changed(Resource.PODS, body)

    def set_status(
        self, resource: Resource, namespace: str, name: str, status: Mapping[str, Any]
    ) -> Body:
        """Merge into an object's status, as another writer (an earlier release) would."""
        return self._patch_status(resource, namespace, name, status)

    def run_pod(self, namespace: str, name: str) -> Body:
        return self.set_pod(namespace, name, {"phase": "Running"})

    def finish_pod(
        self,
        namespace: str,
        name: str,
        *,
        exit_code: int = 0,
        reason: str | None = None,
        message: str | None = None,
    ) -> Body:
        """The pod's one container exited with `exit_code`, having written `message` to its
        termination log."""
        finished = naming.format_time(self.clock())
        terminated = {
            "exitCode": exit_code,
            "reason": reason or ("Completed" if exit_code == 0 else "Error"),
            "finishedAt": finished,
        }
        if message is not None:
            terminated["message"] = message
        return self.set_pod(
            namespace,
            name,
            {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "containerStatuses": [{"name": "worker", "state": {"terminated": terminated}}],
            },
        )

    def get(self, resource: Resource, namespace: str, name: str) -> Body | None:
        body = self._objects[resource].get((namespace, name))
        return None if body is None else copy.deepcopy(body)

    def names(self, resource: Resource, namespace: str | None = None) -> list[str]:
        return sorted(n for ns, n in self._objects[resource] if namespace in (None, ns))

    def fail(
        self,
        method: str,
        error: Exception,
        *,
        times: int = 1,
        when: Callable[..., bool] | None = None,
    ) -> None:
        """Make the next `times` calls of `method` (those `when(namespace, name)` accepts) raise."""
        self._failures.append(_Failure(method, error, times, when))

    def pause(self, method: str) -> asyncio.Event:
        """Calls of `method` wait until the returned event is set (writes in flight)."""
        gate = self._paused[method] = asyncio.Event()
        return gate

    @contextlib.contextmanager
    def hold_watch(self, *resources: Resource) -> Iterator[None]:
        """Watch events (of these resources; default all) wait until the block ends: a watch
        that lags behind the writes."""
        self._holding = frozenset(resources or Resource)
        try:
            yield
        finally:
            self._holding = frozenset()
            held, self._held = self._held, []
            for resource, body, deleted in held:
                self._deliver(resource, body, deleted)

    def count(self, method: str) -> int:
        """Calls of `method` that succeeded."""
        return sum(1 for call in self.calls if call.method == method)

    def clear_failures(self) -> None:
        self._failures.clear()

    # ------------------------------------------------------------ the server

    async def _enter(self, method: str, namespace: str, name: str, body: Any = None) -> None:
        await asyncio.sleep(0)
        gate = self._paused.get(method)
        if gate is not None and not gate.is_set():
            self.waiting[method].append(name)
            try:
                await gate.wait()
            finally:
                self.waiting[method].remove(name)
        for failure in self._failures:
            if failure.method == method and (failure.when is None or failure.when(namespace, name)):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                self.failed.append(Call(method, namespace, name, copy.deepcopy(body)))
                raise failure.error
        self.calls.append(Call(method, namespace, name, copy.deepcopy(body)))

    def _create(self, resource: Resource, namespace: str, body: Body) -> Body:
        meta = body.setdefault("metadata", {})
        key = (namespace, meta["name"])
        if key in self._objects[resource]:
            raise kube_errors.ConflictError(f"{resource.value} {key} already exists")
        meta.update(
            namespace=namespace,
            uid=f"uid-{next(self._uids)}",
            generation=1,
            creationTimestamp=self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        return self._changed(resource, body)

    def _get(self, resource: Resource, namespace: str, name: str) -> Body:
        body = self._objects[resource].get((namespace, name))
        if body is None:
            raise kube_errors.NotFoundError(f"{resource.value} {namespace}/{name} not found")
        return body

    def _patch_status(
        self, resource: Resource, namespace: str, name: str, status: Mapping[str, Any]
    ) -> Body:
        body = self._get(resource, namespace, name)
        merged = merge_patch(body.get("status") or {}, status)
        _check_status(resource, merged)
        body["status"] = merged
        return self._changed(resource, body)

    def _changed(self, resource: Resource, body: Body) -> Body:
        meta = body["metadata"]
        meta["resourceVersion"] = str(next(self._versions))
        self._objects[resource][(meta["namespace"], meta["name"])] = body
        if resource is Resource.PODS:
            self._count_live(body, gone=False)
        self._deliver(resource, copy.deepcopy(body), False)
        return copy.deepcopy(body)

    def _delete(self, resource: Resource, namespace: str, name: str) -> None:
        body = self._objects[resource].pop((namespace, name), None)
        if body is None:
            return
        body["metadata"]["resourceVersion"] = str(next(self._versions))
        if resource is Resource.PODS:
            self._count_live(body, gone=True)
        self._deliver(resource, body, True)
        uid = body["metadata"]["uid"]
        for owned_resource in (Resource.PODS, Resource.JOBS):
            for key, owned in list(self._objects[owned_resource].items()):
                refs = owned["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == uid for ref in refs):
                    self._delete(owned_resource, *key)

    def _count_live(self, pod: Body, *, gone: bool) -> None:
        meta = pod["metadata"]
        queue = (meta["namespace"], (meta.get("labels") or {}).get(naming.LABEL_QUEUE, ""))
        live = self.live_pods[queue]
        if gone or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            live.discard(meta["name"])
        else:
            live.add(meta["name"])
        self.most_live_pods[queue] = max(self.most_live_pods[queue], len(live))

    def _deliver(self, resource: Resource, body: Body, deleted: bool) -> None:
        if resource in self._holding:
            self._held.append((resource, body, deleted))
            return
        for cache in self._caches:
            store = cache.store(resource)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                store.apply(body, deleted=deleted)
            else:
                loop.call_soon(functools.partial(store.apply, body, deleted=deleted))


_STATUS_MODELS: dict[Resource, type[pydantic.BaseModel]] = {
    Resource.JOBS: v1alpha1.BackgroundJobStatus,
    Resource.QUEUES: v1alpha1.JobQueueStatus,
}


def _check_status(resource: Resource, status: Mapping[str, Any]) -> None:
    """What the API server's schema would refuse in a status write (422): here, the status
    models' own rules (conditions with reason, message and lastTransitionTime) and one
    condition per type (the list-map's key)."""
    model = _STATUS_MODELS.get(resource)
    if model is None:
        return
    try:
        model.model_validate(status)
    except pydantic.ValidationError as error:
        raise kube_errors.ApiError(422, f"status is invalid: {error}") from error
    types = [c.get("type") for c in status.get("conditions") or []]
    if len(types) != len(set(types)):
        raise kube_errors.ApiError(422, f"status.conditions: Duplicate value: types {types}")


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386: objects merge, null deletes, anything else replaces."""
    merged = dict(copy.deepcopy(target))
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
