"""The operator, run as a local process against the test cluster, and helpers to drive jobs.

One operator serves the whole session (each test works in its own namespace);
`operator.restart()` kills it with SIGKILL and starts it again, for the tests
that prove a restart loses nothing. Its log is kept in the pytest temp dir
and printed when a test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.fixtures import BUSYBOX_IMAGE, TEST_PREFIX, KubeCluster, wait_for

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "conveyor.dev", "v1alpha1"


def apply_crds(cluster: KubeCluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    for crd in ("backgroundjobs.conveyor.dev", "jobqueues.conveyor.dev"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    # A freshly (re)started API server answers 429 "storage is (re)initializing" for a
    # while; an operator started then would sit in its watch retry backoff.
    for kind in ("backgroundjobs.conveyor.dev", "jobqueues.conveyor.dev", "pods"):
        wait_for(
            lambda kind=kind: (
                cluster.kubectl("get", kind, "-A", "--chunk-size=1", check=False).returncode == 0
            ),
            timeout=120,
            desc=f"the API server to serve {kind}",
        )


class OperatorProcess:
    def __init__(self, cluster: KubeCluster, log_path: Path) -> None:
        self.cluster = cluster
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 18080 + os.getpid() % 1000

    def start(self) -> None:
        env = dict(os.environ, KUBECONFIG=self.cluster.kubeconfig, PYTHONUNBUFFERED="1")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conveyor",
                "--liveness",
                f"http://127.0.0.1:{self.port}/healthz",
                # Only the tests' namespaces: the e2e suite and the benchmark run operators
                # of their own elsewhere on the same cluster, and another session may run
                # with another $CONVEYOR_TEST_PREFIX.
                "--namespace",
                f"{TEST_PREFIX}*",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._healthy, timeout=60, desc="the operator's liveness endpoint")

    def _healthy(self) -> bool:
        import urllib.request

        assert self.proc is not None
        if self.proc.poll() is not None:  # a verdict: wait_for stops at an AssertionError
            raise AssertionError(f"the operator exited {self.proc.returncode}:\n{self.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


@pytest.fixture(scope="session")
def conveyor_operator(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    apply_crds(kube_cluster)
    operator = OperatorProcess(kube_cluster, tmp_path_factory.mktemp("operator") / "operator.log")
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        operator = item.funcargs.get("conveyor_operator") if hasattr(item, "funcargs") else None
        if isinstance(operator, OperatorProcess):
            report.sections.append(("operator log (tail)", operator.tail(80)))


class Jobs:
    """Create BackgroundJobs and JobQueues in one namespace, and wait on them."""

    def __init__(self, cluster: KubeCluster, namespace: str) -> None:
        from kubernetes import client

        self.cluster = cluster
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(cluster.api_client)
        self.core = client.CoreV1Api(cluster.api_client)

    def job_body(
        self,
        name: str,
        script: str = "echo hello",
        *,
        image: str = BUSYBOX_IMAGE,
        **spec: Any,
    ) -> dict[str, Any]:
        body_spec = {
            "template": {
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "worker",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", script],
                        }
                    ],
                }
            },
            **spec,
        }
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BackgroundJob",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": body_spec,
        }

    def create(self, name: str, script: str = "echo hello", **spec: Any) -> dict[str, Any]:
        body = self.job_body(name, script, **spec)
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "backgroundjobs", body
        )
        return result

    def create_queue(self, name: str, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "JobQueue",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "jobqueues", body
        )
        return result

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "backgroundjobs", name
        )
        return result

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "backgroundjobs", name, body
        )
        return result

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.get(name).get("status") or {}
        return status

    def wait(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = 90,
        desc: str = "",
    ) -> dict[str, Any]:
        return wait_for(
            lambda: (s := self.status(name)) and predicate(s) and s,
            timeout=timeout,
            interval=0.2,
            desc=f"{self.namespace}/{name}: {desc}",
        )

    def wait_phase(self, name: str, phase: str, *, timeout: float = 90) -> dict[str, Any]:
        terminal = {"Succeeded", "Failed"}

        def reached(status: dict[str, Any]) -> bool:
            current = status.get("phase")
            if current in terminal and current != phase:
                raise AssertionError(f"job {name} ended {current}, wanted {phase}: {status}")
            return bool(current == phase)

        return wait_for(
            lambda: (s := self.status(name)) and reached(s) and s,
            timeout=timeout,
            interval=0.2,
            desc=f"{self.namespace}/{name} phase {phase}",
        )

    def pods(self, job: str) -> list[Any]:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"conveyor.dev/job={job}"
        ).items
        return sorted(pods, key=lambda p: int(p.metadata.labels["conveyor.dev/attempt"]))

    def events(self, name: str) -> list[Any]:
        items = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        ).items
        return sorted(items, key=lambda e: e.metadata.creation_timestamp)

    def dump(self, name: str) -> str:
        return yaml.safe_dump(self.get(name))


@pytest.fixture
def jobs(kube_cluster: KubeCluster, namespace: str, conveyor_operator: OperatorProcess) -> Jobs:
    return Jobs(kube_cluster, namespace)


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)


def parse_time(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def now() -> float:
    return time.time()
