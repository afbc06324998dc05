"""The operator as a local process (`python -m conveyor`), and the CRDs it needs.

One launcher for the integration tests and the benchmark: both run the
operator from this checkout against a cluster's kubeconfig, watching only
their own namespaces, with a liveness endpoint to wait on and (for the
benchmark) a metrics port to scrape. Its output goes to a log file, whose
tail a failing test prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CRDS = ("backgroundjobs.conveyor.dev", "jobqueues.conveyor.dev")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def apply_crds(kubectl: str, kubeconfig: str, *, timeout: float = 120) -> None:
    """Apply crds/ (server-side), and wait until the API server serves both resources.

    A freshly (re)started API server answers 429 "storage is (re)initializing" for a
    while; an operator started then would sit in its watch's retry backoff.
    """
    base = [kubectl, f"--kubeconfig={kubeconfig}"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, check=False)

    applied = run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    if applied.returncode != 0:
        raise RuntimeError(f"kubectl apply of crds/ failed:\n{applied.stderr}")
    for crd in CRDS:
        waited = run("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
        if waited.returncode != 0:
            raise RuntimeError(f"{crd} not Established:\n{waited.stderr}")
    deadline = time.monotonic() + timeout
    paths = [f"/apis/conveyor.dev/v1alpha1/{crd.split('.')[0]}" for crd in CRDS]
    for path in (*paths, "/api/v1/pods"):
        # one object is proof enough (kubectl's --chunk-size=1 would page through them all)
        while run("get", "--raw", f"{path}?limit=1").returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API server does not serve {path} after {timeout:.0f}s")
            time.sleep(0.5)


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: str,
        namespaces: Sequence[str],
        log_path: Path,
        *,
        extra_args: Sequence[str] = (),
        metrics: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.env = dict(env or {})
        self.namespaces = list(namespaces)
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.health_port = free_port()
        self.metrics_port = free_port() if metrics else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def cmdline(self) -> list[str]:
        args = [sys.executable, "-m", "conveyor"]
        for namespace in self.namespaces:
            args += ["--namespace", namespace]
        args.append(f"--liveness=http://127.0.0.1:{self.health_port}/healthz")
        if self.metrics_port is not None:
            args.append(f"--metrics-port={self.metrics_port}")
        return [*args, *self.extra_args]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def spawn(self) -> None:
        """Start it and return at once (`started_at` is the monotonic spawn time)."""
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, PYTHONUNBUFFERED="1", **self.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                self.cmdline,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def start(self, timeout: float = 60) -> None:
        """Spawn it and wait until its liveness endpoint answers."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the operator is not live after {timeout:.0f}s:\n{self.tail()}")
            time.sleep(0.1)

    async def until_healthy(self, within: float = 120) -> float:
        """Seconds from spawn until the liveness endpoint answered."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self.healthy):
                return time.monotonic() - self.started_at
            await asyncio.sleep(0.1)
        raise TimeoutError(f"the operator is not live after {within:.0f}s (log {self.log_path})")

    def check(self) -> None:
        """Raise if the process has exited."""
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise RuntimeError(f"the operator exited ({code}); its log ends:\n{self.tail()}")

    def healthy(self) -> bool:
        self.check()
        try:
            url = f"http://127.0.0.1:{self.health_port}/healthz"
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            return False

    def scrape(self) -> str:
        """Its Prometheus metrics as text ("" when it serves none or does not answer)."""
        if self.metrics_port is None:
            return ""
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            return ""

    def terminate(self) -> None:
        """SIGTERM, returning at once (the process shuts down on its own)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def tail(self, lines: int = 60) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""
