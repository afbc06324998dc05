"""The pod of one attempt, rendered from the job: a pure function of its inputs.

The pod is named and labelled from (job, attempt), owned by the job (so the
garbage collector deletes it with the job), and given `restartPolicy: Never`
(a failed attempt is retried as a new pod, with backoff, by us). The per-attempt
deadline becomes the pod's own `activeDeadlineSeconds`, so the kubelet stops
the attempt on time even while the operator is down. The worker learns which
attempt it is from its environment, so it can be idempotent.

The template is the user's, with fields of any type the CRD let through.
What this module must read (labels, annotations, each container's env) and
is of the wrong type raises `TemplateError` naming the field, which the
job gets as its InvalidSpec condition; anything else is left for the API
server to judge.
"""

from __future__ import annotations

import datetime
from typing import Any

from conveyor.core import naming
from conveyor.core.decisions import JobView
from conveyor.core.effective import Effective


class TemplateError(ValueError):
    """A field of the pod template that cannot be read as Kubernetes defines it."""


def render_pod(
    job: JobView,
    *,
    uid: str,
    attempt: int,
    effective: Effective,
    now: datetime.datetime,
    operator: str = "",
) -> dict[str, Any]:
    template = job.spec.template
    meta_in: dict[str, Any] = dict(template.metadata or {})
    spec: dict[str, Any] = template.spec.model_dump(by_alias=True, exclude_none=True)
    queue = job.spec.queue or naming.NO_QUEUE
    name = naming.pod_name(job.name, attempt)

    labels = {str(k): str(v) for k, v in _mapping(meta_in, "labels").items()}
    labels.update(
        {
            naming.LABEL_JOB: job.name,
            naming.LABEL_QUEUE: queue,
            naming.LABEL_ATTEMPT: str(attempt),
            naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
        }
    )
    annotations = {str(k): str(v) for k, v in _mapping(meta_in, "annotations").items()}
    annotations[naming.ANNOTATION_CREATED_AT] = naming.format_time(now)
    if operator:
        annotations[naming.ANNOTATION_OPERATOR] = operator

    env = [
        {"name": "CONVEYOR_JOB_NAME", "value": job.name},
        {"name": "CONVEYOR_NAMESPACE", "value": job.namespace},
        {"name": "CONVEYOR_ATTEMPT", "value": str(attempt)},
        {"name": "CONVEYOR_MAX_ATTEMPTS", "value": str(effective.max_attempts)},
        {"name": "CONVEYOR_QUEUE", "value": queue},
    ]
    ours = {item["name"] for item in env}
    for field in ("initContainers", "containers"):
        containers = spec.get(field) or []
        if not isinstance(containers, list):
            raise TemplateError(f"spec.template.spec.{field} must be a list of containers")
        for index, container in enumerate(containers):
            where = f"spec.template.spec.{field}[{index}]"
            if not isinstance(container, dict):
                raise TemplateError(f"{where} must be a container (an object)")
            theirs = container.get("env") or []
            if not isinstance(theirs, list) or not all(isinstance(e, dict) for e in theirs):
                raise TemplateError(f"{where}.env must be a list of {{name, value}} objects")
            container["env"] = [*(e for e in theirs if e.get("name") not in ours), *env]

    spec["restartPolicy"] = "Never"
    if effective.attempt_deadline_seconds is not None:
        # The pod's own deadline is per pod, and a pod is one attempt.
        spec["activeDeadlineSeconds"] = effective.attempt_deadline_seconds
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


def _mapping(meta: dict[str, Any], field: str) -> dict[Any, Any]:
    value = meta.get(field) or {}
    if not isinstance(value, dict):
        raise TemplateError(f"spec.template.metadata.{field} must be a map of strings")
    return value
