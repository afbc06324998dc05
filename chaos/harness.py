"""What every fault-injection scenario needs: the cluster, its own eyes, and the verdict.

The harness trusts nothing the operator says about itself. It watches pods with
a watch of its own (`PodLedger`: how many of a queue's pods were alive at once,
and every pod of every job), and judges a run from the API server's objects
(`verdict`): a job is *lost* if it did not end Succeeded, *duplicated* if its
pods are not exactly `<job>-1..N` with N = status.attempts ≤ maxAttempts and
one success. Faults are injected from outside the operator: signals to its
process, a proxy between it and the API server, a cluster component stopped
(`tests/cluster/restart.sh`).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cluster import binary
from bench.kube import ApiError, Kube
from tests.cluster.fixtures import BUSYBOX_IMAGE as BUSYBOX
from tests.cluster.operator import ROOT, OperatorProcess

GROUP_PATH = "/apis/conveyor.dev/v1alpha1"
RESTART = ROOT / "tests" / "cluster" / "restart.sh"


@dataclass
class Row:
    """One scenario's line in the table."""

    scenario: str
    jobs: int = 0
    faults: str = ""
    lost: int = 0
    duplicated: int = 0
    over_quota: int = 0
    recover: str = ""
    notes: str = ""
    passed: bool = True


@dataclass
class Context:
    kube: Kube
    kubeconfig: str
    log_dir: Path
    quick: bool

    def operator(
        self,
        name: str,
        namespaces: list[str],
        *extra: str,
        kubeconfig: str | None = None,
        **env: str,
    ) -> OperatorProcess:
        return OperatorProcess(
            kubeconfig or self.kubeconfig,
            namespaces,
            self.log_dir / f"operator-{name}.log",
            extra_args=list(extra),
            metrics=True,
            env={"POD_NAME": name, **env},
        )


# ---------------------------------------------------------------- namespaces and objects


async def fresh_namespace(kube: Kube, prefix: str) -> str:
    name = f"chaos-{prefix}-{uuid.uuid4().hex[:5]}"
    await kube.create("/api/v1/namespaces", {"metadata": {"name": name}})
    while True:
        try:
            await kube.get(f"/api/v1/namespaces/{name}/serviceaccounts/default")
            await kube.get(f"/api/v1/namespaces/{name}/configmaps/kube-root-ca.crt")
            return name
        except ApiError:
            await asyncio.sleep(0.2)


async def delete_namespace(kube: Kube, name: str) -> None:
    with contextlib.suppress(Exception):
        await kube.request(
            "DELETE",
            f"/api/v1/namespaces/{name}",
            body={"propagationPolicy": "Background"},
            ok=(404,),
        )


def job(
    name: str,
    script: str,
    *,
    queue: str | None = None,
    max_attempts: int = 3,
    placement: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "worker",
                "image": BUSYBOX,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", script],
            }
        ],
        **(placement or {}),
    }
    body_spec: dict[str, Any] = {
        "template": {"spec": pod_spec},
        "retry": {
            "maxAttempts": max_attempts,
            "backoff": {"strategy": "Fixed", "initialDelaySeconds": 1},
        },
        **spec,
    }
    if queue:
        body_spec["queue"] = queue
    return {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {"name": name},
        "spec": body_spec,
    }


def queue(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "JobQueue",
        "metadata": {"name": name},
        "spec": spec,
    }


async def create_all(kube: Kube, namespace: str, bodies: Iterable[dict[str, Any]]) -> int:
    jobs = f"{GROUP_PATH}/namespaces/{namespace}/backgroundjobs"
    queues = f"{GROUP_PATH}/namespaces/{namespace}/jobqueues"
    semaphore = asyncio.Semaphore(32)

    async def one(body: dict[str, Any]) -> None:
        async with semaphore:
            await kube.create(queues if body["kind"] == "JobQueue" else jobs, body, attempts=60)

    bodies = list(bodies)
    await asyncio.gather(*(one(b) for b in bodies))
    return len(bodies)


FLAKY = (
    # Roughly a third of the jobs fail their first attempt, by a hash of their name
    # (md5sum: Debian's busybox-static, which the local cluster runs, has no cksum).
    'h=$(echo "$CONVEYOR_JOB_NAME" | md5sum | cut -c1-6); '
    'if [ "$CONVEYOR_ATTEMPT" = 1 ] && [ $((0x$h % 3)) = 0 ]; then exit 1; fi; sleep {sleep}'
)


# ---------------------------------------------------------------- the harness's own eyes


class PodLedger:
    """Every pod of a namespace, as the harness's own watch sees it."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.live: dict[str, set[str]] = {}
        self.most_live: dict[str, int] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.first_created: dict[str, float] = {}
        self.uids: dict[str, set[str]] = {}
        """Every pod of a name the watch saw: two for one name is one attempt run twice."""
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _on_event(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        name = meta["name"]
        queue = labels.get("conveyor.dev/queue", "")
        live = self.live.setdefault(queue, set())
        phase = (pod.get("status") or {}).get("phase")
        if kind == "DELETED" or phase in ("Succeeded", "Failed"):
            live.discard(name)
        else:
            live.add(name)
        self.most_live[queue] = max(self.most_live.get(queue, 0), len(live))
        if kind != "DELETED":
            self.pods[name] = pod
            self.first_created.setdefault(name, time.monotonic())
            self.uids.setdefault(name, set()).add(meta.get("uid", ""))

    async def start(self) -> None:
        self._task = asyncio.create_task(
            self.kube.watch(
                f"/api/v1/namespaces/{self.namespace}/pods", self._on_event, ready=self.ready
            )
        )
        await asyncio.wait_for(self.ready.wait(), 60)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def created_after(self, moment: float) -> bool:
        return any(t > moment for t in self.first_created.values())


@dataclass
class Verdict:
    jobs: int
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)


async def verdict(
    kube: Kube,
    namespace: str,
    *,
    max_attempts: int,
    expect: str = "Succeeded",
    ledger: PodLedger | None = None,
) -> Verdict:
    """Judge every job of the namespace from the API server's objects; its pods from what
    the harness's own watch saw (pods deleted meanwhile included, and every pod ever made
    under one name), if given its `ledger`."""
    jobs, _ = await kube.list(f"{GROUP_PATH}/namespaces/{namespace}/backgroundjobs")
    if ledger is None:
        pods, _ = await kube.list(f"/api/v1/namespaces/{namespace}/pods")
    else:
        pods = list(ledger.pods.values())
    rerun = {n for n, uids in (ledger.uids if ledger else {}).items() if len(uids) > 1}
    by_job: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        owner = (pod["metadata"].get("labels") or {}).get("conveyor.dev/job")
        if owner:
            by_job.setdefault(owner, []).append(pod)
    result = Verdict(len(jobs))
    for body in jobs:
        name = body["metadata"]["name"]
        status = body.get("status") or {}
        if status.get("phase") != expect:
            result.lost.append(name)
            continue
        attempts = int(status.get("attempts") or 0)
        names = sorted(p["metadata"]["name"] for p in by_job.get(name, []))
        wanted = sorted(f"{name}-{i}" for i in range(1, attempts + 1))
        successes = sum(1 for p in by_job.get(name, []) if p["status"].get("phase") == "Succeeded")
        history = status.get("history") or []
        disrupted = sum(1 for h in history if h.get("result") == "Disrupted")
        if (
            names != wanted
            or any(n in rerun for n in names)
            or attempts - disrupted > max_attempts
            or (expect == "Succeeded" and successes != 1)
        ):
            result.duplicated.append(name)
    return result


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], within: float, what: str, every: float = 0.5
) -> float:
    """Seconds until `predicate` held; raises TimeoutError naming `what`."""
    began = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - began
        if time.monotonic() - began > within:
            raise TimeoutError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(every)


async def phases(kube: Kube, namespace: str) -> dict[str, int]:
    jobs, _ = await kube.list(f"{GROUP_PATH}/namespaces/{namespace}/backgroundjobs")
    counts: dict[str, int] = {}
    for body in jobs:
        phase = (body.get("status") or {}).get("phase") or "new"
        counts[phase] = counts.get(phase, 0) + 1
    return counts


async def all_finished(kube: Kube, namespace: str, total: int) -> bool:
    counts = await phases(kube, namespace)
    return counts.get("Succeeded", 0) + counts.get("Failed", 0) >= total


def seconds(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {statistics.median(values):.1f} s, max {max(values):.1f} s (n={len(values)})"


# ---------------------------------------------------------------- the cluster


def component(action: str, name: str) -> None:
    """tests/cluster/restart.sh ACTION NAME (stop, start, restart), state kept."""
    proc = subprocess.run(
        ["bash", str(RESTART), action, name], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"restart.sh {action} {name} failed:\n{proc.stdout}{proc.stderr}")


async def lease_holder(kube: Kube, namespace: str, name: str = "conveyor") -> str:
    try:
        lease = await kube.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")
    except (TimeoutError, ApiError, OSError):
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def log_lines(operator: OperatorProcess) -> int:
    try:
        return sum(1 for _ in operator.log_path.open("rb"))
    except FileNotFoundError:
        return 0


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [binary("kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr}")
    return proc.stdout
