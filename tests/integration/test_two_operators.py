"""Two Conveyor operators acting in one namespace: said loudly, and still no attempt twice.

Two releases watching the same namespace (or a rolling update without leader
election) race their admitters for the same slots. The operator cannot stop
the other one; it must make the conflict impossible to miss: a Warning event
on a job, and the queue's `OperatorConflict` condition.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.fixtures import KubeCluster, fresh_namespace, wait_for
from tests.cluster.operator import OperatorProcess
from tests.integration.conftest import Jobs, condition

pytestmark = pytest.mark.cluster


@pytest.fixture
def shared_namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    # Not the session operator's prefix: only the two operators below act here.
    with fresh_namespace(kube_cluster, f"two-{uuid.uuid4().hex[:8]}") as name:
        yield name


def test_a_second_operator_in_the_namespace_is_reported_and_runs_nothing_twice(
    kube_cluster: KubeCluster, shared_namespace: str, tmp_path: Path
) -> None:
    """Releases a and b, without election, both watch one namespace with a queue of twelve
    jobs: an AnotherOperator event names the other release, the queue's OperatorConflict
    condition is True, and every job still ran exactly one attempt."""
    jobs = Jobs(kube_cluster, shared_namespace)
    operators = [
        OperatorProcess(
            kube_cluster.kubeconfig,
            [shared_namespace],
            tmp_path / f"{release}.log",
            extra_args=[f"--operator-id={release}/conveyor"],
        )
        for release in ("a", "b")
    ]
    try:
        for operator in operators:
            operator.start()
        jobs.create_queue("shared", concurrency=4)
        for i in range(12):
            jobs.create(f"job-{i}", "sleep 1", queue="shared")
        for i in range(12):
            jobs.wait_phase(f"job-{i}", "Succeeded", timeout=120)

        def reported() -> list[str]:
            found = []
            for i in range(12):
                found += [
                    e.message for e in jobs.events(f"job-{i}") if e.reason == "AnotherOperator"
                ]
            return found

        messages = wait_for(reported, timeout=60, desc="an AnotherOperator event")
        assert any("a/conveyor" in m or "b/conveyor" in m for m in messages), messages

        def conflict() -> dict[str, object] | None:
            queue = jobs.custom.get_namespaced_custom_object(
                "conveyor.dev", "v1alpha1", shared_namespace, "jobqueues", "shared"
            )
            found = condition(queue.get("status") or {}, "OperatorConflict")
            return found if found is not None and found["status"] == "True" else None

        found = wait_for(conflict, timeout=60, desc="the queue's OperatorConflict condition")
        assert found["reason"] == "AnotherOperator"
        for i in range(12):
            assert [p.metadata.name for p in jobs.pods(f"job-{i}")] == [f"job-{i}-1"]
            assert jobs.status(f"job-{i}")["attempts"] == 1
    finally:
        for operator in operators:
            operator.stop()
