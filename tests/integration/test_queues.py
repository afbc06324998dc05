"""JobQueue admission on the real cluster: concurrency, rate limit, pause, priority, defaults.

The promises are checked where they matter: the test's own watch on the namespace's
pods (`pod_watch`) records every pod as the API server reports it, and the tests assert
on that record (how many were live at once, in which order they were created, when the
test saw them) and on the API server's creationTimestamps, never on the operator's own
bookkeeping or the timestamps it writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.cluster.fixtures import TEST_PREFIX, KubeCluster, wait_for
from tests.integration.conftest import Jobs, ObjectWatch, OperatorProcess, condition

pytestmark = pytest.mark.cluster


def test_concurrency_is_never_exceeded(jobs: Jobs, pod_watch: ObjectWatch) -> None:
    """Concurrency 2, eight jobs of two seconds: never more than two live pods, all succeed."""
    jobs.create_queue("pair", concurrency=2)
    for i in range(8):
        jobs.create(f"work-{i}", "sleep 2", queue="pair")
    for i in range(8):
        jobs.wait_phase(f"work-{i}", "Succeeded", timeout=120)
    assert pod_watch.max_live <= 2
    assert pod_watch.max_live == 2, "the queue should have used both slots"
    assert len(pod_watch.snapshot()) == 8


def test_priority_then_fifo_decides_the_start_order(
    jobs: Jobs, pod_watch: ObjectWatch, kube_cluster: KubeCluster
) -> None:
    """Submitted into a paused queue of concurrency 1: higher priority first, then oldest.
    The waiting line shows in that order with kubectl."""
    jobs.create_queue("line", concurrency=1, paused=True)
    for name, priority in [("low-a", 1), ("mid-a", 5), ("mid-b", 5), ("top", 10), ("low-b", 1)]:
        jobs.create(name, "true", queue="line", priority=priority)
        jobs.wait(name, lambda s: s.get("phase") == "Queued", desc="queued")
    waiting_line = kube_cluster.kubectl(
        "get",
        "bgj",
        "-n",
        jobs.namespace,
        "-o",
        "name",
        "--field-selector",
        "spec.queue=line,status.phase=Queued",
        "--sort-by",
        ".status.queueOrder",
    ).stdout.split()
    assert [n.split("/")[1] for n in waiting_line] == ["top", "mid-a", "mid-b", "low-a", "low-b"]
    jobs.custom.patch_namespaced_custom_object(
        "conveyor.dev", "v1alpha1", jobs.namespace, "jobqueues", "line", {"spec": {"paused": False}}
    )
    for name in ("low-a", "mid-a", "mid-b", "top", "low-b"):
        jobs.wait_phase(name, "Succeeded", timeout=120)
    assert pod_watch.names() == [f"{n}-1" for n in ("top", "mid-a", "mid-b", "low-a", "low-b")]


def test_the_rate_limit_holds_in_every_window_and_does_not_throttle_harder(
    jobs: Jobs, pod_watch: ObjectWatch
) -> None:
    """rateLimit max 2 per 5 s, six jobs: never 3 pod creations in a 5-second window (by the
    API server's creationTimestamps), and no harder than that either: each start beyond the
    first two comes within a few seconds of the moment the limit allows it (by the test's
    watch), so pairs at about 0, 5 and 10 s.

    creationTimestamp has whole seconds: a pod stamped S was created in [S, S + 1). Three
    stamps within [T, T + 4] mean three creations within [T, T + 5), a 5-second half-open
    window, which the limit forbids; stamps five apart are allowed, whatever the
    fractions. So "at most 2 stamps in any [T, T + 4]" is exactly what the stamps can prove.

    The lower bound is checked start by start, not over the whole run: the operator counts
    a start from the response to its create (the only moment it knows the pod exists), so on
    a loaded machine each window begins a little late, and the lateness adds up. A start
    more than LATE after the start two before it plus the period would be a limiter that
    throttles harder than asked: one start per period, or a doubled period, is 5 s late.
    """
    period, late = 5, 3.0
    jobs.create_queue("metered", rateLimit={"max": 2, "periodSeconds": period})
    for i in range(6):
        jobs.create(f"call-{i}", "true", queue="metered")
    for i in range(6):
        jobs.wait_phase(f"call-{i}", "Succeeded", timeout=120)
    pods = pod_watch.snapshot()
    assert sorted(pods) == [f"call-{i}-1" for i in range(6)]
    stamps = sorted(int(r["created"]) for r in pods.values())
    for stamp in stamps:
        in_window = [s for s in stamps if stamp <= s <= stamp + period - 1]
        assert len(in_window) <= 2, (
            f"{len(in_window)} pods stamped within [{stamp}, {stamp + period - 1}] (so created "
            f"within {period} s): {stamps}"
        )
    seen = sorted(r["seen"] for r in pods.values())
    for k in range(2, len(seen)):
        allowed = seen[k - 2] + period
        assert seen[k] - allowed < late, (
            f"start {k + 1} came {seen[k] - allowed:.2f} s after the limit allowed it "
            f"(starts seen at {[round(s - seen[0], 2) for s in seen]} s)"
        )


def test_pause_holds_and_resume_drains(jobs: Jobs) -> None:
    """A paused queue starts nothing; unpaused, it runs everything that waited."""
    jobs.create_queue("held", paused=True)
    for i in range(3):
        jobs.create(f"wait-{i}", "true", queue="held")
    for i in range(3):
        jobs.wait(f"wait-{i}", lambda s: s.get("phase") == "Queued", desc="queued")
    assert all(not jobs.pods(f"wait-{i}") for i in range(3))
    queue = wait_for(
        lambda: (
            (
                q := jobs.custom.get_namespaced_custom_object(
                    "conveyor.dev", "v1alpha1", jobs.namespace, "jobqueues", "held"
                )
            )
            .get("status", {})
            .get("pending")
            == 3
            and q
        ),
        timeout=30,
        desc="queue status pending=3",
    )
    assert condition(queue["status"], "Ready")["reason"] == "Paused"
    jobs.custom.patch_namespaced_custom_object(
        "conveyor.dev", "v1alpha1", jobs.namespace, "jobqueues", "held", {"spec": {"paused": False}}
    )
    for i in range(3):
        jobs.wait_phase(f"wait-{i}", "Succeeded")


def test_queue_defaults_fill_what_the_job_leaves_unset(jobs: Jobs) -> None:
    """retry and deadline come from the queue when the job sets none."""
    jobs.create_queue(
        "strict",
        defaults={
            "retry": {"maxAttempts": 2, "backoff": {"strategy": "Fixed", "initialDelaySeconds": 1}},
            "attemptDeadlineSeconds": 30,
        },
    )
    jobs.create("uses-defaults", "exit 1", queue="strict")
    status = jobs.wait_phase("uses-defaults", "Failed")
    assert status["attempts"] == 2 and status["attemptsSummary"] == "2/2"
    (first, _) = jobs.pods("uses-defaults")
    assert first.spec.active_deadline_seconds == 30


def test_a_missing_queue_holds_the_job_until_it_appears(jobs: Jobs) -> None:
    """QueueNotFound names the queue; creating the queue starts the job."""
    jobs.create("early", "true", queue="later")
    status = jobs.wait(
        "early",
        lambda s: (c := condition(s, "QueueNotFound")) is not None and c["status"] == "True",
    )
    assert status["phase"] == "Pending"
    assert "'later'" in condition(status, "QueueNotFound")["message"]
    jobs.create_queue("later")
    status = jobs.wait_phase("early", "Succeeded")
    assert condition(status, "QueueNotFound") is None


def test_a_queue_of_another_namespace_is_not_used(jobs: Jobs, kube_cluster: KubeCluster) -> None:
    """Queues are per namespace: a same-named queue elsewhere does not admit the job."""
    from kubernetes import client

    other = f"{TEST_PREFIX}other-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube_cluster.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        Jobs(kube_cluster, other).create_queue("shared")
        jobs.create("local", "true", queue="shared")
        status = jobs.wait(
            "local",
            lambda s: (c := condition(s, "QueueNotFound")) is not None and c["status"] == "True",
        )
        assert status.get("attempts", 0) == 0
    finally:
        core.delete_namespace(other, propagation_policy="Background")


def test_a_restart_never_pushes_a_queue_over_its_concurrency(
    jobs: Jobs, pod_watch: ObjectWatch, conveyor_operator: OperatorProcess
) -> None:
    """Kill the operator while the queue is full: after the restart it still admits two at most."""
    jobs.create_queue("steady", concurrency=2)
    for i in range(6):
        jobs.create(f"run-{i}", "sleep 2", queue="steady")
    wait_for(lambda: pod_watch.max_live == 2, timeout=60, desc="two pods live")
    conveyor_operator.restart()
    for i in range(6):
        jobs.wait_phase(f"run-{i}", "Succeeded", timeout=120)
    assert pod_watch.max_live <= 2
    assert all(len(jobs.pods(f"run-{i}")) == 1 for i in range(6))


@pytest.fixture
def priority_classes(kube_cluster: KubeCluster) -> Iterator[tuple[str, str]]:
    from kubernetes import client

    scheduling = client.SchedulingV1Api(kube_cluster.api_client)
    suffix = uuid.uuid4().hex[:6]
    low, high = f"low-{suffix}", f"high-{suffix}"
    for name, value in ((low, 100), (high, 1000)):
        scheduling.create_priority_class(
            client.V1PriorityClass(metadata=client.V1ObjectMeta(name=name), value=value)
        )
    yield low, high
    for name in (low, high):
        scheduling.delete_priority_class(name)


def test_priority_classes_reach_the_pod_and_preemption_is_not_counted(
    jobs: Jobs, kube_cluster: KubeCluster, priority_classes: tuple[str, str]
) -> None:
    """With the node full, the high-priority pod preempts the low one; the low job is retried
    without losing an attempt."""
    low, high = priority_classes
    from kubernetes.utils import parse_quantity

    real = [n for n in kube_cluster.core.list_node().items if not n.spec.taints]
    assert len(real) == 1, "this test fills the one untainted node"
    cpu_millis = int(parse_quantity(real[0].status.allocatable["cpu"]) * 1000)
    big = f"{int(cpu_millis * 0.7)}m"
    resources = {"requests": {"cpu": big}}

    low_body = jobs.job_body(
        "bulk",
        'if [ "$CONVEYOR_ATTEMPT" = 1 ]; then sleep 120; fi',
        priorityClassName=low,
        retry={"maxAttempts": 1},
    )
    low_body["spec"]["template"]["spec"]["containers"][0]["resources"] = resources
    jobs.custom.create_namespaced_custom_object(
        "conveyor.dev", "v1alpha1", jobs.namespace, "backgroundjobs", low_body
    )
    wait_for(
        lambda: jobs.core.read_namespaced_pod("bulk-1", jobs.namespace).status.phase == "Running",
        timeout=60,
        desc="bulk-1 running",
    )
    assert jobs.core.read_namespaced_pod("bulk-1", jobs.namespace).spec.priority_class_name == low

    high_body = jobs.job_body("urgent", "true", priorityClassName=high)
    high_body["spec"]["template"]["spec"]["containers"][0]["resources"] = resources
    jobs.custom.create_namespaced_custom_object(
        "conveyor.dev", "v1alpha1", jobs.namespace, "backgroundjobs", high_body
    )
    jobs.wait_phase("urgent", "Succeeded", timeout=120)
    status = jobs.wait_phase("bulk", "Succeeded", timeout=120)
    assert status["failures"] == 0 and status["disruptions"] == 1
    assert status["history"][0]["result"] == "Disrupted"
