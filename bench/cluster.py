"""The benchmark's surroundings on the local cluster: kwok and its fake nodes,
the CRDs, namespaces, and the controller-manager's flags (bench/kcm.sh)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from tests.cluster import operator as operator_process

from bench.kube import ApiError, Kube

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
STATE = Path(os.environ.get("CONVEYOR_CLUSTER_DIR", "/var/lib/conveyor-cluster"))
CLUSTER_BIN = STATE / "bin"

BENCH_STATE = Path(os.environ.get("CONVEYOR_BENCH_STATE", "/tmp/conveyor-bench"))
KWOK_PID = BENCH_STATE / "kwok.pid"
STAGES = BENCH / "kwok" / "stages.yaml"

FAKE_NODE_LABEL = "bench.conveyor.dev/fake-node"
FAKE_TAINT_KEY = "kwok.x-k8s.io/node"


PROGRAM = "bench"
"""The program a line comes from: the chaos harness, which shares these helpers, sets its own."""


def log(msg: str) -> None:
    print(f"[{PROGRAM} {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def binary(name: str) -> str:
    path = CLUSTER_BIN / name
    return str(path) if path.exists() else name


def run(cmd: list[str], *, check: bool = True, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


# ---------------------------------------------------------------- kcm


def kcm(*args: str) -> None:
    subprocess.run(["bash", str(BENCH / "kcm.sh"), *args], check=True)


def kcm_flags() -> list[str]:
    return run(["bash", str(BENCH / "kcm.sh"), "show"]).split()


# ---------------------------------------------------------------- kwok


class Kwok:
    """kwok out of cluster, managing only nodes annotated kwok.x-k8s.io/node=fake,
    at CPU priority `nice`, with `parallelism` pod stage writes in flight at once."""

    def __init__(
        self,
        kube: Kube,
        kubeconfig: str,
        log_dir: Path,
        nodes: int,
        *,
        nice: int = 0,
        parallelism: int = 16,
        stages: Path = STAGES,
    ) -> None:
        self.kube = kube
        self.kubeconfig = kubeconfig
        self.log_path = log_dir / "kwok.log"
        self.options_path = log_dir / "kwok-options.yaml"
        self.nodes = [f"bench-kwok-{i}" for i in range(nodes)]
        self.nice = nice
        self.parallelism = parallelism
        self.stages = stages
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def options(self) -> dict[str, Any]:
        return {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            "options": {
                "podPlayStageParallelism": self.parallelism,
                "nodePlayStageParallelism": 2,
                "nodeLeaseParallelism": 2,
                "podsOnNodeSyncParallelism": 2,
            },
        }

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        stop_stale_kwok()
        self.options_path.write_text(yaml.safe_dump(self.options(), sort_keys=False))
        cmd = [
            *(["nice", "-n", str(self.nice)] if self.nice else []),
            binary("kwok"),
            f"--kubeconfig={self.kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={FAKE_TAINT_KEY}=fake",
            "--node-ip=10.254.0.1",
            "--node-lease-duration-seconds=40",
            f"--config={self.options_path}",
            f"--config={self.stages}",
        ]
        log(
            f"starting kwok (nice {self.nice}, {self.parallelism} pod stage workers, "
            f"log {self.log_path})"
        )
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - a daemon, not waited for
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        KWOK_PID.parent.mkdir(parents=True, exist_ok=True)
        KWOK_PID.write_text(str(self.proc.pid))
        await asyncio.sleep(1)
        if self.proc.poll() is not None:
            raise RuntimeError(f"kwok exited at once:\n{self.log_path.read_text()[-2000:]}")
        for name in self.nodes:
            await self._ensure_node(name)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all([await self._node_ready(n) for n in self.nodes]):
                log(f"{len(self.nodes)} fake nodes Ready: {', '.join(self.nodes)}")
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"kwok exited:\n{self.log_path.read_text()[-2000:]}")
            await asyncio.sleep(0.5)
        raise RuntimeError("the fake nodes did not become Ready within 60s (see kwok.log)")

    async def _ensure_node(self, name: str) -> None:
        capacity = {"cpu": "1000", "memory": "4Ti", "pods": "100000"}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {FAKE_TAINT_KEY: "fake"},
                "labels": {
                    FAKE_NODE_LABEL: "true",
                    "type": "kwok",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                },
            },
            "spec": {"taints": [{"key": FAKE_TAINT_KEY, "value": "fake", "effect": "NoSchedule"}]},
            "status": {"capacity": capacity, "allocatable": capacity},
        }
        await self.kube.create("/api/v1/nodes", node)

    async def _node_ready(self, name: str) -> bool:
        try:
            node = await self.kube.get(f"/api/v1/nodes/{name}")
        except ApiError:
            return False
        conds = (node.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

    async def stop(self) -> None:
        for name in self.nodes:
            try:
                await self.kube.request("DELETE", f"/api/v1/nodes/{name}", ok=(404,))
            except Exception as e:  # best effort on the way out
                log(f"could not delete node {name}: {e}")
        terminate(self.proc, 10)
        self.proc = None
        KWOK_PID.unlink(missing_ok=True)

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"kwok is not running (log {self.log_path})")


def stop_stale_kwok() -> None:
    """A kwok left by a benchmark that was killed: its pid file names it."""
    stop_stale(KWOK_PID, str(STAGES), "kwok")


def stop_stale(pid_file: Path, marker: str, what: str) -> None:
    """Stop the process pid_file names if its command line still has `marker`
    (a daemon of a benchmark that was killed, which would act on the next run)."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if marker.encode() in cmdline:
        log(f"stopping {what} left by an earlier run (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pod_placement() -> dict[str, Any]:
    """What every benchmark pod carries to land on a fake node (and nowhere else)."""
    return {
        "nodeSelector": {FAKE_NODE_LABEL: "true"},
        "tolerations": [{"key": FAKE_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    }


# ---------------------------------------------------------------- CRDs, namespaces


def apply_crds(kubeconfig: str) -> None:
    operator_process.apply_crds(binary("kubectl"), kubeconfig)


async def create_namespace(kube: Kube, name: str) -> None:
    await delete_namespace(kube, name)
    await kube.create(
        "/api/v1/namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"bench.conveyor.dev/run": "true"}},
        },
    )
    # pods are refused until the ServiceAccount controller made `default`
    deadline = time.monotonic() + 60
    while not await kube.exists(f"/api/v1/namespaces/{name}/serviceaccounts/default"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no default ServiceAccount in {name} after 60s")
        await asyncio.sleep(0.2)


COLLECTIONS = (
    "/apis/conveyor.dev/v1alpha1/namespaces/{ns}/backgroundjobs",
    "/apis/conveyor.dev/v1alpha1/namespaces/{ns}/jobqueues",
    "/apis/batch/v1/namespaces/{ns}/jobs",
    "/apis/kueue.x-k8s.io/v1beta2/namespaces/{ns}/workloads",
    "/api/v1/namespaces/{ns}/pods",
)


async def delete_namespace(kube: Kube, name: str, *, within: float = 900) -> None:
    """Delete what the phase made (collections first: the namespace controller
    works through the controller-manager's small API budget), then the
    namespace, and wait until it is gone."""
    if not await kube.exists(f"/api/v1/namespaces/{name}"):
        return
    t0 = time.monotonic()
    for path in COLLECTIONS:
        try:
            await kube.request(
                "DELETE",
                path.format(ns=name),
                params={"gracePeriodSeconds": "0", "propagationPolicy": "Background"},
                seconds=300,
                ok=(404,),
            )
        except (ApiError, aiohttp.ClientError) as e:
            log(f"deleting {path.format(ns=name)}: {e!r}")
    await kube.request("DELETE", f"/api/v1/namespaces/{name}", ok=(404, 409))
    while await kube.exists(f"/api/v1/namespaces/{name}"):
        if time.monotonic() - t0 > within:
            raise RuntimeError(f"namespace {name} still exists after {within:.0f}s")
        await asyncio.sleep(1)
    log(f"namespace {name} deleted ({time.monotonic() - t0:.0f}s)")


async def cleanup_namespace(kube: Kube, name: str) -> None:
    """delete_namespace after a phase: a failure is logged, never loses the phase's figures
    (the next phase uses its own namespace; a leftover is deleted when it is made again)."""
    try:
        await delete_namespace(kube, name)
    except Exception as error:
        log(f"cleaning up {name} failed ({error!r}); it is left behind")
