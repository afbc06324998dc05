"""`kubectl conveyor` on the real cluster: kubectl finds the plugin on PATH (the virtual
environment's bin) and runs it; what it prints agrees with `kubectl get`, and its actions
are carried out by the operator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.fixtures import KubeCluster, wait_for
from tests.integration.conftest import Jobs, condition

pytestmark = pytest.mark.cluster

VENV_BIN = Path(sys.executable).parent


def plugin(cluster: KubeCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`kubectl conveyor ARGS --kubeconfig ...`, with the plugin found on PATH by kubectl."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{Path(cluster.kubectl_path).parent}{os.pathsep}"
    env["PATH"] += os.environ.get("PATH", "")
    env.pop("KUBECONFIG", None)
    proc = subprocess.run(
        [cluster.kubectl_path, "conveyor", *args, "--kubeconfig", cluster.kubeconfig],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kubectl conveyor {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
        )
    return proc


def count(cluster: KubeCluster, namespace: str, selector: str) -> int:
    out = cluster.kubectl("get", "bgj", "-n", namespace, "--field-selector", selector, "-o", "name")
    return len(out.stdout.split())


def test_kubectl_finds_the_plugin(kube_cluster: KubeCluster) -> None:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    listed = subprocess.run(
        [kube_cluster.kubectl_path, "plugin", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert "kubectl-conveyor" in listed.stdout


def test_queues_print_the_counts_kubectl_gets(jobs: Jobs, kube_cluster: KubeCluster) -> None:
    ns = jobs.namespace
    jobs.create_queue("work", concurrency=5)
    jobs.create_queue("held", paused=True)
    for name in ("ok-1", "ok-2"):
        jobs.create(name, "echo fine", queue="work")
    jobs.create("bad-1", "echo broken; exit 3", queue="work", retry={"maxAttempts": 1})
    for name in ("wait-1", "wait-2"):
        jobs.create(name, "echo later", queue="held")
    for name in ("ok-1", "ok-2"):
        jobs.wait_phase(name, "Succeeded")
    jobs.wait_phase("bad-1", "Failed")
    for name in ("wait-1", "wait-2"):
        jobs.wait(name, lambda s: s.get("phase") == "Queued", desc="queued")

    listed = json.loads(plugin(kube_cluster, "queues", "-n", ns, "-o", "json").stdout)
    by_name = {q["name"]: q for q in listed["items"]}
    assert (
        by_name["work"]["succeeded"]
        == count(kube_cluster, ns, "spec.queue=work,status.phase=Succeeded")
        == 2
    )
    assert (
        by_name["work"]["failed"]
        == count(kube_cluster, ns, "spec.queue=work,status.phase=Failed")
        == 1
    )
    assert (
        by_name["held"]["waiting"]
        == count(kube_cluster, ns, "spec.queue=held,status.phase=Queued")
        == 2
    )
    assert by_name["held"]["paused"] is True
    assert by_name["work"]["ratePerMinute"] > 0

    table = plugin(kube_cluster, "queues", "-n", ns).stdout.splitlines()
    assert table[0].split()[:3] == ["QUEUE", "WAITING", "DELAYED"]
    work = next(line.split() for line in table if line.startswith("work "))
    assert work[1:6] == ["0", "0", "0", "2", "1"]
    everywhere = plugin(kube_cluster, "queues", "-A").stdout
    assert ns in everywhere

    failed = plugin(kube_cluster, "jobs", "-n", ns, "-q", "work", "--failed").stdout.splitlines()
    assert [line.split()[0] for line in failed[1:]] == ["bad-1"]

    described = plugin(kube_cluster, "describe", "bad-1", "-n", ns).stdout
    assert "#1  bad-1-1  Failed (Error)  exit code 3" in described
    assert "│ broken" in described
    assert "AttemptsExhausted" in described

    logs = plugin(kube_cluster, "logs", "bad-1", "-n", ns).stdout
    assert logs.strip() == "broken"

    missing = plugin(kube_cluster, "describe", "nope", "-n", ns, check=False)
    assert missing.returncode == 1
    assert "NotFound" in missing.stderr and missing.stdout == ""

    refused = plugin(kube_cluster, "promote", "ok-1", "-n", ns, check=False)
    assert refused.returncode == 1
    assert "only a Delayed or BackingOff job can be promoted" in refused.stderr

    # retry every failed job of the queue: the operator takes the replay
    assert (
        "replay asked" in plugin(kube_cluster, "retry", "--failed", "-q", "work", "-n", ns).stdout
    )
    jobs.wait("bad-1", lambda s: s.get("replayed"), desc="the replay taken")
    jobs.wait_phase("bad-1", "Failed")
    assert jobs.status("bad-1")["attempts"] == 2

    # resume the paused queue: its jobs run
    assert "resumed" in plugin(kube_cluster, "resume", "held", "-n", ns).stdout
    jobs.wait_phase("wait-1", "Succeeded")
    plugin(kube_cluster, "pause", "held", "-n", ns)
    assert (
        jobs.custom.get_namespaced_custom_object(
            "conveyor.dev", "v1alpha1", ns, "jobqueues", "held"
        )["spec"]["paused"]
        is True
    )


def test_promote_run_now_and_cancel_through_the_plugin(
    jobs: Jobs, kube_cluster: KubeCluster
) -> None:
    ns = jobs.namespace
    jobs.create("later", "echo promoted", delaySeconds=3600)
    jobs.create("forever", "sleep 600")
    jobs.create("nightly", "echo nightly", schedule="0 3 * * *")
    jobs.wait("later", lambda s: s.get("phase") == "Delayed", desc="delayed")
    jobs.wait("forever", lambda s: s.get("phase") == "Running", desc="running")
    jobs.wait("nightly", lambda s: s.get("nextScheduleTime"), desc="scheduled")

    plugin(kube_cluster, "promote", "later", "-n", ns)
    plugin(kube_cluster, "cancel", "forever", "-n", ns)
    plugin(kube_cluster, "run-now", "nightly", "-n", ns)

    jobs.wait_phase("later", "Succeeded", timeout=60)
    cancelled = jobs.wait_phase("forever", "Failed", timeout=60)
    assert condition(cancelled, "Failed")["reason"] == "Cancelled"

    def manual_run_listed() -> bool:
        runs = plugin(kube_cluster, "describe", "nightly", "-n", ns).stdout
        return "yes" in runs.split("Runs:")[1].split("Conditions:")[0]

    wait_for(manual_run_listed, timeout=60, desc="the manual run in describe's Runs")
