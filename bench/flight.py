"""Little's law for each throughput phase, and its jobs finished over time.

A phase whose jobs may hold at most `cap` slots at once (a JobQueue's
concurrency, a Kueue ClusterQueue's quota) cannot finish more than
cap ÷ (mean time a job holds its slot) jobs a second, whatever else is fast.
The harness times the slot by its pod, from its own watch: created →
Succeeded or Failed. When a phase's throughput is close to that bound, the cap
is what limits it, and the cause is whatever makes pods slow (kwok's stage
lag, the scheduler, the API server's latency); a phase well below its bound is
limited elsewhere.

A slot is really held a little longer: from admission, before the pod
exists, until the controller has seen the pod finish (Conveyor), or until the
Workload is marked finished after its Job (Kueue). So the bound is an upper
bound, looser for Kueue.
"""

from __future__ import annotations

import statistics
from typing import Any


def little(
    intervals: list[tuple[float, float]], t0: float, t_end: float, cap: int | None
) -> dict[str, Any]:
    """intervals: (pod created, pod finished) of every pod of the phase."""
    if not intervals or t_end <= t0:
        return {"pods_timed": 0, "cap": cap}
    spans = [b - a for a, b in intervals]
    mean_s = statistics.fmean(spans)
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    now, most = 0, 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return {
        "pods_timed": len(spans),
        "cap": cap,
        "mean_seconds_in_flight": round(mean_s, 2),
        "p50_seconds_in_flight": round(statistics.median(spans), 2),
        "mean_pods_in_flight": round(sum(spans) / (t_end - t0), 1),
        "max_pods_in_flight": most,
        "bound_jobs_per_second": round(cap / mean_s, 2) if cap and mean_s > 0 else None,
    }


def finished_over_time(
    finished: dict[str, tuple[float, str]], t0: float, points: int = 300
) -> list[list[float]]:
    """[[seconds after the first submit, jobs finished by then], ...], at most
    `points` steps (enough for a plot; the JSON stays small at 50,000 jobs)."""
    times = sorted(t - t0 for t, _ in finished.values())
    if not times:
        return []
    every = max(1, len(times) // points)
    series = [[0.0, 0]] + [[round(times[i], 2), i + 1] for i in range(every - 1, len(times), every)]
    if series[-1][1] != len(times):
        series.append([round(times[-1], 2), len(times)])
    return series
