"""End-to-end fixtures: the operator image, installed by the Helm chart, driven as a user would.

The operator runs as a pod with the chart's RBAC, in namespaced mode: it
watches only the namespaces these tests create (named `e2e-*`). The
integration tests' local operator watches only `t-*` namespaces (the prefix is
$CONVEYOR_TEST_PREFIX, `t-` by default; and it runs in a separate pytest
session, `make integration`), so no job here is ever seen by two operators;
`assert_only_release_acted` checks that from the events. That is also why
these tests create their own `e2e-*` namespaces instead of using the
`namespace` fixture, whose `t-*` names the local operator watches.

Everything goes through `helm` and `kubectl`. The image is built by
images/operator/build-local.sh when the cluster is the local one (a second or
so when nothing changed); on any other cluster, set CONVEYOR_IMAGE to an image
it can pull (and CONVEYOR_TEST_JOB_IMAGE to a busybox it can pull, if it cannot
pull busybox:1.36 from Docker Hub).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.fixtures import (
    BUSYBOX_IMAGE,
    STATE_DIR,
    KubeCluster,
    run_showing_progress,
    show,
    table,
    wait_for,
)

__all__ = ["table"]  # kubectl get's table, read by the e2e tests

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "conveyor"
EXAMPLES = ROOT / "examples"
BUILD_LOCAL = ROOT / "images" / "operator" / "build-local.sh"
CACHE = Path(os.environ.get("CONVEYOR_CACHE", "/var/cache/conveyor"))
CTRD_SOCK = Path(os.environ.get("CONVEYOR_CONTAINERD_RUN", "/run/conveyor-containerd")) / (
    "containerd.sock"
)
RELEASE = "conveyor"
JOB_IMAGE = os.environ.get("CONVEYOR_TEST_JOB_IMAGE", BUSYBOX_IMAGE)


# ---------------------------------------------------------------- helm


def helm_path() -> str | None:
    candidates = [STATE_DIR / "bin" / "helm", *sorted(CACHE.glob("bin/helm-*/helm"), reverse=True)]
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("helm")


class HelmError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return (
            f"helm {' '.join(self.cmd[1:])} exited {self.returncode}:\n"
            f"{(self.stderr or '').strip()}\n{(self.output or '').strip()}"
        )


def run_helm(*args: str, kubeconfig: str | None = None, timeout: float = 300) -> str:
    binary = helm_path()
    if binary is None:
        pytest.fail("helm not found (tests/cluster/up.sh builds it)", pytrace=False)
    cmd = [binary, *args]
    if kubeconfig:
        cmd += ["--kubeconfig", kubeconfig]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise HelmError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture(scope="session")
def helm(kube_cluster: KubeCluster) -> Callable[..., str]:
    """helm(*args, timeout=300) -> stdout, against the test cluster."""

    def run(*args: str, timeout: float = 300) -> str:
        return run_helm(*args, kubeconfig=kube_cluster.kubeconfig, timeout=timeout)

    return run


# ---------------------------------------------------------------- promtool

PROMTOOL_DIR = CACHE / "prometheus"
"""Debian's prometheus package, unpacked (not installed: no service, no system change)."""


def promtool_path() -> str:
    """promtool: on PATH, else from Debian's `prometheus` package, downloaded and unpacked into
    the cache once (`apt-get download`, `dpkg-deb -x`)."""
    unpacked = PROMTOOL_DIR / "usr" / "bin" / "promtool"
    for found in (shutil.which("promtool"), unpacked):
        if found and os.access(found, os.X_OK):
            return str(found)
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        pytest.fail("promtool not found, and no apt-get to fetch Debian's prometheus package")
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".prometheus.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be fetching it
        if not unpacked.exists():
            _unpack_prometheus_package()
    return str(unpacked)


def _unpack_prometheus_package() -> None:
    def run(*cmd: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)

    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # apt's _apt user downloads into it
        fetched = run("apt-get", "download", "prometheus", cwd=work)
        if fetched.returncode != 0:  # no package lists yet
            run("apt-get", "update", "-q", cwd=work)
            fetched = run("apt-get", "download", "prometheus", cwd=work)
        debs = sorted(work.glob("prometheus_*.deb"))
        if fetched.returncode != 0 or not debs:
            pytest.fail(f"apt-get download prometheus failed:\n{fetched.stderr}", pytrace=False)
        unpacked = run("dpkg-deb", "-x", str(debs[-1]), str(work / "root"), cwd=work)
        if unpacked.returncode != 0:
            pytest.fail(f"dpkg-deb -x failed:\n{unpacked.stderr}", pytrace=False)
        (work / "root").rename(PROMTOOL_DIR)


# ---------------------------------------------------------------- image


def _is_local_cluster(cluster: KubeCluster) -> bool:
    local = STATE_DIR / "kubeconfig"
    return local.exists() and Path(cluster.kubeconfig).resolve() == local.resolve()


@pytest.fixture(scope="session")
def operator_image(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> str:
    """The operator image ref: $CONVEYOR_IMAGE, else built and imported by build-local.sh."""
    if image := os.environ.get("CONVEYOR_IMAGE"):
        return image
    if not (_is_local_cluster(kube_cluster) and CTRD_SOCK.exists()):
        pytest.fail(
            "the cluster is not the local one (tests/cluster/up.sh): set CONVEYOR_IMAGE to an "
            "operator image it can pull (docker build -f images/operator/Dockerfile ...)",
            pytrace=False,
        )
    log = tmp_path_factory.mktemp("image") / "build-local.log"
    show(pytestconfig, f"\n[tests] the operator image: images/operator/build-local.sh (log {log})")
    status, out = run_showing_progress(
        ["bash", str(BUILD_LOCAL)], log, pytestconfig, progress=("[image",), result_on_stdout=True
    )
    if status != 0:
        pytest.fail(
            f"images/operator/build-local.sh failed (exit {status}):\n"
            + "\n".join(log.read_text(errors="replace").splitlines()[-30:]),
            pytrace=False,
        )
    return out.strip().splitlines()[-1]


def split_image(ref: str) -> tuple[str, str]:
    """repository and tag of an image reference (a registry port is not a tag)."""
    repository, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        raise ValueError(f"image {ref!r} has no explicit tag")
    return repository, tag


# ---------------------------------------------------------------- namespaces


@dataclasses.dataclass
class Namespaces:
    """Creates `e2e-<what>-<suffix>` namespaces and deletes them at the end."""

    cluster: KubeCluster
    suffix: str
    created: list[str] = dataclasses.field(default_factory=list)

    def create(self, what: str, *labels: str) -> str:
        name = f"e2e-{what}-{self.suffix}"[:63].rstrip("-")
        self.cluster.kubectl("create", "namespace", name)
        self.cluster.kubectl("label", "namespace", name, "conveyor.test/managed=true", *labels)
        self.created.append(name)
        # pods need the default ServiceAccount and the root CA ConfigMap
        wait_for(
            lambda: (
                self.cluster.kubectl(
                    "get",
                    "-n",
                    name,
                    "serviceaccount/default",
                    "configmap/kube-root-ca.crt",
                    check=False,
                ).returncode
                == 0
            ),
            timeout=60,
            desc=f"namespace {name} ready for pods",
        )
        return name

    def delete_all(self) -> None:
        for name in self.created:
            self.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def e2e_namespaces(kube_cluster: KubeCluster) -> Iterator[Namespaces]:
    namespaces = Namespaces(kube_cluster, uuid.uuid4().hex[:6])
    try:
        yield namespaces
    finally:
        namespaces.delete_all()


# ---------------------------------------------------------------- the release


@dataclasses.dataclass
class Release:
    """A Helm release of the chart: its namespace, the namespaces it watches, helpers."""

    name: str
    namespace: str
    watched: list[str]
    image: str
    cluster: KubeCluster
    helm: Callable[..., str]
    values_file: Path
    extra_values: dict[str, Any] = dataclasses.field(default_factory=dict)
    """More values of this release (say, the dashboard's)."""

    def values(self) -> dict[str, Any]:
        repository, tag = split_image(self.image)
        return {
            "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
            "watchNamespaces": self.watched,
            "test": {"jobImage": JOB_IMAGE, "timeoutSeconds": 150},
            "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}},
            **self.extra_values,
        }

    def install(self) -> str:
        """`helm install` with these values, waiting until the operator is ready."""
        return self._apply("install")

    def upgrade(self, watched: list[str]) -> str:
        """`helm upgrade` to watch `watched`, waiting until the new operator pod is ready."""
        self.watched = watched
        return self._apply("upgrade")

    def _apply(self, command: str) -> str:
        self.values_file.write_text(yaml.safe_dump(self.values()))
        return self.helm(
            command,
            self.name,
            str(CHART),
            "-n",
            self.namespace,
            "-f",
            str(self.values_file),
            "--wait",
            "--timeout",
            "3m",
        )

    def uninstall(self) -> str:
        return self.helm("uninstall", self.name, "-n", self.namespace, "--wait", "--timeout", "2m")

    def installed(self) -> bool:
        out = self.helm("list", "-n", self.namespace, "-q", "--filter", f"^{self.name}$")
        return bool(out.strip())

    @property
    def deployment(self) -> str:
        return self.name  # the chart's fullname for a release named like the chart

    def operator_pods(self) -> list[dict[str, Any]]:
        """The release's operator pods that are not on their way out."""
        out = self.cluster.kubectl(
            "get",
            "pods",
            "-n",
            self.namespace,
            "-o",
            "json",
            "-l",
            f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component=operator",
        ).stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def leader(self) -> str:
        """The pod holding the release's leader-election Lease ("" when none does)."""
        proc = self.cluster.kubectl(
            "get",
            "lease",
            self.deployment,
            "-n",
            self.namespace,
            "-o",
            "jsonpath={.spec.holderIdentity}",
            check=False,
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    def operator_log(self, tail: int = 120) -> str:
        """The leader's log (else any replica's)."""
        leader = self.leader()
        proc = self.cluster.kubectl(
            "logs",
            "-n",
            self.namespace,
            f"pod/{leader}" if leader else f"deployment/{self.deployment}",
            f"--tail={tail}",
            check=False,
            timeout=30,
        )
        lines = [
            ln for ln in (proc.stdout or proc.stderr).splitlines() if "aiohttp.access" not in ln
        ]
        return "\n".join(lines)


def _release(
    *,
    kube_cluster: KubeCluster,
    helm: Callable[..., str],
    operator_image: str,
    namespace: str,
    watched: list[str],
    tmp: Path,
) -> Release:
    return Release(
        name=RELEASE,
        namespace=namespace,
        watched=watched,
        image=operator_image,
        cluster=kube_cluster,
        helm=helm,
        values_file=tmp / f"values-{namespace}.yaml",
    )


@pytest.fixture(scope="session")
def release(
    kube_cluster: KubeCluster,
    helm: Callable[..., str],
    operator_image: str,
    e2e_namespaces: Namespaces,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Release]:
    """The chart installed into its own namespace, watching one jobs namespace (more by upgrade)."""
    # Helm installs crds/ only when missing and never upgrades them: like a user upgrading
    # (charts/conveyor/README.md), apply the chart's CRDs over older ones first.
    existing = kube_cluster.kubectl(
        "get", "crd", "backgroundjobs.conveyor.dev", "jobqueues.conveyor.dev", check=False
    )
    if existing.returncode == 0:
        kube_cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds")
        )
    # The operator's own pods must pass the restricted Pod Security Standard.
    operator_ns = e2e_namespaces.create("conveyor", "pod-security.kubernetes.io/enforce=restricted")
    jobs_ns = e2e_namespaces.create("jobs")
    rel = _release(
        kube_cluster=kube_cluster,
        helm=helm,
        operator_image=operator_image,
        namespace=operator_ns,
        watched=[jobs_ns],
        tmp=tmp_path_factory.mktemp("helm"),
    )
    rel.install()
    try:
        yield rel
    finally:
        if rel.installed():
            rel.uninstall()


@pytest.fixture(scope="session")
def make_release(
    kube_cluster: KubeCluster,
    helm: Callable[..., str],
    operator_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str, list[str]], Release]:
    """A further release (not installed yet) into `namespace`, watching `watched`."""

    def make(namespace: str, watched: list[str]) -> Release:
        return _release(
            kube_cluster=kube_cluster,
            helm=helm,
            operator_image=operator_image,
            namespace=namespace,
            watched=watched,
            tmp=tmp_path_factory.mktemp("helm"),
        )

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    for value in funcargs.values():
        if isinstance(value, Release):
            report.sections.append((f"operator log ({value.namespace})", value.operator_log()))
            break


def assert_only_release_acted(cluster: KubeCluster, namespace: str, release: Release) -> None:
    """Every event Conveyor posted in `namespace` came from this release's operator pod(s)."""
    out = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    instances = {
        e.get("reportingInstance") or ""
        for e in json.loads(out)["items"]
        if (e.get("source") or {}).get("component") == "conveyor"
        or e.get("reportingComponent") == "conveyor.dev/operator"
    }
    strangers = {i for i in instances if not i.startswith(f"{release.deployment}-")}
    assert not strangers, (
        f"another Conveyor operator ({sorted(strangers)}) acted in {namespace}: run the e2e "
        "tests apart from any operator that watches all namespaces (make integration runs them "
        "after the integration tests)"
    )
