"""The reads and writes of `kubectl conveyor` and the dashboard, over the official client.

Everything comes back as the API server's JSON (no model classes: they are
slow and lossy for custom resources), and every refusal as `ApiError` with
the server's own message, worded as kubectl words it. Actions are the
annotations the operator takes once (`core.actions`): a client checks first
that the action applies (the same rule the operator's events state) and
then writes a fresh token.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from conveyor.api.v1alpha1 import GROUP, VERSION
from conveyor.core import actions, naming, summary

JOBS = "backgroundjobs"
QUEUES = "jobqueues"
PAGE = 500
LOG_TAIL_LINES = 20


class ApiError(Exception):
    """The API server refused, or the object is not there; `str()` reads like kubectl's."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotApplicableError(Exception):
    """The action does not apply to the job as it is now; the message says why."""


def _from(error: ApiException) -> ApiError:
    reason = error.reason or "Error"
    try:
        body = json.loads(error.body or "")
        message = body.get("message") or reason
        reason = body.get("reason") or reason
    except (TypeError, ValueError, AttributeError):
        message = str(error.body or reason)
    return ApiError(f"Error from server ({reason}): {message}", error.status)


@dataclass(frozen=True)
class Asked:
    """An action asked for: which job, and the annotation value written."""

    namespace: str
    name: str
    action: actions.Action
    value: str


class Conveyor:
    """The calls, on one ApiClient (the caller's identity)."""

    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.client = client
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.core = kubernetes.client.CoreV1Api(client)

    # ------------------------------------------------------------ reads

    def _json(self, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            response = fn(*args, _preload_content=False, **kwargs)
        except ApiException as error:
            raise _from(error) from error
        try:
            data: dict[str, Any] = json.loads(response.data)
        finally:
            response.release_conn()
        return data

    def list_all(
        self,
        plural: str,
        namespace: str | None,
        *,
        field_selector: str | None = None,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every object of a Conveyor resource, page by page (one namespace, or all: None)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE}
            if token:
                kwargs["_continue"] = token
            if field_selector:
                kwargs["field_selector"] = field_selector
            if label_selector:
                kwargs["label_selector"] = label_selector
            if namespace is None:
                page = self._json(
                    self.custom.list_cluster_custom_object, GROUP, VERSION, plural, **kwargs
                )
            else:
                page = self._json(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    **kwargs,
                )
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def jobs(
        self,
        namespace: str | None,
        *,
        queue: str | None = None,
        phase: str | None = None,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """BackgroundJobs, filtered by the API server (spec.queue and status.phase are
        selectable fields of the CRD)."""
        selectors = []
        if queue is not None:
            selectors.append(f"spec.queue={queue}")
        if phase is not None:
            selectors.append(f"status.phase={phase}")
        return self.list_all(
            JOBS,
            namespace,
            field_selector=",".join(selectors) or None,
            label_selector=label_selector,
        )

    def queues(self, namespace: str | None) -> list[dict[str, Any]]:
        return self.list_all(QUEUES, namespace)

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json(
            self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, JOBS, name
        )

    def queue(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json(
            self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, QUEUES, name
        )

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The events about one BackgroundJob, oldest first."""
        listed = self._json(
            self.core.list_namespaced_event,
            namespace,
            field_selector=f"involvedObject.name={name},involvedObject.kind=BackgroundJob",
        )
        items = listed.get("items") or []
        return sorted(
            items,
            key=lambda e: (
                e.get("lastTimestamp") or e.get("eventTime") or "",
                (e.get("metadata") or {}).get("name") or "",
            ),
        )

    def pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        listed = self._json(
            self.core.list_namespaced_pod, namespace, label_selector=f"{naming.LABEL_JOB}={job}"
        )
        return list(listed.get("items") or [])

    def log_tail(self, namespace: str, pod: str, lines: int = LOG_TAIL_LINES) -> str | None:
        """The last lines of a pod's worker container; None if it is gone or has none."""
        try:
            text: str = self.core.read_namespaced_pod_log(
                pod, namespace, tail_lines=lines, limit_bytes=64 * 1024
            )
        except ApiException:
            return None
        return text

    def log_tails(self, namespace: str, job: str) -> dict[int, str]:
        """The log tail of each attempt whose pod still exists, by attempt."""
        tails = {}
        for pod in self.pods(namespace, job):
            meta = pod.get("metadata") or {}
            try:
                attempt = int((meta.get("labels") or {}).get(naming.LABEL_ATTEMPT, ""))
            except ValueError:
                continue
            tail = self.log_tail(namespace, meta.get("name", ""))
            if tail:
                tails[attempt] = tail
        return tails

    def follow_log(
        self, namespace: str, pod: str, *, follow: bool, tail: int | None = None
    ) -> Iterator[bytes]:
        """A pod's log, as it comes (to its end, or while it runs with follow)."""
        kwargs: dict[str, Any] = {"follow": follow, "_preload_content": False}
        if tail is not None:
            kwargs["tail_lines"] = tail
        try:
            response: Any = self.core.read_namespaced_pod_log(pod, namespace, **kwargs)
        except ApiException as error:
            raise _from(error) from error
        try:
            yield from response.stream(4096, decode_content=True)
        finally:
            response.release_conn()

    # ------------------------------------------------------------ writes

    def ask(
        self,
        action: actions.Action,
        namespace: str,
        name: str,
        *,
        now: datetime.datetime,
        job: dict[str, Any] | None = None,
    ) -> Asked:
        """Ask for `action` on a job: raises NotApplicableError (saying why) if it does not apply
        to the job as it is now, else writes the annotation."""
        body = job if job is not None else self.job(namespace, name)
        row = summary.job_row(body)
        refused = actions.refusal(action, row.phase, recurring=row.recurring)
        if refused is not None:
            raise NotApplicableError(f"backgroundjob {namespace}/{name}: {refused}")
        value = actions.token(now)
        self._json(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            JOBS,
            name,
            action.patch(value),
        )
        return Asked(namespace, name, action, value)

    def set_paused(self, namespace: str, name: str, paused: bool) -> dict[str, Any]:
        return self._json(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            QUEUES,
            name,
            actions.pause_patch(paused),
        )
