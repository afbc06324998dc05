"""Operating jobs on the real cluster: results from the termination log, and the actions a
person asks for with an annotation (promote, cancel, run-now), each taken once."""

from __future__ import annotations

import pytest

from tests.cluster.fixtures import KubeCluster, wait_for
from tests.integration.conftest import Jobs, condition

pytestmark = pytest.mark.cluster


def annotate(jobs: Jobs, name: str, annotation: str, value: str) -> None:
    jobs.patch(name, {"metadata": {"annotations": {annotation: value}}})


def reasons(jobs: Jobs, name: str) -> list[str]:
    return [e.reason for e in jobs.events(name)]


def test_the_termination_message_is_the_jobs_result(jobs: Jobs, kube_cluster: KubeCluster) -> None:
    """The worker writes /dev/termination-log: the kubelet reports it in the pod status, and it
    is on the attempt, in status.result, in `kubectl get -o wide` and `kubectl describe`."""
    jobs.create("report", "printf '{\"rows\": 42}' > /dev/termination-log; echo done")
    status = jobs.wait_phase("report", "Succeeded")
    assert status["result"] == '{"rows": 42}'
    assert status["history"][-1]["output"] == '{"rows": 42}'
    wide = kube_cluster.kubectl("get", "bgj", "report", "-n", jobs.namespace, "-o", "wide").stdout
    assert "RESULT" in wide and '{"rows": 42}' in wide
    described = kube_cluster.kubectl("describe", "bgj", "report", "-n", jobs.namespace).stdout
    result_lines = [line.split() for line in described.splitlines() if "Result:" in line]
    assert ["Result:", '{"rows":', "42}"] in result_lines


def test_cancel_stops_the_running_pod_and_fails_the_job(jobs: Jobs) -> None:
    jobs.create("forever", "sleep 600")
    jobs.wait("forever", lambda s: s.get("phase") == "Running", desc="running")
    wait_for(
        lambda: any(p.status.phase == "Running" for p in jobs.pods("forever")),
        timeout=60,
        desc="the pod running",
    )
    annotate(jobs, "forever", "conveyor.dev/cancel", "c1")
    status = jobs.wait_phase("forever", "Failed", timeout=60)
    assert condition(status, "Failed")["reason"] == "Cancelled"
    assert status["cancelled"] == "c1"
    assert status["history"][-1]["reason"] == "Cancelled"
    wait_for(lambda: jobs.pods("forever") == [], timeout=60, desc="the pod gone")
    assert "Cancelled" in reasons(jobs, "forever")
    assert jobs.status("forever")["attempts"] == 1


def test_promote_starts_a_delayed_job_now(jobs: Jobs) -> None:
    jobs.create("later", "echo ok", delaySeconds=3600)
    jobs.wait("later", lambda s: s.get("phase") == "Delayed", desc="delayed")
    annotate(jobs, "later", "conveyor.dev/promote", "p1")
    status = jobs.wait_phase("later", "Succeeded", timeout=60)
    assert status["promoted"] == "p1"
    assert "Promoted" in reasons(jobs, "later")


def test_promote_of_a_backing_off_job_still_respects_its_paused_queue(jobs: Jobs) -> None:
    """Promoted while its queue is paused: it waits Queued; resumed, it runs."""
    jobs.create_queue("gate")
    jobs.create(
        "flaky",
        'test "$CONVEYOR_ATTEMPT" != 1',
        queue="gate",
        retry={"backoff": {"strategy": "Fixed", "initialDelaySeconds": 3600}},
    )
    jobs.wait("flaky", lambda s: s.get("phase") == "BackingOff", desc="backing off")
    jobs.custom.patch_namespaced_custom_object(
        "conveyor.dev", "v1alpha1", jobs.namespace, "jobqueues", "gate", {"spec": {"paused": True}}
    )
    annotate(jobs, "flaky", "conveyor.dev/promote", "p1")
    jobs.wait("flaky", lambda s: s.get("phase") == "Queued", desc="queued behind the pause")
    assert jobs.status("flaky")["attempts"] == 1
    jobs.custom.patch_namespaced_custom_object(
        "conveyor.dev", "v1alpha1", jobs.namespace, "jobqueues", "gate", {"spec": {"paused": False}}
    )
    status = jobs.wait_phase("flaky", "Succeeded", timeout=60)
    assert status["attempts"] == 2


def test_run_now_creates_one_manual_run(jobs: Jobs) -> None:
    jobs.create("nightly", "echo nightly", schedule="0 3 * * *")
    jobs.wait("nightly", lambda s: s.get("nextScheduleTime"), desc="scheduled")
    annotate(jobs, "nightly", "conveyor.dev/run-now", "n1")
    jobs.wait("nightly", lambda s: s.get("ranNow") == "n1", desc="run-now taken")

    def manual_runs() -> list[dict]:
        listed = jobs.custom.list_namespaced_custom_object(
            "conveyor.dev",
            "v1alpha1",
            jobs.namespace,
            "backgroundjobs",
            label_selector="conveyor.dev/recurring-job=nightly,conveyor.dev/manual=true",
        )
        return listed["items"]

    (run,) = wait_for(manual_runs, timeout=30, desc="the manual run")
    name = run["metadata"]["name"]
    assert name.startswith("nightly-")
    jobs.wait_phase(name, "Succeeded", timeout=60)
    assert "RunNow" in reasons(jobs, "nightly")
    assert len(manual_runs()) == 1
