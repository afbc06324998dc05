"""The Conveyor operator as the benchmark runs it (a local process, like
`make run`), and a sampler of CPU and memory of it and of the control plane."""

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
from pathlib import Path
from typing import Any

from bench import procs
from bench.cluster import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator:
    def __init__(
        self, kubeconfig: str, namespaces: list[str], log_path: Path, extra_args: list[str]
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = namespaces
        self.log_path = log_path
        self.extra_args = extra_args
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def cmdline(self) -> list[str]:
        args = [sys.executable, "-m", "conveyor"]
        for ns in self.namespaces:
            args += ["--namespace", ns]
        args += [
            f"--metrics-port={self.metrics_port}",
            f"--liveness=http://127.0.0.1:{self.health_port}/healthz",
            *self.extra_args,
        ]
        return args

    def start(self) -> None:
        """Spawn it; returns at once (started_at is the monotonic spawn time)."""
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, PYTHONUNBUFFERED="1")
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

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    async def wait_healthy(self, within: float = 120) -> float:
        """Seconds from spawn until the liveness endpoint answers."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.check()
            if await asyncio.to_thread(self.healthy):
                return time.monotonic() - self.started_at
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the operator is not healthy after {within:.0f}s (log {self.log_path})")

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            tail = (
                self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
            )
            raise RuntimeError(f"the operator exited ({self.log_path}):\n{tail}")

    def scrape(self) -> str:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
            ) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def operator_metric(text: str, name: str) -> dict[str, float]:
    """{labels: value} of one metric family in Prometheus text."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[key[len(name) :]] = float(value)
    return out


class Sampler:
    """Samples CPU seconds and RSS of named processes once a second."""

    def __init__(self, pids: dict[str, int | None], interval: float = 1.0) -> None:
        self.pids = {k: v for k, v in pids.items() if v}
        self.interval = interval
        self.cpu0: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.peak_rss: dict[str, int] = {}
        self.hwm: dict[str, int] = {}
        self.busiest: dict[str, float] = {}  # highest CPU share of one core over 5 s
        self._history: dict[str, list[tuple[float, float]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.t0 = 0.0
        self.t1 = 0.0
        self.machine0 = 0.0
        self.load0 = 0.0

    def add(self, name: str, pid: int | None) -> None:
        if pid:
            self.pids[name] = pid
            self._sample_one(name, pid, time.monotonic())

    def _sample_one(self, name: str, pid: int, now: float) -> None:
        cpu = procs.cpu_seconds(pid)
        mem = procs.memory(pid)
        if cpu is None:
            return
        self.cpu0.setdefault(name, cpu)
        self.cpu[name] = cpu
        if mem is not None:
            self.peak_rss[name] = max(self.peak_rss.get(name, 0), mem[0])
            self.hwm[name] = mem[1]
        hist = self._history.setdefault(name, [])
        hist.append((now, cpu))
        while len(hist) > 2 and now - hist[0][0] > 5.0:
            hist.pop(0)
        if len(hist) >= 2 and now - hist[0][0] >= 4.0:
            share = (hist[-1][1] - hist[0][1]) / (now - hist[0][0])
            self.busiest[name] = max(self.busiest.get(name, 0.0), share)

    def sample(self) -> None:
        now = time.monotonic()
        for name, pid in self.pids.items():
            self._sample_one(name, pid, now)

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.machine0 = procs.machine_busy_seconds()
        self.load0 = os.getloadavg()[0]
        self.sample()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()
        self.t1 = time.monotonic()
        wall = self.t1 - self.t0
        machine = procs.machine_busy_seconds() - self.machine0
        ours = sum(self.cpu[k] - self.cpu0[k] for k in self.cpu)
        return {
            "wall_seconds": round(wall, 2),
            "machine_busy_cores": round(machine / wall, 2) if wall > 0 else None,
            "untracked_busy_cores": round(max(machine - ours, 0) / wall, 2) if wall > 0 else None,
            "load_average_1m": [round(self.load0, 2), round(os.getloadavg()[0], 2)],
            "cpu_seconds": {k: round(self.cpu[k] - self.cpu0[k], 2) for k in self.cpu},
            "cpu_share_of_one_core": {
                k: round((self.cpu[k] - self.cpu0[k]) / wall, 3) if wall > 0 else None
                for k in self.cpu
            },
            "busiest_5s_share_of_one_core": {k: round(v, 3) for k, v in self.busiest.items()},
            "peak_rss_bytes": dict(self.peak_rss),
            "vm_hwm_bytes": dict(self.hwm),
        }
