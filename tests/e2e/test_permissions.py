"""The operator's less common API calls, each through the chart's RBAC.

Most verbs of the chart's Role are used by every job (watch, pods create,
status patch, events create, pods/log get). These tests drive the paths that
use the others, so that a verb missing from the chart fails here:
backgroundjobs create (the runs of a recurring job), backgroundjobs delete
(history limits, ttlSecondsAfterFinished) and pods delete (a pod that never
started).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.fixtures import wait_for
from tests.e2e.conftest import JOB_IMAGE, Release

pytestmark = pytest.mark.cluster


def apply_job(
    kubectl: Callable[..., str],
    namespace: str,
    name: str,
    spec: dict[str, Any],
    *,
    image: str = JOB_IMAGE,
    script: str = "echo ok",
) -> None:
    body = {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "worker",
                            "image": image,
                            "imagePullPolicy": "Never"
                            if "does-not-exist" in image
                            else "IfNotPresent",
                            "command": ["sh", "-c", script],
                        }
                    ],
                }
            },
            **spec,
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


def test_recurring_job_creates_runs_and_prunes_old_ones(
    release: Release, kubectl: Callable[..., str]
) -> None:
    """`every: 2s` creates one child BackgroundJob per run (create); with
    successfulRunsHistoryLimit 1 the older succeeded runs are deleted (delete)."""
    ns = release.watched[0]
    apply_job(
        kubectl,
        ns,
        "tick",
        {"every": "2s", "concurrencyPolicy": "Forbid", "successfulRunsHistoryLimit": 1},
    )
    selector = "conveyor.dev/recurring-job=tick"

    def runs() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(
            kubectl("get", "bgj", "-n", ns, "-l", selector, "-o", "json")
        )["items"]
        return items

    seen: set[str] = set()

    def three_runs_seen() -> bool:
        seen.update(r["metadata"]["name"] for r in runs())
        return len(seen) >= 3

    wait_for(three_runs_seen, timeout=90, interval=0.5, desc="three runs of tick created")
    assert all(name.startswith("tick-") for name in seen)

    def pruned() -> bool:
        succeeded = [r for r in runs() if (r.get("status") or {}).get("phase") == "Succeeded"]
        return len(succeeded) <= 1

    wait_for(pruned, timeout=60, interval=0.5, desc="succeeded runs of tick pruned to 1")
    status = json.loads(kubectl("get", "bgj", "tick", "-n", ns, "-o", "json"))["status"]
    assert status.get("lastScheduleTime")
    kubectl("delete", "bgj", "tick", "-n", ns)


def test_ttl_deletes_the_finished_job(release: Release, kubectl: Callable[..., str]) -> None:
    """ttlSecondsAfterFinished: the operator deletes the job once it is that old (delete)."""
    ns = release.watched[0]
    apply_job(kubectl, ns, "short-lived", {"ttlSecondsAfterFinished": 8})
    kubectl(
        "wait",
        "--for=condition=Succeeded",
        "bgj/short-lived",
        "-n",
        ns,
        "--timeout=90s",
        timeout=120,
    )
    kubectl("wait", "--for=delete", "bgj/short-lived", "-n", ns, "--timeout=60s", timeout=90)


def test_pod_that_cannot_start_fails_its_attempt_and_is_deleted(
    release: Release, kubectl: Callable[..., str]
) -> None:
    """An image that is not there: after startTimeoutSeconds the attempt fails with the
    kubelet's reason and the operator deletes the pod (pods delete)."""
    ns = release.watched[0]
    apply_job(
        kubectl,
        ns,
        "no-image",
        {"startTimeoutSeconds": 3, "retry": {"maxAttempts": 1}},
        image="conveyor.local/does-not-exist:1.0",
    )
    kubectl(
        "wait", "--for=condition=Failed", "bgj/no-image", "-n", ns, "--timeout=90s", timeout=120
    )
    status = json.loads(kubectl("get", "bgj", "no-image", "-n", ns, "-o", "json"))["status"]
    assert status["lastFailure"]["reason"] in {
        "ErrImageNeverPull",
        "ImagePullBackOff",
        "ErrImagePull",
    }, status["lastFailure"]
    kubectl("wait", "--for=delete", "pod/no-image-1", "-n", ns, "--timeout=60s", timeout=90)
