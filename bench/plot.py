"""Jobs finished over time, one line per throughput phase: a stall, a slow
start or a long tail shows here where a table only shows the mean rate.

matplotlib is a benchmark-only dependency (`pip install -e '.[bench]'`, which
`make bench` does); without it the harness says so and writes no plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.cluster import log


def finished_over_time(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional, imported only to plot

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        log("no plot: matplotlib is not installed (pip install -e '.[bench]', as make bench does)")
        return False
    series = {
        name: p["finished_over_time"]
        for name, p in results["phases"].items()
        if p.get("finished_over_time")
    }
    if not series:
        return False
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=100)
    for name, points in series.items():
        xs = [x for x, _ in points]
        ys = [y for _, y in points]
        rate = results["phases"][name].get("jobs_per_second")
        ax.plot(xs, ys, label=f"{name} ({rate}/s)" if rate else name, linewidth=1.6)
    meta = results["meta"]
    a = meta["args"]
    ax.set_title(
        f"Jobs finished over time ({a.get('jobs')} per phase, concurrency "
        f"{a.get('concurrency')}; run {meta['started']})",
        fontsize=11,
    )
    ax.set_xlabel("seconds after the phase's first create")
    ax.set_ylabel("jobs finished (harness watch)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True
