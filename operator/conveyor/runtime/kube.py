"""The few Kubernetes API calls the operator makes, behind one async interface.

The official `kubernetes` client is synchronous; its calls run in a thread
pool sized for the reconcilers' parallelism, over one shared `ApiClient`
whose connection pool is as large as that pool, so no call waits for a
socket. Every write the operator makes goes through here, which is where
the API writes per job are counted and kept low, and where a request that
fails is counted by verb, resource and status (`metrics.api_error`).

Requests skip the client's generated methods (`ClientKubeApi._send`): they
turn a body into the client's models and back, 1.4 ms of CPU for a pod
create, more than the rest of its path through the operator, for a body that
is JSON already. They are sent from the event loop (`loop_http`), with the
client's configuration and credentials, not from a worker thread. Only the
log read (plain text) and the informers' lists and watches (`informer`) use
the client, in the thread pool.

`KubeApi` is the Protocol the controller depends on; `ClientKubeApi` is the
real thing, and `fake_kube.FakeKubeApi` an in-memory one for the controller's
unit tests (as httpx's MockTransport stands in for its transport). Nothing
patches the client. Both raise the refusals of `kube_errors`, which says
what each means.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import functools
import json
import logging
import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp
import kubernetes
import orjson
import urllib3
from kubernetes.client.exceptions import ApiException

from conveyor.api.v1alpha1 import GROUP, VERSION
from conveyor.core import naming
from conveyor.runtime import kube_errors, loop_http, metrics

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class EventBody:
    """A core/v1 Event about one object."""

    name: str
    namespace: str
    kind: str
    object_name: str
    uid: str
    type: str
    reason: str
    message: str
    at: datetime.datetime
    count: int = 1
    first_at: datetime.datetime | None = None
    """Set when a repeated event is posted anew (its earlier object gone): the first time."""


@dataclass(frozen=True)
class EventRepeat:
    """An Event that happened again: its count, latest time and (latest) message."""

    name: str
    namespace: str
    count: int
    message: str
    at: datetime.datetime


class KubeApi(Protocol):
    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    async def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def delete_pod(self, namespace: str, name: str) -> None: ...
    async def read_log_tail(
        self, namespace: str, pod: str, container: str | None, lines: int, limit_bytes: int
    ) -> str | None: ...
    async def patch_job_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def delete_job(self, namespace: str, name: str) -> None: ...
    async def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    async def patch_queue_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> None: ...
    async def post_event(self, event: EventBody) -> None: ...
    async def patch_event(self, repeat: EventRepeat) -> None: ...


Request = tuple[str, str]
"""A request's verb and resource, as its failures are counted (`metrics.api_error`)."""
CREATE_POD: Request = ("create", "pods")
GET_POD: Request = ("get", "pods")
DELETE_POD: Request = ("delete", "pods")
GET_LOG: Request = ("get", "pods/log")
PATCH_JOB_STATUS: Request = ("patch", "backgroundjobs/status")
DELETE_JOB: Request = ("delete", "backgroundjobs")
CREATE_JOB: Request = ("create", "backgroundjobs")
PATCH_QUEUE_STATUS: Request = ("patch", "jobqueues/status")
CREATE_EVENT: Request = ("create", "events")
PATCH_EVENT: Request = ("patch", "events")


class ClientKubeApi:
    """KubeApi over the official client, run in a dedicated thread pool."""

    def __init__(
        self,
        *,
        threads: int = 32,
        reporting_instance: str | None = None,
        fence: Callable[[], bool] | None = None,
        configuration: kubernetes.client.Configuration | None = None,
    ) -> None:
        """`configuration`: the API server to talk to (default: the pod's service account,
        else the kubeconfig)."""
        if configuration is None:
            try:
                kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
            except kubernetes.config.ConfigException:
                kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
            configuration = kubernetes.client.Configuration.get_default_copy()
        configuration.connection_pool_maxsize = threads
        self._client = kubernetes.client.ApiClient(configuration)
        self._core = kubernetes.client.CoreV1Api(self._client)
        self._http = loop_http.LoopHttp(self._client)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="kube"
        )
        self._instance = reporting_instance or os.environ.get("POD_NAME") or "conveyor"
        self.fence = fence
        """Asked right before every write leaves the process: may this replica write?"""
        self.on_forbidden: Callable[[str], None] | None = None
        """Told the resource (`pods`, `backgroundjobs`, ...) of a request RBAC refused: the
        operator's permissions changed, and its watch of that resource may not know yet."""

    async def close(self) -> None:
        await self._http.close()

    @property
    def client(self) -> kubernetes.client.ApiClient:
        return self._client

    async def run_blocking(self, fn: Callable[[], T]) -> T:
        """Run a blocking call of the official client in the API thread pool (its caller
        counts its failures)."""
        return await self._call(None, fn)

    async def _call(
        self, request: Request | None, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
        except ApiException as error:
            if request is None:
                raise kube_errors.translate(error) from error
            raise self._translated(request, error) from error
        except (urllib3.exceptions.HTTPError, OSError):
            if request is not None:
                metrics.api_error(*request, None)
            raise

    def _translated(self, request: Request, error: ApiException) -> Exception:
        """The refusal as `kube_errors` says, counted; RBAC's refusal is told (`on_forbidden`)."""
        metrics.api_error(*request, error.status)
        translated = kube_errors.translate(error)
        if (
            self.on_forbidden is not None
            and isinstance(translated, kube_errors.ApiError)
            and translated.status == 403
            and not translated.refused_by_policy
        ):
            self.on_forbidden(request[1].partition("/")[0])
        return translated

    async def _send(
        self,
        request: Request,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """A request as the client's generated method would make it (the same headers,
        authentication and errors), without its models, from the event loop (`loop_http`).
        A write is fenced at the last moment before it is sent."""
        if method != "GET" and self.fence is not None and not self.fence():
            raise kube_errors.FencedError(f"{method} {path}: not the leader")
        try:
            answer = await self._http.request(
                method,
                path,
                query=query,
                body=None if body is None else _json(body),
                content_type=content_type,
            )
        except (aiohttp.ClientError, TimeoutError, OSError):
            metrics.api_error(*request, None)
            raise
        if not 200 <= answer.status <= 299:
            refused = ApiException(status=answer.status, reason=answer.reason)
            refused.body = answer.body.decode("utf-8", "replace")
            refused.headers = answer.headers
            raise self._translated(request, refused) from refused
        parsed: dict[str, Any] = orjson.loads(answer.body) if answer.body else {}
        return parsed

    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        # Strict: a field the pod has no such field for (a typo in the template) is refused,
        # naming the field, not silently dropped.
        return await self._send(
            CREATE_POD,
            "POST",
            f"/api/v1/namespaces/{_quote(namespace)}/pods",
            body,
            query={"fieldValidation": "Strict"},
        )

    async def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._send(
                GET_POD, "GET", f"/api/v1/namespaces/{_quote(namespace)}/pods/{_quote(name)}"
            )
        except kube_errors.NotFoundError:
            return None

    async def delete_pod(self, namespace: str, name: str) -> None:
        with contextlib.suppress(kube_errors.NotFoundError):
            await self._send(
                DELETE_POD,
                "DELETE",
                f"/api/v1/namespaces/{_quote(namespace)}/pods/{_quote(name)}",
                query={"gracePeriodSeconds": "5"},
            )

    async def read_log_tail(
        self, namespace: str, pod: str, container: str | None, lines: int, limit_bytes: int
    ) -> str | None:
        try:
            text: str = await self._call(
                GET_LOG,
                self._core.read_namespaced_pod_log,
                pod,
                namespace,
                container=container,
                tail_lines=lines,
                limit_bytes=limit_bytes,
            )
        except (kube_errors.NotFoundError, kube_errors.ApiError) as error:
            log.debug("no log for %s/%s: %s", namespace, pod, error)
            return None
        return text

    async def patch_job_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._send(
            PATCH_JOB_STATUS,
            "PATCH",
            f"{_custom_path(namespace, 'backgroundjobs', name)}/status",
            {"status": status},
            content_type=MERGE_PATCH,
        )

    async def delete_job(self, namespace: str, name: str) -> None:
        with contextlib.suppress(kube_errors.NotFoundError):
            await self._send(
                DELETE_JOB,
                "DELETE",
                _custom_path(namespace, "backgroundjobs", name),
                query={"propagationPolicy": "Background"},
            )

    async def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send(CREATE_JOB, "POST", _custom_path(namespace, "backgroundjobs"), body)

    async def patch_queue_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        with contextlib.suppress(kube_errors.NotFoundError):
            await self._send(
                PATCH_QUEUE_STATUS,
                "PATCH",
                f"{_custom_path(namespace, 'jobqueues', name)}/status",
                {"status": status},
                content_type=MERGE_PATCH,
            )

    async def post_event(self, event: EventBody) -> None:
        stamp = _event_time(event.at)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event.name, "namespace": event.namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": event.kind,
                "name": event.object_name,
                "namespace": event.namespace,
                "uid": event.uid,
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": naming.MANAGED_BY},
            "reportingComponent": f"{GROUP}/operator",
            "reportingInstance": self._instance,
            "firstTimestamp": _event_time(event.first_at or event.at),
            "lastTimestamp": stamp,
            "count": event.count,
        }
        await self._send(
            CREATE_EVENT, "POST", f"/api/v1/namespaces/{_quote(event.namespace)}/events", body
        )

    async def patch_event(self, repeat: EventRepeat) -> None:
        body = {
            "count": repeat.count,
            "lastTimestamp": _event_time(repeat.at),
            "message": repeat.message[:1024],
        }
        await self._send(
            PATCH_EVENT,
            "PATCH",
            f"/api/v1/namespaces/{_quote(repeat.namespace)}/events/{_quote(repeat.name)}",
            body,
            content_type=STRATEGIC_MERGE_PATCH,
        )


MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def _json(body: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # an integer past 64 bits in a template, say: the server judges it
        return json.dumps(body).encode()


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _custom_path(namespace: str, plural: str, name: str | None = None) -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{_quote(namespace)}/{plural}"
    return path if name is None else f"{path}/{_quote(name)}"


def _event_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
