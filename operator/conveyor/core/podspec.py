"""The pod of one attempt, rendered from the job: a pure function of its inputs.

The pod is named and labelled from (job, attempt), owned by the job (so the
garbage collector deletes it with the job), and given `restartPolicy: Never`
(a failed attempt is retried as a new pod, with backoff, by us). The per-attempt
deadline becomes the pod's own `activeDeadlineSeconds`, so the kubelet stops
the attempt on time even while the operator is down. The worker learns which
attempt it is from its environment, so it can be idempotent.
"""

from __future__ import annotations

import datetime
from typing import Any

from conveyor.core import naming
from conveyor.core.effective import Effective
from conveyor.core.lifecycle import JobView


def render_pod(
    job: JobView,
    *,
    uid: str,
    attempt: int,
    effective: Effective,
    now: datetime.datetime,
) -> dict[str, Any]:
    template = job.spec.template
    meta_in: dict[str, Any] = dict(template.metadata or {})
    spec: dict[str, Any] = template.spec.model_dump(by_alias=True, exclude_none=True)
    queue = job.spec.queue or naming.NO_QUEUE
    name = naming.pod_name(job.name, attempt)

    labels = {str(k): str(v) for k, v in (meta_in.get("labels") or {}).items()}
    labels.update(
        {
            naming.LABEL_JOB: job.name,
            naming.LABEL_QUEUE: queue,
            naming.LABEL_ATTEMPT: str(attempt),
            naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
        }
    )
    annotations = {str(k): str(v) for k, v in (meta_in.get("annotations") or {}).items()}
    annotations[naming.ANNOTATION_CREATED_AT] = naming.format_time(now)

    env = [
        {"name": "CONVEYOR_JOB_NAME", "value": job.name},
        {"name": "CONVEYOR_NAMESPACE", "value": job.namespace},
        {"name": "CONVEYOR_ATTEMPT", "value": str(attempt)},
        {"name": "CONVEYOR_MAX_ATTEMPTS", "value": str(effective.max_attempts)},
        {"name": "CONVEYOR_QUEUE", "value": queue},
    ]
    ours = {item["name"] for item in env}
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        theirs = [e for e in container.get("env") or [] if e.get("name") not in ours]
        container["env"] = [*theirs, *env]

    spec["restartPolicy"] = "Never"
    if effective.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = effective.active_deadline_seconds
    if effective.priority_class_name is not None:
        spec["priorityClassName"] = effective.priority_class_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": job.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [naming.owned_by_job(job.name, uid)],
        },
        "spec": spec,
    }
