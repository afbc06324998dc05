"""Ratios across repeated runs: `python -m bench.compare RUN.json [RUN.json ...]`.

One run's ratio of Conveyor to the tuned Job controller moved by 40 % between
two runs on the same machine (the baseline's own API server CPU per Job
did), so a single run cannot say which is faster when they are within that.
This prints, for each run (each a `bench/results/latest.json` copied aside),
every phase's jobs/s, its CPU per job (the API server's and all measured
processes') and its writes per job, with its ratio to the baseline phase of
the same run; then each phase's median ratio over the runs, with the
smallest and largest.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def phase_figures(phase: dict[str, Any]) -> dict[str, float]:
    """jobs/s, API server and all processes' CPU ms per job, writes per job."""
    jobs = phase["jobs"]
    cpu = phase["usage"]["cpu_seconds"]
    return {
        "jobs_per_second": phase["jobs_per_second"],
        "apiserver_ms_per_job": cpu.get("kube-apiserver", 0.0) / jobs * 1000,
        "all_ms_per_job": sum(cpu.values()) / jobs * 1000,
        "writes_per_job": phase["writes"]["per_job"],
    }


def ratios(runs: Sequence[dict[str, Any]], baseline: str) -> dict[str, list[float]]:
    """Each phase's throughput over the baseline's, one per run that has both."""
    out: dict[str, list[float]] = {}
    for run in runs:
        phases = run["phases"]
        base = phases.get(baseline)
        if not base or not base.get("jobs_per_second"):
            continue
        for name, phase in phases.items():
            if name == baseline or not phase.get("jobs_per_second") or "writes" not in phase:
                continue
            out.setdefault(name, []).append(phase["jobs_per_second"] / base["jobs_per_second"])
    return out


def render(runs: Sequence[dict[str, Any]], names: Sequence[str], baseline: str) -> str:
    lines = [
        "| run | phase | jobs/s | vs " + baseline + " | API server CPU ms/job "
        "| all processes CPU ms/job | writes/job |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, run in zip(names, runs, strict=True):
        phases = run["phases"]
        base = phases.get(baseline)
        for name, phase in phases.items():
            if not phase.get("jobs_per_second") or "writes" not in phase:
                continue
            f = phase_figures(phase)
            ratio = (
                f"{f['jobs_per_second'] / base['jobs_per_second']:.2f}x"
                if base and name != baseline
                else "-"
            )
            lines.append(
                f"| {label} | {name} | {f['jobs_per_second']:.2f} | {ratio} "
                f"| {f['apiserver_ms_per_job']:.1f} | {f['all_ms_per_job']:.1f} "
                f"| {f['writes_per_job']:.2f} |"
            )
    lines += [
        "",
        f"| phase | median vs {baseline} | smallest | largest | runs |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in ratios(runs, baseline).items():
        lines.append(
            f"| {name} | {statistics.median(values):.2f}x | {min(values):.2f}x "
            f"| {max(values):.2f}x | {len(values)} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="results JSON of each run")
    parser.add_argument(
        "--baseline", default="job-tuned", help="the phase the others are divided by (job-tuned)"
    )
    args = parser.parse_args(argv)
    runs = [json.loads(path.read_text()) for path in args.runs]
    print(render(runs, [path.stem for path in args.runs], args.baseline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
