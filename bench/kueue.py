"""Kueue, the peer a user who wants queues with quotas would install, run by the
`kueue` phase on the same control plane.

Its manager is built from its Go module by `tests/cluster/build-binaries.sh
kueue` into /var/cache/conveyor/bin/kueue-<version>/ (with the module's CRDs
beside it), only when a benchmark asks for it: `up.sh`, `make test` and
`make demo` never build it. It runs out of cluster with the admin kubeconfig,
like the operator, managing only the phase's namespace.

Jobs reach it as batch/v1 Jobs created suspended with the
`kueue.x-k8s.io/queue-name` label, so none of its webhooks is needed (the
mutating one would only set `suspend`), and none is registered with the API
server. The manager still starts a webhook server and reads a metrics
certificate, so the harness gives it a self-signed pair for each (its own
certificate management, which would patch webhook configurations and CRDs
that do not exist here, is off). The metrics path is fixed in its main.go, so
that pair is written to /etc/kueue/metrics/certs; its metrics server itself
is off (bindAddress "0").
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from tests.cluster.operator import free_port

from bench import workloads
from bench.cluster import ROOT, binary, log, run, terminate
from bench.cluster import stop_stale as stop_stale_process
from bench.kube import ApiError, Kube

CACHE = Path(os.environ.get("CONVEYOR_CACHE", "/var/cache/conveyor"))
API = "/apis/kueue.x-k8s.io/v1beta2"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
METRICS_CERTS = Path("/etc/kueue/metrics/certs")  # cmd/kueue/main.go reads it there
LOCAL_QUEUE = "bench-lq"
PID_FILE = Path(os.environ.get("CONVEYOR_BENCH_STATE", "/tmp/conveyor-bench")) / "kueue.pid"


def version() -> str:
    for line in (ROOT / "tests" / "cluster" / "versions.env").read_text().splitlines():
        if line.startswith("KUEUE_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("KUEUE_VERSION is missing from tests/cluster/versions.env")


def home() -> Path:
    return CACHE / "bin" / f"kueue-{version()}"


def ensure_built() -> Path:
    """The manager binary, built first if this machine has none of this version
    (about 7 minutes of both cores, at the lowest priority)."""
    if not (home() / ".complete").exists():
        log(f"building Kueue {version()} from its Go module (once per machine; nice 19)")
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "nice",
                "-n",
                "19",
                "flock",
                str(CACHE / ".build.lock"),
                "bash",
                str(ROOT / "tests" / "cluster" / "build-binaries.sh"),
                "kueue",
            ],
            check=True,
        )
    return home() / "kueue"


def apply_crds(kubeconfig: str) -> None:
    kubectl = [binary("kubectl"), f"--kubeconfig={kubeconfig}"]
    run([*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(home() / "crds")])
    for crd in ("clusterqueues", "localqueues", "resourceflavors", "workloads"):
        run([*kubectl, "wait", "--for=condition=Established", f"crd/{crd}.kueue.x-k8s.io"])


def self_signed(directory: Path) -> Path:
    """tls.crt and tls.key for 127.0.0.1 (nothing ever connects: no webhook is registered)."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "tls.crt").exists() or not (directory / "tls.key").exists():
        run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "365",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(directory / "tls.key"),
                "-out",
                str(directory / "tls.crt"),
            ]
        )
    return directory


# ---------------------------------------------------------------- objects


def _quantity(value: str | None) -> float:
    """A resource quantity as a number of cores or bytes ('100m' -> 0.1, '64Mi' -> 67108864)."""
    if not value:
        return 0.0
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix in sorted(suffixes, key=len, reverse=True):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * suffixes[suffix]
    return float(value)


def quota(template: dict[str, Any], pods: int) -> dict[str, str]:
    """The ClusterQueue's nominal quota: `pods` pods, and the CPU and memory
    those pods request (the benchmark's pods request none, so the pod count binds)."""
    cpu = mem = 0.0
    for c in template["spec"]["containers"]:
        requests = (c.get("resources") or {}).get("requests") or {}
        cpu += _quantity(requests.get("cpu"))
        mem += _quantity(requests.get("memory"))
    return {
        "cpu": f"{round(cpu * pods * 1000)}m",
        "memory": str(round(mem * pods)),
        "pods": str(pods),
    }


def cluster_queue_name(namespace: str) -> str:
    return namespace  # cluster-scoped: named after the phase's namespace


def objects(
    namespace: str, template: dict[str, Any], pods: int
) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) to create, in order: a ResourceFlavor, a
    ClusterQueue with a quota of `pods` pods for this namespace only, a LocalQueue."""
    name = cluster_queue_name(namespace)
    q = quota(template, pods)
    return [
        (
            f"{API}/resourceflavors",
            {
                "apiVersion": "kueue.x-k8s.io/v1beta2",
                "kind": "ResourceFlavor",
                "metadata": {"name": name},
            },
        ),
        (
            f"{API}/clusterqueues",
            {
                "apiVersion": "kueue.x-k8s.io/v1beta2",
                "kind": "ClusterQueue",
                "metadata": {"name": name},
                "spec": {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                    "resourceGroups": [
                        {
                            "coveredResources": list(q),
                            "flavors": [
                                {
                                    "name": name,
                                    "resources": [
                                        {"name": r, "nominalQuota": v} for r, v in q.items()
                                    ],
                                }
                            ],
                        }
                    ],
                },
            },
        ),
        (
            f"{API}/namespaces/{namespace}/localqueues",
            {
                "apiVersion": "kueue.x-k8s.io/v1beta2",
                "kind": "LocalQueue",
                "metadata": {"name": LOCAL_QUEUE, "namespace": namespace},
                "spec": {"clusterQueue": name},
            },
        ),
    ]


def configuration(
    namespace: str, cert_dir: Path, *, health_port: int, qps: float, burst: int
) -> dict[str, Any]:
    """The configuration Kueue ships (config/components/manager), as a user
    installing it gets it (its controllers' concurrency among it), with what
    running out of cluster on a shared machine needs changed."""
    config: dict[str, Any] = yaml.safe_load((home() / "controller_manager_config.yaml").read_text())
    config.update(
        {
            # this phase's namespace only: other users' Jobs on the cluster are left alone
            "manageJobsWithoutQueueName": False,
            "managedJobsNamespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": namespace}
            },
            "internalCertManagement": {"enable": False},
            "leaderElection": {"leaderElect": False},
            "webhook": {"host": "127.0.0.1", "port": free_port(), "certDir": str(cert_dir)},
            "metrics": {"bindAddress": "0"},
            "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
            "clientConnection": {"qps": qps, "burst": burst},
            # the others' CRDs are not installed; "pod" and the like would need the webhooks
            "integrations": {"frameworks": ["batch/job"]},
            # its visibility API server would listen on :8082 with certificates in /visibility
            "featureGates": {"VisibilityOnDemand": False},
        }
    )
    return config


# ---------------------------------------------------------------- the manager


def manager_for(args: Any, kubeconfig: str, namespace: str, log_dir: Path) -> KueueManager:
    """The manager for a phase, with the client budget the options give it."""
    return KueueManager(
        kubeconfig, namespace, log_dir, qps=args.kueue_client_qps, burst=args.kueue_client_burst
    )


class KueueManager:
    """The manager as a local process; its log goes to the run's directory."""

    def __init__(
        self, kubeconfig: str, namespace: str, log_dir: Path, *, qps: float, burst: int
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_dir / "kueue.log"
        self.config_path = log_dir / "kueue-config.yaml"
        self.cert_dir = log_dir / "kueue-webhook-certs"
        self.health_port = free_port()
        self.qps, self.burst = qps, burst
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.cmdline: list[str] = []

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def spawn(self) -> None:
        exe = ensure_built()
        stop_stale()
        self_signed(self.cert_dir)
        self_signed(METRICS_CERTS)
        config = configuration(
            self.namespace,
            self.cert_dir,
            health_port=self.health_port,
            qps=self.qps,
            burst=self.burst,
        )
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.cmdline = [
            str(exe),
            f"--config={self.config_path}",
            f"--kubeconfig={self.kubeconfig}",
            "--zap-log-level=info",
        ]
        log(f"starting Kueue's manager (log {self.log_path})")
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmdline,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        PID_FILE.parent.mkdir(parents=True, exist_ok=True)
        PID_FILE.write_text(str(self.proc.pid))

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/readyz", timeout=2
            ) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"Kueue's manager is not running (log {self.log_path})")

    def stop(self) -> None:
        terminate(self.proc, 15)
        self.proc = None
        PID_FILE.unlink(missing_ok=True)


def stop_stale() -> None:
    """A manager left by a benchmark that was killed would act on the next
    run's Jobs too: its pid file names it."""
    stop_stale_process(PID_FILE, str(home() / "kueue"), "Kueue's manager")


# ---------------------------------------------------------------- a phase's setup


async def start(kube: Kube, manager: KueueManager, namespace: str, pods: int) -> dict[str, Any]:
    """CRDs, the queues of a quota of `pods` pods, and the manager, ready and
    with its ClusterQueue active; returns what the phase reports of it."""
    await asyncio.to_thread(apply_crds, manager.kubeconfig)
    await uninstall(kube, namespace, within=5)  # a killed run's queues, of another quota
    for path, obj in objects(namespace, workloads.pod_template(fail=False, run_for=None), pods):
        await kube.create(path, obj)
    await asyncio.to_thread(manager.spawn)
    deadline = time.monotonic() + 120
    while not await asyncio.to_thread(manager.ready):
        manager.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kueue's manager not ready after 120 s (log {manager.log_path})")
        await asyncio.sleep(0.5)
    ready_s = time.monotonic() - manager.started_at
    name = cluster_queue_name(namespace)
    while not _active(await kube.get(f"{API}/clusterqueues/{name}")):
        manager.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"ClusterQueue {name} not Active after 120 s")
        await asyncio.sleep(0.5)
    return {
        "kueue_version": version(),
        "kueue_ready_after_s": round(ready_s, 2),
        "kueue_cmdline": " ".join(manager.cmdline),
        "cluster_queue_quota": quota(workloads.pod_template(fail=False, run_for=None), pods),
    }


def _active(cq: dict[str, Any]) -> bool:
    conds = (cq.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Active" and c.get("status") == "True" for c in conds)


async def uninstall(kube: Kube, namespace: str, *, within: float = 120) -> None:
    """Delete the phase's ClusterQueue and ResourceFlavor (the manager, still
    running, lifts their in-use finalizers); on a stuck one the finalizers are
    removed, so that no leftover blocks the next run."""
    name = cluster_queue_name(namespace)
    for kind in ("clusterqueues", "resourceflavors"):
        path = f"{API}/{kind}/{name}"
        try:
            await kube.request("DELETE", path, ok=(404,))
            deadline = time.monotonic() + within
            while await kube.exists(path):
                if time.monotonic() > deadline:
                    log(f"{kind}/{name} still there after {within:.0f}s: removing its finalizers")
                    await kube.request(
                        "PATCH",
                        path,
                        body={"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                        ok=(404,),
                    )
                    break
                await asyncio.sleep(0.5)
        except (ApiError, aiohttp.ClientError) as e:
            log(f"deleting {path}: {e!r}")


# ---------------------------------------------------------------- where Jobs wait in Kueue


class WorkloadTimeline:
    """When each Job's Workload was first seen, admitted (quota reserved and
    admission checks passed) and marked finished, from the harness's watch:
    with the Job's own create and finish, it shows where Kueue's Jobs wait."""

    def __init__(self) -> None:
        self.at: dict[str, dict[str, float]] = {}  # by the owning Job's name

    def on_event(self, kind: str, obj: dict[str, Any], now: float) -> None:
        if kind == "DELETED":
            return
        owner = workloads.owner_name(obj)
        if owner is None:
            return
        marks = self.at.setdefault(owner, {})
        marks.setdefault("created", now)
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("status") == "True" and cond.get("type") in ("Admitted", "Finished"):
                marks.setdefault(cond["type"].lower(), now)

    def summary(
        self, job_seen: dict[str, float], job_finished: dict[str, tuple[float, str]]
    ) -> dict[str, Any]:
        def lags(pairs: list[tuple[float, float]]) -> dict[str, float | None]:
            values = sorted(b - a for a, b in pairs)
            if not values:
                return {"p50": None, "p99": None}
            return {
                "p50": round(1000 * values[len(values) // 2], 1),
                "p99": round(1000 * values[min(len(values) - 1, int(len(values) * 0.99))], 1),
            }

        m = self.at
        admitted = sorted(w["admitted"] for w in m.values() if "admitted" in w)
        span = admitted[-1] - admitted[0] if len(admitted) > 1 else 0.0
        return {
            "workloads": len(m),
            "job_created_to_workload_ms": lags(
                [(job_seen[j], w["created"]) for j, w in m.items() if j in job_seen]
            ),
            "workload_to_admitted_ms": lags(
                [(w["created"], w["admitted"]) for w in m.values() if "admitted" in w]
            ),
            "job_finished_to_workload_finished_ms": lags(
                [
                    (job_finished[j][0], w["finished"])
                    for j, w in m.items()
                    if "finished" in w and j in job_finished
                ]
            ),
            "admissions_per_second": round((len(admitted) - 1) / span, 2) if span else None,
        }


async def release_workloads(kube: Kube, namespace: str) -> None:
    """Lift the finalizers of Workloads a killed run left in the namespace with
    no manager to lift them, so that deleting the namespace does not hang."""
    try:
        items, _ = await kube.list(f"{API}/namespaces/{namespace}/workloads")
    except ApiError:
        return  # no namespace, or no Kueue CRDs yet
    held = [w for w in items if w["metadata"].get("finalizers")]
    if held:
        log(f"lifting the finalizers of {len(held)} Workloads left in {namespace}")
    for w in held:
        await kube.request(
            "PATCH",
            f"{API}/namespaces/{namespace}/workloads/{w['metadata']['name']}",
            body={"metadata": {"finalizers": None}},
            content_type="application/merge-patch+json",
            ok=(404,),
        )
