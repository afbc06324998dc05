"""What the benchmark reads off the operator it runs (`tests.cluster.operator`, the
launcher the integration tests use too): its metrics, and a sampler of CPU and
memory of it and of the control plane."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from bench import procs


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
