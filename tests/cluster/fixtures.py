"""pytest plugin: a real Kubernetes cluster for tests.

Load it from tests/conftest.py with ``pytest_plugins = ["tests.cluster.fixtures"]``
(tests/cluster/conftest.py loads it too, for running tests/cluster alone).

Fixtures:
  kube_cluster (session)  the cluster $KUBECONFIG names if it answers /version,
                          otherwise the one tests/cluster/up.sh starts (or reuses).
  namespace (function)    a fresh namespace with its default ServiceAccount, named
                          `$CONVEYOR_TEST_PREFIX<test>-<random>` (prefix `t-` by
                          default); deleted afterwards (not waited for).
  kubectl (function)      kubectl(*args, input=None, timeout=120) -> stdout;
                          raises KubectlError (with stderr) on a non-zero exit.

The ``kubernetes`` package is imported lazily, so loading this plugin costs
nothing for tests that do not use these fixtures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

CLUSTER_SCRIPTS = Path(__file__).resolve().parent
STATE_DIR = Path(os.environ.get("CONVEYOR_CLUSTER_DIR", "/var/lib/conveyor-cluster"))
UP_LOG = Path(os.environ.get("CONVEYOR_UP_LOG", "/tmp/conveyor-cluster-up.log"))

# Every namespace the tests create starts with this, and the integration tests' operator
# watches `<prefix>*` only: two sessions on one cluster with different prefixes (say `t-`
# and `h-`) never see each other's jobs.
TEST_PREFIX = os.environ.get("CONVEYOR_TEST_PREFIX", "t-")

# Images built by up.sh without a registry; use imagePullPolicy Never/IfNotPresent. The
# busybox is named as on Docker Hub (up.sh imports Debian's busybox-static under that
# name), so the same manifests run on any cluster that can pull from there.
BUSYBOX_IMAGE = "busybox:1.36"
PAUSE_IMAGE = "conveyor.local/pause:3.10"

T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: needs a real Kubernetes cluster (tests/cluster/up.sh)"
    )


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return (
            f"kubectl {' '.join(self.cmd[1:])} exited {self.returncode}:\n"
            f"{(self.stderr or '').strip() or (self.output or '').strip()}"
        )


def wait_for(
    fn: Callable[[], T], timeout: float = 60, interval: float = 0.25, desc: str = "condition"
) -> T:
    """Call fn until it returns something truthy; return that.

    An AssertionError from fn is a verdict, not a "not yet": it propagates at once. Any
    other exception (the API server busy, an object not there yet) counts as "not yet"
    until the deadline, and the timeout's message names the last one.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except AssertionError:
            raise
        except Exception as exc:  # retried until the deadline
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {desc} (last: {last!r})")
        time.sleep(interval)


@dataclasses.dataclass
class KubeCluster:
    kubeconfig: str
    bin_dir: str | None
    started_by_us: bool = False
    _api_client: Any = dataclasses.field(default=None, repr=False)

    # -- clients -----------------------------------------------------------
    @property
    def api_client(self):
        if self._api_client is None:
            from kubernetes import config

            self._api_client = config.new_client_from_config(config_file=self.kubeconfig)
        return self._api_client

    def api(self, cls):
        """An API object on this cluster, e.g. ``kube_cluster.api(client.CoreV1Api)``."""
        return cls(self.api_client)

    @property
    def core(self):
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    def client_for_token(self, token: str):
        """An ApiClient that authenticates with a bearer token (e.g. a ServiceAccount's)."""
        from kubernetes import client

        base = self.api_client.configuration
        cfg = client.Configuration()
        cfg.host = base.host
        cfg.ssl_ca_cert = base.ssl_ca_cert
        cfg.verify_ssl = base.verify_ssl
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(cfg)

    # -- kubectl -----------------------------------------------------------
    @property
    def kubectl_path(self) -> str:
        if self.bin_dir and os.access(Path(self.bin_dir) / "kubectl", os.X_OK):
            return str(Path(self.bin_dir) / "kubectl")
        found = shutil.which("kubectl")
        if not found:
            raise RuntimeError("kubectl not found (run tests/cluster/up.sh or put kubectl on PATH)")
        return found

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess:
        cmd = [self.kubectl_path, "--kubeconfig", self.kubeconfig, *args]
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    # -- waiting -----------------------------------------------------------
    wait_for = staticmethod(wait_for)

    def wait_for_pod_phase(
        self, namespace: str, name: str, phases: Iterable[str], timeout: float = 120
    ):
        """Wait until the pod is in one of ``phases``; fail early if it ends in another phase."""
        wanted = set(phases)
        terminal = {"Succeeded", "Failed"}
        core = self.core
        pod = None

        def check():
            nonlocal pod
            pod = core.read_namespaced_pod(name, namespace)
            phase = pod.status.phase
            if phase in wanted:
                return pod
            if phase in terminal:
                raise AssertionError(
                    f"pod {namespace}/{name} ended {phase}, wanted {sorted(wanted)}:\n"
                    f"{self.describe_pod(namespace, name)}"
                )
            return None

        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result is not None:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"pod {namespace}/{name} not {sorted(wanted)} after {timeout}s "
                    f"(phase {pod.status.phase if pod else None}):\n"
                    f"{self.describe_pod(namespace, name)}"
                )
            time.sleep(0.25)

    def describe_pod(self, namespace: str, name: str) -> str:
        proc = self.kubectl("describe", "pod", "-n", namespace, name, check=False, timeout=30)
        return proc.stdout or proc.stderr

    # -- images ------------------------------------------------------------
    def import_image(self, *args: str) -> str:
        """Run tests/cluster/import-image.sh (local cluster only), e.g.
        ``import_image("--rootfs", d, "--name", "conveyor.local/app:0.1", "--cmd", '["/app"]')``."""
        proc = subprocess.run(
            ["bash", str(CLUSTER_SCRIPTS / "import-image.sh"), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"import-image.sh failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout


def table(output: str) -> list[dict[str, str]]:
    """Rows of `kubectl get` output as dicts keyed by column header ("LAST FAILURE" included)."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if not lines:
        return []
    columns = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    rows = []
    for line in lines[1:]:
        row = {}
        for k, (start, name) in enumerate(columns):
            end = columns[k + 1][0] if k + 1 < len(columns) else None
            row[name] = line[start:end].strip()
        rows.append(row)
    return rows


def _cluster_answers(kubeconfig: str) -> bool:
    try:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=kubeconfig)
        try:
            # /version through the generated client: ApiClient.call_api's
            # signature differs between client major versions.
            return bool(client.VersionApi(api).get_code(_request_timeout=5).git_version)
        finally:
            api.close()
    except Exception:  # unreachable, bad config, not ready...
        return False


def show(config: pytest.Config, line: str) -> None:
    """Print a line on the terminal now, even from inside a captured fixture."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(line, flush=True)
        return
    with capture.global_and_fixture_disabled():
        print(line, flush=True)


def run_showing_progress(
    cmd: list[str],
    log_path: Path,
    config: pytest.Config,
    *,
    progress: tuple[str, ...],
    result_on_stdout: bool = False,
) -> tuple[int, str]:
    """Run a long setup command (up.sh, the image build) for a fixture: its whole output
    goes to `log_path`, and its progress lines (those starting with one of `progress`)
    also to the terminal as they come, past pytest's capture, since a cold build takes
    minutes and a silent terminal or CI log looks hung. With `result_on_stdout`, only
    stderr is logged and stdout is returned. Returns (exit status, stdout)."""
    with log_path.open("w") as log, tempfile.TemporaryFile("w+") as result:
        proc = subprocess.Popen(
            cmd,
            stdout=result if result_on_stdout else subprocess.PIPE,
            stderr=subprocess.PIPE if result_on_stdout else subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        stream = proc.stderr if result_on_stdout else proc.stdout
        assert stream is not None
        # up.sh's daemons detach and close our pipe, so this ends when the command does.
        for line in stream:
            log.write(line)
            log.flush()
            if line.startswith(progress):
                show(config, line.rstrip("\n"))
        status = proc.wait()
        result.seek(0)
        return status, result.read()


def _start_local_cluster(config: pytest.Config) -> str:
    if os.geteuid() != 0:
        pytest.fail(
            "no reachable cluster in $KUBECONFIG, and starting one (tests/cluster/up.sh) "
            "needs root",
            pytrace=False,
        )
    show(config, f"\n[tests] bringing up the local cluster: tests/cluster/up.sh (log {UP_LOG})")
    status, _ = run_showing_progress(
        ["bash", str(CLUSTER_SCRIPTS / "up.sh")],
        UP_LOG,
        config,
        progress=("[cluster", "[build"),
    )
    if status != 0:
        tail = UP_LOG.read_text(errors="replace").splitlines()[-40:]
        pytest.fail(
            f"tests/cluster/up.sh failed (exit {status}, log {UP_LOG}):\n" + "\n".join(tail),
            pytrace=False,
        )
    return str(STATE_DIR / "kubeconfig")


@pytest.fixture(scope="session")
def kube_cluster(pytestconfig: pytest.Config) -> Iterator[KubeCluster]:
    env_kubeconfig = os.environ.get("KUBECONFIG", "")
    started = False
    if (
        env_kubeconfig
        and all(Path(p).is_file() for p in env_kubeconfig.split(os.pathsep) if p)
        and _cluster_answers(env_kubeconfig)
    ):
        kubeconfig = env_kubeconfig
    else:
        kubeconfig = _start_local_cluster(pytestconfig)
        started = True
    if not _cluster_answers(kubeconfig):
        pytest.fail(f"cluster in {kubeconfig} does not answer /version", pytrace=False)

    bin_dir = None
    if (STATE_DIR / "bin" / "kubectl").exists():
        bin_dir = str(STATE_DIR / "bin")
    elif found := shutil.which("kubectl"):
        bin_dir = str(Path(found).parent)

    saved = {k: os.environ.get(k) for k in ("KUBECONFIG", "PATH")}
    os.environ["KUBECONFIG"] = kubeconfig
    if bin_dir and bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    from kubernetes import config

    config.load_kube_config(config_file=kubeconfig)  # for code that uses client.XxxApi() directly
    cluster = KubeCluster(kubeconfig=kubeconfig, bin_dir=bin_dir, started_by_us=started)
    try:
        yield cluster
    finally:
        if cluster._api_client is not None:
            cluster._api_client.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _namespace_name(nodeid: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", nodeid.rsplit("::", 1)[-1].lower()).strip("-")[:40].strip("-")
    return f"{TEST_PREFIX}{base or 'test'}-{uuid.uuid4().hex[:6]}"


@contextlib.contextmanager
def fresh_namespace(cluster: KubeCluster, name: str) -> Iterator[str]:
    """A new namespace, ready for pods; deleted afterwards (not waited for)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = cluster.core
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"conveyor.test/managed": "true"})
        )
    )
    try:
        # Pods need the default ServiceAccount and the kube-root-ca.crt ConfigMap
        # (projected token volume); both are created by the controller-manager.
        wait_for(
            lambda: core.read_namespaced_service_account("default", name),
            timeout=60,
            desc=f"ServiceAccount {name}/default",
        )
        wait_for(
            lambda: core.read_namespaced_config_map("kube-root-ca.crt", name),
            timeout=60,
            desc=f"ConfigMap {name}/kube-root-ca.crt",
        )
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background", grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def namespace(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, with the prefix the test operator watches."""
    with fresh_namespace(kube_cluster, _namespace_name(request.node.nodeid)) as name:
        yield name


@pytest.fixture
def kubectl(kube_cluster: KubeCluster) -> Callable[..., str]:
    def run(*args: str, input: str | None = None, timeout: float = 120) -> str:
        return kube_cluster.kubectl(*args, input=input, timeout=timeout).stdout

    return run
