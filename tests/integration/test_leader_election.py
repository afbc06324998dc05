"""Two operators, one Lease: only the leader acts, a follower takes over, no attempt runs twice.

Both replicas run as local processes with short election periods, in a
namespace of their own (not the session operator's prefix). The test's own
pod watch checks the queue's quota across the takeovers; the Lease on the API
server says who leads.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.fixtures import KubeCluster, fresh_namespace, wait_for
from tests.cluster.operator import OperatorProcess
from tests.integration.conftest import Jobs, watch_pods

pytestmark = pytest.mark.cluster

LEASE = "conveyor"
PERIODS = ["--lease-duration=4", "--renew-deadline=3", "--retry-period=1"]


@pytest.fixture
def ha_namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    with fresh_namespace(kube_cluster, f"le-{uuid.uuid4().hex[:8]}") as name:
        yield name


def replica(cluster: KubeCluster, namespace: str, name: str, logs: Path) -> OperatorProcess:
    return OperatorProcess(
        cluster.kubeconfig,
        [namespace],
        logs / f"{name}.log",
        extra_args=[
            "--leader-election",
            f"--leader-election-namespace={namespace}",
            f"--leader-election-name={LEASE}",
            *PERIODS,
        ],
        metrics=True,
        env={"POD_NAME": name},
    )


def holder(cluster: KubeCluster, namespace: str) -> str:
    from kubernetes import client

    lease = client.CoordinationV1Api(cluster.api_client).read_namespaced_lease(LEASE, namespace)
    return str(lease.spec.holder_identity or "")


def leading(operator: OperatorProcess) -> bool:
    return "\nconveyor_leader 1.0" in operator.scrape()


def test_a_follower_takes_over_from_a_killed_and_from_a_stopped_leader(
    kube_cluster: KubeCluster, ha_namespace: str, tmp_path: Path
) -> None:
    """Concurrency 2, ten jobs of 2 s. The leader is killed (-9) while pods run: the follower
    takes the Lease once it expires, and carries on; then the new leader is stopped with
    SIGTERM and hands the Lease back at once. Never more than two pods alive, every job
    runs exactly once, and only the Lease's holder says it leads."""
    jobs = Jobs(kube_cluster, ha_namespace)
    pods = watch_pods(kube_cluster, ha_namespace)
    replicas = {name: replica(kube_cluster, ha_namespace, name, tmp_path) for name in ("a", "b")}
    try:
        for operator in replicas.values():
            operator.start()
        first = wait_for(lambda: holder(kube_cluster, ha_namespace), timeout=30, desc="a leader")
        other = "b" if first == "a" else "a"
        wait_for(lambda: leading(replicas[first]), timeout=30, desc=f"{first} leading")
        assert not leading(replicas[other])

        jobs.create_queue("pair", concurrency=2)
        for i in range(10):
            jobs.create(f"work-{i}", "sleep 2", queue="pair")
        wait_for(lambda: pods.max_live == 2, timeout=60, desc="two pods running")

        killed_at = time.monotonic()
        replicas[first].kill()
        wait_for(
            lambda: holder(kube_cluster, ha_namespace) == other,
            timeout=30,
            desc=f"{other} taking the lease",
        )
        took = time.monotonic() - killed_at
        wait_for(lambda: leading(replicas[other]), timeout=10, desc=f"{other} leading")

        replicas[first].start()  # back, as a follower
        wait_for(lambda: len(pods.names()) >= 6, timeout=90, desc="more jobs started")
        stopped_at = time.monotonic()
        replicas[other].terminate()
        wait_for(
            lambda: holder(kube_cluster, ha_namespace) == first,
            timeout=30,
            desc=f"{first} taking the released lease",
        )
        handed = time.monotonic() - stopped_at

        for i in range(10):
            jobs.wait_phase(f"work-{i}", "Succeeded", timeout=120)
        assert pods.max_live <= 2
        for i in range(10):
            assert [p.metadata.name for p in jobs.pods(f"work-{i}")] == [f"work-{i}-1"]
            assert jobs.status(f"work-{i}")["attempts"] == 1
        # Reported, not asserted (timings are the chaos suite's): the killed leader's lease
        # had to expire (4 s), the stopped one's was released.
        print(f"takeover after kill -9: {took:.1f} s; after SIGTERM: {handed:.1f} s")
    finally:
        for operator in replicas.values():
            operator.stop()
        pods.stop()
