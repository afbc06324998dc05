"""The kopf handlers: thin glue from watch events to the controller.

Indices hold compact records of every BackgroundJob, JobQueue, PriorityClass
and Conveyor pod; kopf fills them all before it calls any event handler, so
the controller's first decision after a (re)start sees the whole picture.
The event handlers only say which keys to look at again. No handler here
writes anything through kopf: no finalizers, no progress annotations, no
`last-handled-configuration`, so kopf adds no API writes of its own.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

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
from conveyor.runtime.records import JobRecord, PodRecord, QueueRecord

log = logging.getLogger(__name__)

OUR_PODS = {naming.LABEL_JOB: kopf.PRESENT}


@kopf.index(GROUP, VERSION, "backgroundjobs")
async def jobs(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    """One index for every lookup by job: kopf runs each index per event, so one is cheapest."""
    raw = _raw(body)
    record = JobRecord.from_body(raw)
    entries: dict[tuple[str, str | None, str], Any] = {
        (JOB, namespace, name): record,
        (IN_QUEUE, namespace, record.queue): name,
    }
    for dep in (raw.get("spec") or {}).get("dependsOn") or []:
        if isinstance(dep, str):
            entries[(DEPENDENT_OF, namespace, dep)] = name
    parent = ((raw.get("metadata") or {}).get("labels") or {}).get(naming.LABEL_PARENT)
    if parent:
        entries[(RUN_OF, namespace, parent)] = name
    return entries


@kopf.index("v1", "pods", labels=OUR_PODS)
async def pods(body: kopf.Body, **_: Any) -> Any:
    record = PodRecord.from_body(_raw(body))
    if record is None:
        return None
    return {
        (OF_JOB, record.namespace, record.job): record,
        (OF_QUEUE, record.namespace, record.queue): record,
    }


@kopf.index(GROUP, VERSION, "jobqueues")
async def queues(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    return {(namespace, name): QueueRecord.from_body(_raw(body))}


@kopf.index("scheduling.k8s.io", "v1", "priorityclasses")
async def priority_classes(body: kopf.Body, name: str, **_: Any) -> Any:
    return {name: int(body.get("value") or 0)}


def _controller(memo: Any, kwargs: dict[str, Any]) -> Controller:
    controller: Controller = memo["controller"]
    if controller.indices is None:
        controller.bind(
            Indices(
                jobs=kwargs["jobs"],
                pods=kwargs["pods"],
                queues=kwargs["queues"],
                priority_classes=kwargs["priority_classes"],
            )
        )
    return controller


@kopf.on.event(GROUP, VERSION, "backgroundjobs")
async def job_event(
    event: kopf.RawEvent, namespace: str | None, name: str, memo: Any, **kwargs: Any
) -> None:
    deleted = event.get("type") == "DELETED"
    _controller(memo, kwargs).job_changed(namespace or "", name, event["object"], deleted=deleted)


@kopf.on.event("v1", "pods", labels=OUR_PODS)
async def pod_event(event: kopf.RawEvent, memo: Any, **kwargs: Any) -> None:
    record = PodRecord.from_body(event["object"])
    _controller(memo, kwargs).pod_changed(record, deleted=event.get("type") == "DELETED")


@kopf.on.event(GROUP, VERSION, "jobqueues")
async def queue_event(namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    _controller(memo, kwargs).queue_changed(namespace or "", name)


def _raw(body: kopf.Body) -> Any:
    """The parsed JSON under kopf's read-only view, without copying it."""
    return getattr(body, "_src", body)
