"""The objects each phase submits: the same pod (busybox `true`, on a fake node)
wrapped as a BackgroundJob, a batch/v1 Job, or a bare pod."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from bench.cluster import pod_placement

IMAGE = "busybox:1.36"
FAIL_ANNOTATION = "bench.conveyor.dev/fail"
RUN_FOR_ANNOTATION = "bench.conveyor.dev/run-for"
GROUP_PATH = "/apis/conveyor.dev/v1alpha1"


def job_name(i: int) -> str:
    return f"j-{i:05d}"


def should_fail(i: int, fail_percent: float) -> bool:
    if fail_percent <= 0:
        return False
    every = max(1, round(100 / fail_percent))
    return i % every == every - 1


_direct_nodes: itertools.cycle[str] | None = None


def bind_directly(nodes: list[str]) -> None:
    """Give every pod template a spec.nodeName (round robin over these fake
    nodes), so that pods skip the scheduler (--bypass-scheduler)."""
    global _direct_nodes  # noqa: PLW0603 - one setting for the whole run
    _direct_nodes = itertools.cycle(nodes) if nodes else None


def pod_template(*, fail: bool, run_for: str | None) -> dict[str, Any]:
    annotations = {}
    if fail:
        annotations[FAIL_ANNOTATION] = "1"
    if run_for:
        annotations[RUN_FOR_ANNOTATION] = run_for
    placement = pod_placement()
    if _direct_nodes is not None:
        placement["nodeName"] = next(_direct_nodes)
    return {
        "metadata": {"labels": {"app": "conveyor-bench"}, "annotations": annotations},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            **placement,
            "containers": [
                {
                    "name": "worker",
                    "image": IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["true"],
                }
            ],
        },
    }


def queue(name: str, namespace: str, concurrency: int) -> dict[str, Any]:
    return {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "JobQueue",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"concurrency": concurrency},
    }


def background_job(
    name: str, namespace: str, queue_name: str | None, *, fail: bool, run_for: str | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": pod_template(fail=fail, run_for=run_for)}
    if queue_name:
        spec["queue"] = queue_name
    if fail:
        spec["retry"] = {"maxAttempts": 1}
    return {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def batch_job(name: str, namespace: str, *, fail: bool, run_for: str | None) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 0,
            "template": pod_template(fail=fail, run_for=run_for),
        },
    }


def kueue_job(
    name: str, namespace: str, queue_name: str, *, fail: bool, run_for: str | None
) -> dict[str, Any]:
    """A batch/v1 Job as Kueue takes it without its webhook: suspended, with the queue label."""
    job = batch_job(name, namespace, fail=fail, run_for=run_for)
    job["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": queue_name}
    job["spec"]["suspend"] = True
    return job


def bare_pod(name: str, namespace: str, *, fail: bool, run_for: str | None) -> dict[str, Any]:
    template = copy.deepcopy(pod_template(fail=fail, run_for=run_for))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, **template["metadata"]},
        "spec": template["spec"],
    }


def label(obj: dict[str, Any], key: str, value: str) -> None:
    """Label the object and the pods made from its template."""
    obj["metadata"].setdefault("labels", {})[key] = value
    template = obj["spec"]["template"]["metadata"]
    template["labels"] = {**template.get("labels", {}), key: value}


# ------------------------------------------------------------ "finished?" per kind


def bgj_outcome(obj: dict[str, Any]) -> str | None:
    phase = (obj.get("status") or {}).get("phase")
    return phase if phase in ("Succeeded", "Failed") else None


def job_outcome(obj: dict[str, Any]) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "Succeeded"
        if cond.get("type") == "Failed":
            return "Failed"
    return None


def pod_outcome(obj: dict[str, Any]) -> str | None:
    phase = (obj.get("status") or {}).get("phase")
    return phase if phase in ("Succeeded", "Failed") else None


def owner_name(obj: dict[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("name"))
    return None
