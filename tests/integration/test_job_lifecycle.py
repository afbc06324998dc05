"""A BackgroundJob's life on the real cluster: attempts, retries, failures, TTL, suspend, replay.

Every test applies jobs the way a user would and then waits on the job's
status, never on a fixed sleep. Backoff is checked against the times the
operator recorded in the job's history.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.cluster.fixtures import KubeCluster, wait_for
from tests.integration.conftest import Jobs, OperatorProcess, condition, parse_time

pytestmark = pytest.mark.cluster

FAIL_ON_FIRST = (
    'echo "attempt $CONVEYOR_ATTEMPT of $CONVEYOR_MAX_ATTEMPTS"; test "$CONVEYOR_ATTEMPT" != 1'
)


def test_a_job_runs_once_and_succeeds(jobs: Jobs, kube_cluster: KubeCluster) -> None:
    """One pod named <job>-1, owned and labelled, with the attempt in its environment."""
    jobs.create(
        "hello", 'echo "job=$CONVEYOR_JOB_NAME attempt=$CONVEYOR_ATTEMPT queue=$CONVEYOR_QUEUE"'
    )
    status = jobs.wait_phase("hello", "Succeeded")
    assert status["attempts"] == 1
    assert status["attemptsSummary"] == "1/5"
    assert status["podName"] == "hello-1"
    assert condition(status, "Succeeded")["status"] == "True"
    assert status["completionTime"] and status["startTime"]
    assert status["observedGeneration"] == 1

    (pod,) = jobs.pods("hello")
    assert pod.metadata.name == "hello-1"
    assert pod.spec.restart_policy == "Never"
    assert pod.metadata.labels["conveyor.dev/attempt"] == "1"
    owner = pod.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("BackgroundJob", "hello", True)
    logs = jobs.core.read_namespaced_pod_log("hello-1", jobs.namespace)
    assert "job=hello attempt=1 queue=" in logs

    kube_cluster.kubectl(
        "wait", "-n", jobs.namespace, "--for=condition=Succeeded", "bgj/hello", "--timeout=10s"
    )
    reasons = [e.reason for e in jobs.events("hello")]
    assert "Started" in reasons and "Succeeded" in reasons


def test_a_failed_attempt_is_retried_after_its_backoff(jobs: Jobs) -> None:
    """Attempt 1 fails, attempt 2 starts after the fixed 2s backoff and succeeds."""
    jobs.create(
        "flaky",
        FAIL_ON_FIRST,
        retry={"maxAttempts": 3, "backoff": {"strategy": "Fixed", "initialDelaySeconds": 2}},
    )
    status = jobs.wait_phase("flaky", "Succeeded")
    assert status["attempts"] == 2
    assert status["failures"] == 1
    assert status["attemptsSummary"] == "2/3"
    first, second = status["history"]
    assert first["result"] == "Failed" and first["exitCode"] == 1
    assert second["result"] == "Succeeded"
    waited = parse_time(second["startTime"]) - parse_time(first["finishedAt"])
    # finishedAt has one-second precision (the kubelet's); the backoff is 2s.
    assert 1.0 <= waited <= 4.5, f"retry started {waited:.2f}s after the failure"
    assert status["lastFailure"]["attempt"] == 1
    assert "attempt 1 of 3" in status["lastFailure"]["logTail"]
    assert [p.metadata.name for p in jobs.pods("flaky")] == ["flaky-1", "flaky-2"]


def test_exhausted_attempts_fail_the_job_with_exit_code_and_log_tail(
    jobs: Jobs, kube_cluster: KubeCluster
) -> None:
    """Every attempt exits 7: the job fails after maxAttempts with the evidence recorded."""
    jobs.create(
        "doomed",
        'for i in $(seq 1 50); do echo "line $i"; done; echo "boom on $CONVEYOR_ATTEMPT"; exit 7',
        retry={"maxAttempts": 2, "backoff": {"strategy": "Fixed", "initialDelaySeconds": 1}},
    )
    status = jobs.wait_phase("doomed", "Failed")
    failed = condition(status, "Failed")
    assert failed["status"] == "True" and failed["reason"] == "AttemptsExhausted"
    assert status["attempts"] == 2 and status["failures"] == 2
    last = status["lastFailure"]
    assert last["attempt"] == 2 and last["exitCode"] == 7 and last["reason"] == "Error"
    assert "boom on 2" in last["logTail"]
    assert "line 50" in last["logTail"] and "line 1\n" not in last["logTail"]
    kube_cluster.kubectl(
        "wait", "-n", jobs.namespace, "--for=condition=Failed", "bgj/doomed", "--timeout=10s"
    )
    printed = kube_cluster.kubectl("get", "bgj", "-n", jobs.namespace, "doomed").stdout
    assert "Failed" in printed and "2/2" in printed and "Error" in printed


def test_a_non_retryable_exit_code_fails_at_once(jobs: Jobs) -> None:
    """Exit code 2 is the job's own verdict: no second attempt."""
    jobs.create("bad-input", "exit 2", retry={"maxAttempts": 5, "nonRetryableExitCodes": [2]})
    status = jobs.wait_phase("bad-input", "Failed")
    assert status["attempts"] == 1
    assert condition(status, "Failed")["reason"] == "NonRetryableExitCode"
    assert status["lastFailure"]["exitCode"] == 2


def test_an_attempt_past_its_deadline_is_stopped(jobs: Jobs) -> None:
    """attemptDeadlineSeconds stops the attempt; it is recorded as DeadlineExceeded."""
    jobs.create("slow", "sleep 60", attemptDeadlineSeconds=2, retry={"maxAttempts": 1})
    status = jobs.wait_phase("slow", "Failed", timeout=60)
    assert status["lastFailure"]["reason"] == "DeadlineExceeded"


def test_an_image_that_cannot_be_pulled_fails_its_attempt(jobs: Jobs) -> None:
    """A pod that never starts fails its attempt after the start timeout, with the pull error."""
    jobs.create(
        "no-image",
        "true",
        image="conveyor.local/does-not-exist:1.0",
        startTimeoutSeconds=3,
        retry={"maxAttempts": 1},
    )
    status = jobs.wait_phase("no-image", "Failed", timeout=60)
    assert status["lastFailure"]["reason"] in {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
    }
    assert "did not start within 3s" in status["lastFailure"]["message"]


def test_a_pod_deleted_from_outside_is_retried_without_counting(jobs: Jobs) -> None:
    """Someone deletes the running pod: the next attempt runs; maxAttempts is not charged."""
    jobs.create(
        "victim",
        'if [ "$CONVEYOR_ATTEMPT" = 1 ]; then sleep 60; fi; echo done',
        retry={"maxAttempts": 1},
    )
    jobs.wait("victim", lambda s: s.get("phase") == "Running", desc="running")
    wait_for(
        lambda: jobs.core.read_namespaced_pod("victim-1", jobs.namespace).status.phase == "Running",
        timeout=60,
        desc="pod victim-1 running",
    )
    jobs.core.delete_namespaced_pod("victim-1", jobs.namespace, grace_period_seconds=0)
    status = jobs.wait_phase("victim", "Succeeded", timeout=60)
    assert status["attempts"] == 2
    assert status["failures"] == 0 and status["disruptions"] == 1
    assert status["history"][0]["result"] == "Disrupted"


def test_ttl_deletes_the_finished_job_and_its_pods(jobs: Jobs) -> None:
    """ttlSecondsAfterFinished removes the job after it finished; its pods go with it.

    The TTL counts from the pod's finish, and on a loaded machine the outcome can be
    noticed seconds later: 10 s leaves the test time to see the job Succeeded first.
    """
    jobs.create("short-lived", "true", ttlSecondsAfterFinished=10)
    status = jobs.wait_phase("short-lived", "Succeeded")
    finished = parse_time(status["completionTime"])

    def gone() -> bool:
        try:
            jobs.get("short-lived")
        except Exception as error:
            return getattr(error, "status", None) == 404
        return False

    wait_for(gone, timeout=30, desc="the job deleted by its TTL")
    assert time.time() >= finished + 10 - 1.0
    wait_for(lambda: jobs.pods("short-lived") == [], timeout=60, desc="its pods garbage-collected")


def test_suspend_holds_and_resume_continues(jobs: Jobs) -> None:
    """A suspended job starts nothing until spec.suspend is false again."""
    jobs.create("held", "echo resumed", suspend=True)
    status = jobs.wait(
        "held", lambda s: (c := condition(s, "Suspended")) is not None and c["status"] == "True"
    )
    assert status["attempts"] == 0
    assert jobs.pods("held") == []
    jobs.patch("held", {"spec": {"suspend": False}})
    status = jobs.wait_phase("held", "Succeeded")
    assert status["attempts"] == 1
    assert "Resumed" in [e.reason for e in jobs.events("held")]


def test_a_dead_letter_job_is_replayed_once(jobs: Jobs) -> None:
    """The conveyor.dev/replay annotation sends a Failed job through again, history kept."""
    jobs.create("dlq", FAIL_ON_FIRST, retry={"maxAttempts": 1})
    jobs.wait_phase("dlq", "Failed")
    jobs.patch("dlq", {"metadata": {"annotations": {"conveyor.dev/replay": "first"}}})
    # Still Failed until the operator takes the replay: wait for that before the outcome.
    jobs.wait("dlq", lambda s: s.get("replayed") == "first", desc="the replay taken")
    status = jobs.wait_phase("dlq", "Succeeded")
    assert status["attempts"] == 2
    assert status["replayed"] == "first"
    assert [h["result"] for h in status["history"]] == ["Failed", "Succeeded"]
    assert status["lastFailure"]["attempt"] == 1
    assert "Replayed" in [e.reason for e in jobs.events("dlq")]


def test_a_restart_in_the_middle_runs_no_attempt_twice(
    jobs: Jobs, conveyor_operator: OperatorProcess
) -> None:
    """SIGKILL the operator while an attempt runs: after the restart it finishes, one pod only."""
    jobs.create("survivor", "sleep 3; echo ok")
    jobs.wait("survivor", lambda s: s.get("phase") == "Running", desc="running")
    conveyor_operator.restart()
    status = jobs.wait_phase("survivor", "Succeeded", timeout=60)
    assert status["attempts"] == 1
    assert [p.metadata.name for p in jobs.pods("survivor")] == ["survivor-1"]


def test_a_job_the_api_server_refuses_to_run_gets_invalid_spec(jobs: Jobs) -> None:
    """A pod spec the API server rejects becomes an InvalidSpec condition; other jobs go on."""
    body = jobs.job_body("broken", "true")
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"cpu": "not-a-quantity"}
    }
    try:
        jobs.custom.create_namespaced_custom_object(
            "conveyor.dev", "v1alpha1", jobs.namespace, "backgroundjobs", body
        )
    except Exception as error:  # the CRD schema may refuse it already, which is as good
        pytest.fail(f"the CRD should accept any pod template: {error}")
    jobs.create("fine", "true")
    status = jobs.wait(
        "broken", lambda s: (c := condition(s, "InvalidSpec")) is not None and c["status"] == "True"
    )
    assert "refused" in condition(status, "InvalidSpec")["message"]
    jobs.wait_phase("fine", "Succeeded")


def test_kubectl_get_shows_the_columns(jobs: Jobs, kube_cluster: KubeCluster) -> None:
    """`kubectl get bgj` answers the first questions without -o yaml."""
    jobs.create("shown", "true")
    jobs.wait_phase("shown", "Succeeded")
    out = kube_cluster.kubectl("get", "bgj", "-n", jobs.namespace).stdout.splitlines()
    assert out[0].split() == [
        *("NAME", "QUEUE", "PHASE", "ATTEMPTS", "LAST", "FAILURE"),
        *("SCHEDULE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"),  # a recurring job's
    ]
    assert out[1].split()[:3] == ["shown", "Succeeded", "1/5"]
    selected = kube_cluster.kubectl(
        "get",
        "bgj",
        "-n",
        jobs.namespace,
        "--field-selector",
        "status.phase=Succeeded",
        "-o",
        "name",
    ).stdout.split()
    assert selected == ["backgroundjob.conveyor.dev/shown"]
    explained = subprocess.run(
        [
            kube_cluster.kubectl_path,
            "--kubeconfig",
            kube_cluster.kubeconfig,
            "explain",
            "bgj.spec.retry.backoff",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "initialDelaySeconds" in explained and "jitter" in explained
