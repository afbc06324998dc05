"""Raw BackgroundJob and JobQueue bodies, as the API server serves them, for the tests of the
summaries, the plugin's formatting and the dashboard."""

from __future__ import annotations

import datetime
from typing import Any

from conveyor.core import naming
from tests.unit.factories import T0


def stamp(seconds: float) -> str:
    return naming.format_time(T0 + datetime.timedelta(seconds=seconds))


def job_body(
    name: str,
    phase: str | None = None,
    *,
    queue: str | None = "email",
    namespace: str = "shop",
    created: float = 0,
    history: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
    **status: Any,
) -> dict[str, Any]:
    body_spec: dict[str, Any] = {"template": {"spec": {"containers": [{"name": "worker"}]}}}
    if queue is not None:
        body_spec["queue"] = queue
    body_spec.update(spec or {})
    body_status: dict[str, Any] = dict(status)
    if phase is not None:
        body_status["phase"] = phase
    if history is not None:
        body_status["history"] = history
    return {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "creationTimestamp": stamp(created),
            "labels": labels or {},
        },
        "spec": body_spec,
        "status": body_status,
    }


def attempt(n: int, result: str, *, finished: float, started: float | None = None, **more: Any):
    record = {
        "attempt": n,
        "podName": f"pod-{n}",
        "startTime": stamp(started if started is not None else finished - 2),
        "finishedAt": stamp(finished),
        "result": result,
    }
    record.update(more)
    return record


def queue_body(name: str, namespace: str = "shop", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "JobQueue",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
        "spec": spec,
    }
