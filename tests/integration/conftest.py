"""The operator, run as a local process against the test cluster, and helpers to drive jobs.

One operator serves the whole session (each test works in its own namespace);
`operator.restart()` kills it with SIGKILL and starts it again, for the tests
that prove a restart loses nothing. Its log is kept in the pytest temp dir
and printed when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from tests.cluster.fixtures import BUSYBOX_IMAGE, TEST_PREFIX, KubeCluster, wait_for
from tests.cluster.operator import OperatorProcess, apply_crds

GROUP, VERSION = "conveyor.dev", "v1alpha1"


@pytest.fixture(scope="session")
def conveyor_operator(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    apply_crds(kube_cluster.kubectl_path, kube_cluster.kubeconfig)
    operator = OperatorProcess(
        kube_cluster.kubeconfig,
        # Only the tests' namespaces: the e2e suite and the benchmark run operators of their
        # own elsewhere on the same cluster, and another session may run with another
        # $CONVEYOR_TEST_PREFIX.
        [f"{TEST_PREFIX}*"],
        tmp_path_factory.mktemp("operator") / "operator.log",
        metrics=True,  # tests/integration/test_metrics.py scrapes it
    )
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

    def watch_runs(self, parent: str) -> ObjectWatch:
        """The runs of recurring job `parent`, watched from now on (call `stop()`)."""
        return ObjectWatch(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            "backgroundjobs",
            label_selector=f"conveyor.dev/recurring-job={parent}",
        )

    def dump(self, name: str) -> str:
        return yaml.safe_dump(self.get(name))


@pytest.fixture
def jobs(kube_cluster: KubeCluster, namespace: str, conveyor_operator: OperatorProcess) -> Jobs:
    return Jobs(kube_cluster, namespace)


class ApiWatch:
    """Every change to one kind of object in a namespace, as the API server reports it.

    The constructor lists, then opens a watch from the list's resourceVersion and returns
    once the API server has answered it: the objects that exist are passed to `on_event`
    as ADDED, and nothing that happens after the constructor returns is missed. A thread
    then hands every event to `on_event(type, object, seen)`, `object` as the API server's
    JSON (a dict) and `seen` the `time.time()` at which the test received it, in the order
    of the API server's resourceVersions. `stop()` closes the watch and fails if it broke.

    This is the tests' own record, independent of the operator's: assertions about when
    and in which order things happened are made on it (or on the API server's
    `metadata.creationTimestamp`), never on timestamps the operator writes.
    """

    def __init__(
        self,
        list_fn: Callable[..., Any],
        *args: Any,
        on_event: Callable[[str, dict[str, Any], float], None],
        **kwargs: Any,
    ) -> None:
        self.on_event = on_event
        self.lock = threading.Lock()
        self.stopped = False
        self.error: BaseException | None = None
        listing = json.loads(list_fn(*args, _preload_content=False, **kwargs).data)
        seen = time.time()
        with self.lock:
            for item in listing.get("items") or []:
                on_event("ADDED", item, seen)
        self.response = list_fn(
            *args,
            watch=True,
            resource_version=listing["metadata"]["resourceVersion"],
            timeout_seconds=900,
            _preload_content=False,
            **kwargs,
        )
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from kubernetes.watch.watch import iter_resp_lines

        try:
            for line in iter_resp_lines(self.response):
                if not line:
                    continue
                event = json.loads(line)
                if event["type"] == "ERROR":
                    raise RuntimeError(f"the watch ended with an error: {event['object']}")
                if event["type"] == "BOOKMARK":
                    continue
                with self.lock:
                    self.on_event(event["type"], event["object"], time.time())
            if not self.stopped:
                raise RuntimeError("the API server closed the watch")
        except BaseException as error:
            if not self.stopped:
                self.error = error

    def stop(self) -> None:
        self.stopped = True
        with contextlib.suppress(Exception):  # already released: the thread is done anyway
            self.response.shutdown()  # wakes the thread's read; close() alone would not
        self.response.release_conn()
        self.thread.join(timeout=10)
        assert self.error is None, f"the watch failed: {self.error!r}"


class ObjectWatch:
    """Every object of one kind in a namespace (pods, or BackgroundJobs) as the test's own
    watch saw it.

    Per object (`snapshot()`, by name): `order`, the index of its first event (the API
    server's creation order); `seen`, when the test received that event; `created`, its
    `metadata.creationTimestamp` (whole seconds); `labels`; `phases`, every `status.phase`
    in the order seen; `reached`, phase → the event index at which it was first seen;
    `terminating` and `deleted`, when a deletionTimestamp and the DELETED event were first
    seen (or None). `max_live` is the most objects at once that were neither deleted nor
    Succeeded/Failed; `max_in_phase` the most at once in each phase.
    """

    def __init__(self, list_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.events = 0
        self.live: set[str] = set()
        self.max_live = 0
        self.max_in_phase: dict[str, int] = {}
        self.watch = ApiWatch(list_fn, *args, on_event=self._on_event, **kwargs)

    def _on_event(self, type_: str, obj: dict[str, Any], seen: float) -> None:
        meta = obj["metadata"]
        name = meta["name"]
        index = self.events
        self.events += 1
        record = self.objects.setdefault(
            name,
            {
                "order": index,
                "seen": seen,
                "created": parse_time(meta["creationTimestamp"]),
                "labels": meta.get("labels") or {},
                "phases": [],
                "reached": {},
                "phase": None,
                "terminating": None,
                "deleted": None,
            },
        )
        phase = (obj.get("status") or {}).get("phase")
        if phase and (not record["phases"] or record["phases"][-1] != phase):
            record["phases"].append(phase)
            record["reached"].setdefault(phase, index)
        if meta.get("deletionTimestamp") and record["terminating"] is None:
            record["terminating"] = seen
        if type_ == "DELETED":
            record["deleted"] = seen
            record["terminating"] = record["terminating"] or seen
        record["phase"] = None if type_ == "DELETED" else phase
        if type_ == "DELETED" or phase in ("Succeeded", "Failed"):
            self.live.discard(name)
        else:
            self.live.add(name)
        self.max_live = max(self.max_live, len(self.live))
        if phase is not None and type_ != "DELETED":
            now_in_phase = sum(1 for r in self.objects.values() if r["phase"] == phase)
            self.max_in_phase[phase] = max(self.max_in_phase.get(phase, 0), now_in_phase)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self.watch.lock:
            return {
                name: {**r, "phases": list(r["phases"]), "reached": dict(r["reached"])}
                for name, r in self.objects.items()
            }

    def names(self) -> list[str]:
        """Every object seen, in the order the API server created them."""
        return [n for n, _ in sorted(self.snapshot().items(), key=lambda item: item[1]["order"])]

    def stop(self) -> None:
        self.watch.stop()


def watch_pods(cluster: KubeCluster, namespace: str) -> ObjectWatch:
    from kubernetes import client

    return ObjectWatch(client.CoreV1Api(cluster.api_client).list_namespaced_pod, namespace)


@pytest.fixture
def pod_watch(kube_cluster: KubeCluster, namespace: str) -> Iterator[ObjectWatch]:
    """The namespace's pods, watched from before the test creates any."""
    watcher = watch_pods(kube_cluster, namespace)
    yield watcher
    watcher.stop()


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)


def parse_time(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def now() -> float:
    return time.time()
