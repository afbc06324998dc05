"""Jobs finished over time, one line per throughput phase: a stall, a slow
start or a long tail shows here where a table only shows the mean rate.

matplotlib is a benchmark-only dependency (pyproject's `bench` extra, which
`make bench` installs); without it the harness says so and writes no plot.
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
        log("no plot: matplotlib is not installed (make bench installs it)")
        return False
    series = {
        name: p["finished_over_time"]
        for name, p in results["phases"].items()
        if p.get("finished_over_time")
    }
    if not series:
        return False
    # a phase far longer than the others (the budget-bound Job baseline) would
    # squash them: then a second panel shows the others on their own time scale
    ends = {name: points[-1][0] for name, points in series.items()}
    longest = max(ends, key=lambda n: ends[n])
    others = [n for n in series if n != longest]
    zoom = bool(others) and ends[longest] > 2 * max(ends[n] for n in others)
    fig, axes = plt.subplots(2 if zoom else 1, 1, figsize=(10, 9 if zoom else 5.5), dpi=100)
    panels = list(axes) if zoom else [axes]
    colors = {name: f"C{i}" for i, name in enumerate(series)}
    meta = results["meta"]
    a = meta["args"]
    for ax, names in zip(panels, [list(series), others], strict=False):
        for name in names:
            points = series[name]
            rate = results["phases"][name].get("jobs_per_second")
            ax.plot(
                [x for x, _ in points],
                [y for _, y in points],
                label=f"{name} ({rate}/s)" if rate else name,
                color=colors[name],
                linewidth=1.6,
            )
        ax.set_xlabel("seconds after the phase's first create")
        ax.set_ylabel("jobs finished (harness watch)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
    panels[0].set_title(
        f"Jobs finished over time ({a.get('jobs')} per phase, concurrency "
        f"{a.get('concurrency')}; run {meta['started']})",
        fontsize=11,
    )
    if zoom:
        panels[1].set_title(f"the same without {longest}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True
