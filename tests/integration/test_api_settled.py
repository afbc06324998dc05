"""The API as v1beta1 will have it, on the real API server: the two deadlines and the
deprecated name, conditions the CRD's schema requires whole, recurring jobs that read like
CronJobs, and repeated events counted into one Event."""

from __future__ import annotations

import json

import pytest

from tests.cluster.fixtures import KubeCluster, table, wait_for
from tests.cluster.operator import apply_crds
from tests.integration.conftest import Jobs, condition

pytestmark = pytest.mark.cluster

NO_BACKOFF = {"strategy": "Fixed", "initialDelaySeconds": 0}


@pytest.fixture(autouse=True)
def current_crds(kube_cluster: KubeCluster) -> None:
    """These tests use fields an older crds/ lacks (the API server would prune them): apply
    this checkout's CRDs before each, as another session on a shared cluster may have
    applied its own since this session began."""
    apply_crds(kube_cluster.kubectl_path, kube_cluster.kubeconfig)


def test_the_job_deadline_stops_the_whole_job(jobs: Jobs) -> None:
    """jobDeadlineSeconds counts from the first attempt's start across retries: the running
    attempt's pod is deleted and the job fails DeadlineExceeded with attempts left."""
    jobs.create(
        "bounded",
        "sleep 60",
        jobDeadlineSeconds=4,
        retry={"maxAttempts": 5, "backoff": NO_BACKOFF},
    )
    assert jobs.get("bounded")["spec"].get("jobDeadlineSeconds") == 4, (
        "the API server pruned spec.jobDeadlineSeconds: CRDs without it were applied (by "
        "another session on this cluster?) after this test applied its own"
    )
    status = jobs.wait_phase("bounded", "Failed", timeout=60)
    failed = condition(status, "Failed")
    assert failed["reason"] == "DeadlineExceeded" and "jobDeadlineSeconds" in failed["message"]
    assert status["attempts"] == 1 and status["lastFailure"]["reason"] == "DeadlineExceeded"
    wait_for(lambda: not jobs.pods("bounded"), timeout=60, desc="bounded's pod deleted")


def test_the_deprecated_deadline_name_still_works_and_says_so(
    jobs: Jobs, kube_cluster: KubeCluster
) -> None:
    """activeDeadlineSeconds is honoured as attemptDeadlineSeconds (the pod's own deadline),
    with a Deprecated condition and a Warning event naming the new field."""
    jobs.create("old-name", "sleep 60", activeDeadlineSeconds=2, retry={"maxAttempts": 1})
    status = jobs.wait_phase("old-name", "Failed", timeout=60)
    assert status["lastFailure"]["reason"] == "DeadlineExceeded"
    deprecated = condition(status, "Deprecated")
    assert deprecated["status"] == "True" and "attemptDeadlineSeconds" in deprecated["message"]
    (pod,) = jobs.pods("old-name")
    assert pod.spec.active_deadline_seconds == 2
    warnings = wait_for(
        lambda: [e for e in jobs.events("old-name") if e.reason == "DeprecatedField"],
        timeout=30,
        desc="the DeprecatedField event",
    )
    assert warnings[0].type == "Warning"


def test_conditions_are_whole_on_the_real_server(jobs: Jobs) -> None:
    """The CRD requires reason, message and lastTransitionTime of every condition, so a job
    that got through its life wrote them all (the API server would have refused it)."""
    jobs.create("whole", "exit 3", retry={"maxAttempts": 2, "backoff": NO_BACKOFF})
    status = jobs.wait_phase("whole", "Failed", timeout=60)
    assert {c["type"] for c in status["conditions"]} >= {"Admitted", "Failed"}
    for cond in status["conditions"]:
        assert cond["reason"] and cond["message"] and cond["lastTransitionTime"], cond


def test_a_job_failing_again_and_again_leaves_counted_events(jobs: Jobs) -> None:
    """Twelve failed attempts: at most ten AttemptFailed Events (the later ones combined),
    their counts adding up to twelve, as client-go's recorder would have it."""
    jobs.create("flaky", "exit 1", retry={"maxAttempts": 12, "backoff": NO_BACKOFF})
    jobs.wait_phase("flaky", "Failed", timeout=180)

    def counted() -> list:
        failed = [e for e in jobs.events("flaky") if e.reason == "AttemptFailed"]
        return failed if sum(e.count or 1 for e in failed) == 11 else []

    # attempts 1-11 back off (AttemptFailed); the twelfth fails the job (Failed)
    failed = wait_for(counted, timeout=60, desc="AttemptFailed events counting 11 failures")
    assert len(failed) <= 10
    combined = [e for e in failed if e.message.startswith("(combined from similar events)")]
    assert combined and combined[0].count >= 2
    assert combined[0].last_timestamp >= combined[0].first_timestamp


def test_a_recurring_job_reads_like_a_cronjob(jobs: Jobs, kube_cluster: KubeCluster) -> None:
    """Scheduled between runs (not Pending), Running while one is active; kubectl get shows
    its schedule, suspend, active runs and last schedule."""
    jobs.create("hourly", "true", schedule="0 * * * *")
    status = jobs.wait(
        "hourly", lambda s: s.get("phase") == "Scheduled", timeout=60, desc="Scheduled"
    )
    assert status["activeCount"] == 0 and status["nextScheduleTime"]

    jobs.create("ticking", "sleep 3", every="2s", concurrencyPolicy="Forbid")
    jobs.wait(
        "ticking",
        lambda s: s.get("phase") == "Running" and s.get("activeCount") == 1,
        timeout=60,
        desc="Running with one active run",
    )
    out = kube_cluster.kubectl("get", "bgj", "-n", jobs.namespace, "hourly", "ticking").stdout
    rows = {row["NAME"]: row for row in table(out)}
    assert rows["hourly"]["SCHEDULE"] == "0 * * * *"
    assert rows["hourly"]["PHASE"] == "Scheduled"
    assert rows["hourly"]["SUSPEND"] == "false"
    assert rows["hourly"]["ACTIVE"] == "0"
    assert rows["ticking"]["LAST SCHEDULE"] not in ("", "<none>")
    assert rows["ticking"]["PHASE"] == "Running"
    wide = json.loads(
        kube_cluster.kubectl("get", "bgj", "-n", jobs.namespace, "ticking", "-o", "json").stdout
    )
    assert wide["status"]["lastScheduleTime"]
