"""Processes: CPU seconds and memory from /proc, the cluster's components by
their pid files, and other Conveyor operators that would share our jobs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from conveyor.core import namespaces

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
STATE = Path(os.environ.get("CONVEYOR_CLUSTER_DIR", "/var/lib/conveyor-cluster"))
COMPONENTS = ("kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of the process (all its threads), in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    # fields[0] is state (field 3); utime, stime are fields 14, 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat), any process."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def memory(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in bytes: the resident set now and its peak."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def component_pid(name: str) -> int | None:
    """The pid in the cluster's pid file, if that process runs the component's binary."""
    try:
        pid = int((STATE / "pids" / f"{name}.pid").read_text().strip())
        exe = str(Path(f"/proc/{pid}/exe").readlink()).removesuffix(" (deleted)")
    except (OSError, ValueError):
        return None
    return pid if Path(exe).name == name else None


def start_time(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def cluster_instance() -> str | None:
    """Changes whenever the cluster is restarted (the API server's pid and start)."""
    pid = component_pid("kube-apiserver")
    return None if pid is None else f"{pid}:{start_time(pid)}"


@dataclass
class OtherOperator:
    pid: int
    cmdline: list[str]
    namespaces: list[str]  # empty: cluster-wide

    def describe(self) -> str:
        scope = "all namespaces" if not self.namespaces else ", ".join(self.namespaces)
        return f"pid {self.pid} ({scope}): {' '.join(self.cmdline)[:160]}"


def _operator_namespaces(args: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a in ("-n", "--namespace") and i + 1 < len(args):
            out.append(args[i + 1])
            i += 1
        elif a.startswith("--namespace="):
            out.append(a.split("=", 1)[1])
        elif a.startswith("-n") and len(a) > 2:
            out.append(a[2:])
        i += 1
    return out


def conveyor_operators(exclude: set[int]) -> list[OtherOperator]:
    """Running Conveyor operators: `python -m conveyor ...`, the `conveyor` entry
    point (local venv or the operator image, whose containers run on this host)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid in exclude or pid == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if not args or "python" not in Path(args[0]).name:
            continue
        rest: list[str] | None = None
        for i, a in enumerate(args[1:], start=1):
            if a == "-m" and i + 1 < len(args) and args[i + 1] == "conveyor":
                rest = args[i + 2 :]
                break
            if Path(a).name == "conveyor" and not a.startswith("-"):
                rest = args[i + 1 :]
                break
            if not a.startswith("-"):
                break  # some other script
        if rest is None:
            continue
        found.append(OtherOperator(pid, args, _operator_namespaces(rest)))
    return found


def conflicting(ops: list[OtherOperator], watched: list[str]) -> list[OtherOperator]:
    """Operators that would act on one of our namespaces (by the operator's own rule)."""
    return [op for op in ops if any(namespaces.served(ns, op.namespaces) for ns in watched)]
