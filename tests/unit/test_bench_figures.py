"""The benchmark's own arithmetic and log reading (bench/flight.py, bench/logs.py,
bench/growth.py, bench/kueue.py, bench/compare.py, the request counts): figures the report
prints must be right."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from bench import compare, flight, growth, kueue, logs
from bench.kube import parse_request_totals, read_diff
from bench.phases import reads_summary


def test_little_bound_is_the_cap_over_the_mean_time_in_flight() -> None:
    f = flight.little([(0.0, 3.0), (1.0, 3.5), (2.0, 4.0)], t0=0.0, t_end=4.0, cap=2)
    assert f["pods_timed"] == 3
    assert f["mean_seconds_in_flight"] == 2.5  # (3 + 2.5 + 2) / 3
    assert f["bound_jobs_per_second"] == 0.8  # 2 slots / 2.5 s
    assert f["mean_pods_in_flight"] == 1.9  # 7.5 pod-seconds over 4 s
    assert f["max_pods_in_flight"] == 3  # all three in flight during [2, 3)


def test_little_without_a_cap_has_no_bound() -> None:
    f = flight.little([(0.0, 1.0)], 0.0, 1.0, None)
    assert f["bound_jobs_per_second"] is None
    assert f["max_pods_in_flight"] == 1


def test_a_pod_finishing_as_another_starts_does_not_count_twice() -> None:
    f = flight.little([(0.0, 1.0), (1.0, 2.0)], 0.0, 2.0, 1)
    assert f["max_pods_in_flight"] == 1


def test_finished_over_time_is_downsampled_and_ends_at_the_total() -> None:
    finished = {f"j{i}": (10.0 + i, "Succeeded") for i in range(1000)}
    series = flight.finished_over_time(finished, t0=10.0, points=100)
    assert series[0] == [0.0, 0]
    assert series[-1] == [999.0, 1000]
    assert len(series) <= 102
    assert all(a[1] < b[1] and a[0] <= b[0] for a, b in itertools.pairwise(series))


def _kwok_line(msg: str, pod: str, **extra: str) -> str:
    return json.dumps({"time": "t", "level": "INFO", "msg": msg, "pod": pod, **extra})


def test_kwok_stats_counts_status_writes_of_the_phase_pods_only(tmp_path: Path) -> None:
    log = tmp_path / "kwok.log"
    log.write_text(_kwok_line("Patch pod", "other/p-0") + "\n")
    offset = logs.mark(log)
    lines = [
        _kwok_line("Patch pod", "bench-x/p-1"),
        _kwok_line("Patch pod", "bench-x/p-1"),
        _kwok_line("Patch pod", "bench-x/p-2"),
        _kwok_line("Patch pod", "bench-x/p-2"),
        _kwok_line("Patch pod", "bench-x/p-2"),
        _kwok_line("Patch pod", "bench-xy/p-3"),  # another namespace with the same prefix
        _kwok_line("Patch pod", "other/p-4"),
        _kwok_line(
            "failed to apply stage",
            "bench-x/p-2",
            stage="bench-pod-run",
            err='failed to patch pod p-2: Operation cannot be fulfilled on pods "p-2": '
            "the object has been modified; please apply your changes to the latest version",
        ),
        _kwok_line(
            "failed to apply stage",
            "bench-x/p-1",
            stage="bench-pod-delete",
            err='failed to delete pod p-1: pods "p-1" not found',
        ),
        "not json",
    ]
    with log.open("a") as f:
        f.write("\n".join(lines) + "\n")
    s = logs.kwok_stats(log, offset, "bench-x")
    assert s["pods_patched"] == 2
    assert s["status_patches_per_pod"] == 2.5
    assert s["pods_patched_more_than_twice"] == 1
    assert s["most_patches_on_one_pod"] == 3
    assert s["stale_patches_refused"] == 1
    assert s["other_errors_by_stage"] == {}


def test_watch_closes_tells_kwoks_pod_watch_from_the_others(tmp_path: Path) -> None:
    log = tmp_path / "kube-apiserver.log"
    close = (
        "I1201 19:37:16.588898   17265 cache_watcher.go:203] Forcing {res} watcher close "
        'due to unresponsiveness: key: "{key}", labels: "", fields: "{fields}". '
        "len(c.input) = 10, len(c.result) = 10, graceful = false"
    )
    log.write_text(
        "\n".join(
            [
                close.format(res="pods", key="/pods", fields="spec.nodeName!="),
                close.format(res="pods", key="/pods", fields="spec.nodeName!="),
                close.format(res="pods", key="/pods", fields=""),
                close.format(
                    res="backgroundjobs.conveyor.dev",
                    key="/conveyor.dev/backgroundjobs/bench-x",
                    fields="",
                ),
                "I1201 19:37:17.0 1 other.go:1] unrelated",
            ]
        )
        + "\n"
    )
    c = logs.watch_closes(log, 0)
    assert c["kwok_pod_watch"] == 2
    assert c["all"] == 4
    assert c["by_watch"]["pods /pods (spec.nodeName!=)"] == 2


def test_a_truncated_log_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "kwok.log"
    log.write_text(_kwok_line("Patch pod", "bench-x/p-1") + "\n")
    assert logs.kwok_stats(log, 10**6, "bench-x")["pods_patched"] == 1


def test_growth_slopes_are_per_10000_finished_jobs() -> None:
    def step(n: int, rss_mib: float, first: float, to_pod: float) -> dict[str, object]:
        return {
            "finished_jobs": n,
            "operator_peak_rss_bytes": int(rss_mib * 2**20),
            "seconds_to_first_admission": first,
            "created_to_pod": {"p50_ms": to_pod},
            "pod_succeeded_to_done": {"p50_ms": 12.0},
        }

    s = growth.slopes([step(0, 100, 3, 10), step(10_000, 130, 5, 10), step(50_000, 250, 13, 10)])
    assert s["peak_rss_mib"] == pytest.approx(30, abs=0.01)
    assert s["restart_to_first_admission_s"] == pytest.approx(2, abs=0.01)
    assert s["apply_to_pod_p50_ms"] == 0
    assert growth.slopes([step(0, 100, 3, 10)])["peak_rss_mib"] is None


def test_kueue_quota_counts_pods_and_what_they_request() -> None:
    template = {
        "spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                {"resources": {"requests": {"cpu": "1"}}},
                {},
            ]
        }
    }
    assert kueue.quota(template, 1000) == {
        "cpu": "1250000m",
        "memory": str(64 * 2**20 * 1000),
        "pods": "1000",
    }
    bare = {"spec": {"containers": [{"name": "worker"}]}}
    assert kueue.quota(bare, 10) == {"cpu": "0m", "memory": "0", "pods": "10"}


def _run(**jobs_per_second: float) -> dict[str, object]:
    phase = {
        "jobs": 100,
        "usage": {"cpu_seconds": {"kube-apiserver": 2.0, "operator": 1.0}},
        "writes": {"per_job": 9.0},
    }
    return {
        "phases": {
            name.replace("_", "-"): {**phase, "jobs_per_second": value}
            for name, value in jobs_per_second.items()
        }
    }


def test_compare_gives_each_phase_its_median_ratio_to_the_baseline_of_its_own_run() -> None:
    runs = [
        _run(conveyor_1q=30.0, job_tuned=40.0),
        _run(conveyor_1q=30.0, job_tuned=25.0),
        _run(conveyor_1q=36.0, job_tuned=40.0),
        _run(conveyor_1q=30.0),  # no baseline in this run: not counted
    ]
    assert compare.ratios(runs, "job-tuned") == {"conveyor-1q": [0.75, 1.2, 0.9]}
    table = compare.render(runs, ["a", "b", "c", "d"], "job-tuned")
    assert "| conveyor-1q | 0.90x | 0.75x | 1.20x | 3 |" in table
    assert "| a | conveyor-1q | 30.00 | 0.75x | 20.0 | 30.0 | 9.00 |" in table


def test_reads_per_job_count_gets_lists_and_watches_opened_between_two_scrapes() -> None:
    def scrape(gets: int, watches: int, patches: int) -> str:
        return "\n".join(
            [
                'apiserver_request_total{code="200",group="",resource="pods",scope="namespace",'
                f'subresource="",verb="GET",version="v1"}} {gets}',
                'apiserver_request_total{code="200",group="",resource="pods",scope="cluster",'
                f'subresource="",verb="WATCH",version="v1"}} {watches}',
                'apiserver_request_total{code="200",group="",resource="pods",scope="namespace",'
                f'subresource="status",verb="PATCH",version="v1"}} {patches}',
            ]
        )

    before = parse_request_totals(scrape(10, 3, 100))
    after = parse_request_totals(scrape(30, 4, 500))
    summary = reads_summary(read_diff(before, after), 10)
    assert summary["total_reads"] == 21
    assert summary["per_job"] == 2.1
    assert summary["top_per_job"] == {"GET pods": 2.0, "WATCH pods": 0.1}
