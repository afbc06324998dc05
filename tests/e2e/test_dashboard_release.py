"""The chart's dashboard installed into the cluster: reached by kubectl port-forward as its
docs say, it shows the watched namespace's queues as kubectl counts them, acts as its
ServiceAccount (whose RBAC decides), and answers on no open port of its pod."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cluster.fixtures import KubeCluster, wait_for
from tests.cluster.operator import free_port
from tests.e2e.conftest import JOB_IMAGE, Namespaces, Release

pytestmark = pytest.mark.cluster

DEAD_LETTER = """
apiVersion: conveyor.dev/v1alpha1
kind: JobQueue
metadata: {{name: email, namespace: {ns}}}
spec: {{concurrency: 2}}
---
apiVersion: conveyor.dev/v1alpha1
kind: BackgroundJob
metadata: {{name: dead, namespace: {ns}}}
spec:
  queue: email
  retry: {{maxAttempts: 1}}
  template:
    spec:
      containers:
      - name: worker
        image: {image}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'echo "attempt $CONVEYOR_ATTEMPT"; test "$CONVEYOR_ATTEMPT" != 1']
"""


@contextlib.contextmanager
def port_forward(cluster: KubeCluster, namespace: str, target: str, port: int) -> Iterator[str]:
    local = free_port()
    proc = subprocess.Popen(
        [cluster.kubectl_path, "--kubeconfig", cluster.kubeconfig, "port-forward", "-n",
         namespace, target, f"{local}:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    url = f"http://localhost:{local}"
    try:
        wait_for(lambda: _get(f"{url}/healthz")[0] == 200, timeout=60, desc="port-forward")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get(url: str, **kwargs: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, **kwargs)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def dashboard_release(
    make_release: Callable[[str, list[str]], Release], e2e_namespaces: Namespaces
) -> Iterator[Release]:
    operator_ns = e2e_namespaces.create("dash", "pod-security.kubernetes.io/enforce=restricted")
    jobs_ns = e2e_namespaces.create("dashjobs")
    release = make_release(operator_ns, [jobs_ns])
    release.extra_values = {"dashboard": {"enabled": True, "actions": True}, "replicas": 1}
    release.install()
    try:
        yield release
    finally:
        if release.installed():
            release.uninstall()


def test_the_dashboard_through_port_forward(
    dashboard_release: Release, kube_cluster: KubeCluster
) -> None:
    release = dashboard_release
    (jobs_ns,) = release.watched
    kube_cluster.kubectl("apply", "-f", "-", input=DEAD_LETTER.format(ns=jobs_ns, image=JOB_IMAGE))

    def phase() -> str:
        return kube_cluster.kubectl(
            "get", "bgj", "dead", "-n", jobs_ns, "-o", "jsonpath={.status.phase}"
        ).stdout

    wait_for(lambda: phase() == "Failed", timeout=120, desc="the dead letter failed")
    with port_forward(kube_cluster, release.namespace, "svc/conveyor-dashboard", 8099) as url:
        status, overview = _get(f"{url}/api/overview")
        assert status == 200
        (email,) = [q for q in overview["queues"] if q["name"] == "email"]
        assert email["failed"] == 1 and overview["allowActions"] is True
        status, done = _get(
            f"{url}/api/jobs/{jobs_ns}/dead/retry",
            method="POST",
            headers={"X-Conveyor-Action": "1"},
        )
        assert status == 200, done
        wait_for(lambda: phase() == "Succeeded", timeout=120, desc="the retried job succeeded")
        # not one of the operator's verbs: its RBAC says no, and the page says why
        status, refused = _get(
            f"{url}/api/jobs/{jobs_ns}/dead/retry",
            method="POST",
            headers={"X-Conveyor-Action": "1"},
        )
        assert status == 409 and "only a Failed job" in refused["error"]

    account = f"system:serviceaccount:{release.namespace}:conveyor-dashboard"
    for verb, resource, allowed in (
        ("patch", "backgroundjobs.conveyor.dev", "yes"),
        ("patch", "jobqueues.conveyor.dev", "yes"),
        ("create", "pods", "no"),
        ("delete", "backgroundjobs.conveyor.dev", "no"),
        ("get", "secrets", "no"),
    ):
        said = kube_cluster.kubectl(
            "auth", "can-i", verb, resource, "-n", jobs_ns, "--as", account, check=False
        ).stdout.strip()
        assert said == allowed, (verb, resource, said)

    # the pod answers probes on its address, and nothing else
    pod = json.loads(
        kube_cluster.kubectl(
            "get", "pods", "-n", release.namespace, "-l",
            "app.kubernetes.io/component=dashboard", "-o", "json",
        ).stdout
    )["items"][0]  # fmt: skip
    ip = pod["status"]["podIP"]
    assert _get(f"http://{ip}:8098/healthz")[0] == 200
    with pytest.raises(OSError), socket.create_connection((ip, 8099), timeout=5):
        pass
