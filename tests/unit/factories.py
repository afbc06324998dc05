"""Builders shared by the unit tests: jobs, pods and a tiny world that carries out actions.

Nothing here reads a clock: every time is an offset from `T0`.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from conveyor.api.v1alpha1 import BackgroundJobSpec, BackgroundJobStatus, JobDefaults
from conveyor.core import decisions, lifecycle, naming
from conveyor.core.effective import Effective, resolve
from conveyor.core.outcome import PodView

T0 = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)
JOB = "send-1"
NAMESPACE = "shop"
QUEUE = "email"


def at(seconds: float) -> datetime.datetime:
    """`T0` plus `seconds`."""
    return T0 + datetime.timedelta(seconds=seconds)


def spec(**fields: Any) -> BackgroundJobSpec:
    """A BackgroundJobSpec from camelCase fields, with a one-container template by default."""
    body: dict[str, Any] = {
        "queue": QUEUE,
        "template": {"spec": {"containers": [{"name": "worker", "image": "busybox:1.36"}]}},
    }
    body.update(fields)
    return BackgroundJobSpec.model_validate(body)


def job(
    job_spec: BackgroundJobSpec | None = None,
    status: BackgroundJobStatus | dict[str, Any] | None = None,
    *,
    name: str = JOB,
    created_at: datetime.datetime = T0,
    generation: int = 1,
    annotations: Mapping[str, str] | None = None,
) -> decisions.JobView:
    if isinstance(status, dict):
        status = BackgroundJobStatus.model_validate(status)
    return decisions.JobView(
        name=name,
        namespace=NAMESPACE,
        generation=generation,
        created_at=created_at,
        spec=job_spec if job_spec is not None else spec(),
        status=status if status is not None else BackgroundJobStatus(),
        annotations=dict(annotations or {}),
    )


def effective(
    job_spec: BackgroundJobSpec, defaults: JobDefaults | None = None, **classes: int
) -> Effective:
    return resolve(job_spec, defaults, classes)


def around(
    view: decisions.JobView,
    now: datetime.datetime,
    *,
    pods: Mapping[int, PodView] | None = None,
    **fields: Any,
) -> decisions.Surroundings:
    """Surroundings of `view` at `now`; its effective settings resolved without queue defaults."""
    fields.setdefault("effective", effective(view.spec))
    fields.setdefault("random", lambda: 0.5)
    return decisions.Surroundings(now=now, pods=dict(pods or {}), **fields)


def pod(
    attempt: int,
    phase: str = "Pending",
    *,
    created_at: datetime.datetime = T0,
    name: str = JOB,
    **fields: Any,
) -> PodView:
    return PodView(
        name=naming.pod_name(name, attempt),
        attempt=attempt,
        phase=phase,
        created_at=created_at,
        **fields,
    )


def with_status(view: decisions.JobView, status: BackgroundJobStatus) -> decisions.JobView:
    return dataclasses.replace(view, status=status)


def advance(
    view: decisions.JobView, surroundings: decisions.Surroundings
) -> tuple[decisions.JobView, decisions.Decision]:
    """One reconcile: the job as it is after its decided status was written."""
    decision = lifecycle.step(view, surroundings)
    return with_status(view, decision.status), decision


def reasons(decision: decisions.Decision) -> list[str]:
    return [event.reason for event in decision.events]
