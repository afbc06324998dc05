"""The results table: figures with ratios against the baselines of the same
run, written as JSON and markdown, and spliced into docs/performance.md."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.cluster import ROOT, binary, run
from bench.plot import finished_over_time

BEGIN = "<!-- bench:results:begin (written by `make bench`; edit outside these markers) -->"
END = "<!-- bench:results:end -->"
SHARED_CORES = 0.25  # busy cores outside the benchmark above which a phase is flagged


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem / 2**30, 1),
        "kernel": platform.release(),
    }


def _pkg(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _version_word(line: str | None) -> str | None:
    """'etcd Version: 3.6.16' -> '3.6.16'; 'kwok version v0.8.0 go1.26.8 ...' -> 'v0.8.0'."""
    if not line:
        return None
    m = re.search(r"v?\d+\.\d+\.\d+\S*", line)
    return m.group(0) if m else line


def versions(server: dict[str, Any]) -> dict[str, Any]:
    def first_line(cmd: list[str]) -> str | None:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return None
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else None

    commit = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = first_line(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return {
        "kubernetes": server.get("gitVersion"),
        "etcd": _version_word(first_line([binary("etcd"), "--version"])),
        "kwok": _version_word(first_line([binary("kwok"), "--version"])),
        "python": platform.python_version(),
        "conveyor": _pkg("conveyor-operator"),
        "conveyor_commit": (commit or "") + ("-dirty" if dirty else ""),
        "kopf": _pkg("kopf"),
        "kubernetes_client": _pkg("kubernetes"),
        "aiohttp": _pkg("aiohttp"),
    }


# ---------------------------------------------------------------- figures


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    ph = results["phases"]
    args = results["meta"]["args"]
    rows: list[dict[str, Any]] = []
    jd = ph.get("job-default", {})
    jt = ph.get("job-tuned", {})
    ku = ph.get("kueue", {})
    lim = ph.get("limit", {})

    def tput(p: dict[str, Any]) -> float | None:
        return p.get("jobs_per_second") if p.get("complete") else None

    def add(
        section: str,
        figure: str,
        value: Any,
        unit: str,
        base: dict[str, Any] | None = None,
        *,
        note: str = "",
    ) -> None:
        rows.append(
            {
                "section": section,
                "figure": figure,
                "value": value,
                "unit": unit,
                "ratios": base or {},
                "note": note,
            }
        )

    for name, p in ph.items():
        if not name.startswith("conveyor-"):
            continue
        q = p.get("queues", 1)
        label = (
            f"Conveyor: {p['jobs']} BackgroundJobs, {q} queue{'s' if q > 1 else ''} "
            f"x {_per_queue(p['jobs'], q)}, concurrency {p.get('concurrency_per_queue')}"
            + (" each" if q > 1 else "")
            if q
            else f"Conveyor: {p['jobs']} BackgroundJobs naming no queue (no cap)"
        )
        v = tput(p)
        add(
            "throughput",
            label,
            v if v is not None else p.get("jobs_per_second"),
            "jobs/s",
            {
                "Job (kcm defaults)": _ratio(v, tput(jd)),
                "Job (kcm tuned)": _ratio(v, tput(jt)),
                "Kueue": _ratio(v, tput(ku)),
                "limit": _ratio(v, tput(lim)),
            },
            note=_bound_note(p) + _incomplete(p),
        )
    if jd:
        add(
            "throughput",
            f"batch/v1 Job, kcm defaults: {jd['jobs']} Jobs",
            tput(jd) or jd.get("jobs_per_second"),
            "jobs/s",
            {"limit": _ratio(tput(jd), tput(lim))},
            note=jd.get("kcm_flags", "") + _incomplete(jd),
        )
    if jt:
        add(
            "throughput",
            f"batch/v1 Job, kcm tuned: {jt['jobs']} Jobs",
            tput(jt) or jt.get("jobs_per_second"),
            "jobs/s",
            {
                "Job (kcm defaults)": _ratio(tput(jt), tput(jd)),
                "limit": _ratio(tput(jt), tput(lim)),
            },
            note=jt.get("kcm_flags", "") + _incomplete(jt),
        )
    if ku:
        add(
            "throughput",
            f"Kueue {ku.get('kueue_version', '')}: {ku['jobs']} batch/v1 Jobs, 1 ClusterQueue, "
            f"quota {(ku.get('flight') or {}).get('cap')} pods",
            tput(ku) or ku.get("jobs_per_second"),
            "jobs/s",
            {
                "Job (kcm defaults)": _ratio(tput(ku), tput(jd)),
                "Job (kcm tuned)": _ratio(tput(ku), tput(jt)),
                "limit": _ratio(tput(ku), tput(lim)),
            },
            note=_bound_note(ku)
            + f"kcm tuned; its client {ku.get('kueue_client', '')}"
            + _incomplete(ku),
        )
    if lim:
        add(
            "throughput",
            f"Limit: {lim['jobs']} bare pods from an async client",
            tput(lim) or lim.get("jobs_per_second"),
            "pods/s",
            {},
            note=_incomplete(lim),
        )

    lc, lj = ph.get("latency-conveyor"), ph.get("latency-job")
    lk = ph.get("latency-kueue")
    for key, what in (
        ("created_to_pod", "apply -> pod created"),
        ("pod_succeeded_to_done", "pod Succeeded -> job Succeeded"),
    ):
        for pct in ("p50_ms", "p99_ms"):
            c = lc[key][pct] if lc else None
            j = lj[key][pct] if lj else None
            k = lk[key][pct] if lk else None
            if lc:
                add(
                    "latency",
                    f"Conveyor {what}, {pct[:3]} ({lc['samples']} one at a time)",
                    c,
                    "ms",
                    {"Job (kcm defaults)": _ratio(c, j), "Kueue": _ratio(c, k)},
                    note="from the stored object (watch); kubectl's own time excluded"
                    if key == "created_to_pod"
                    else "",
                )
            if lj:
                add("latency", f"batch/v1 Job {what}, {pct[:3]}", j, "ms", {})
            if lk:
                add(
                    "latency",
                    f"Kueue (batch/v1 Job) {what}, {pct[:3]}",
                    k,
                    "ms",
                    {"Job (kcm defaults)": _ratio(k, j)},
                    note="kcm defaults, as for the Job; Job created suspended -> its pod"
                    if key == "created_to_pod"
                    else "",
                )
    if lc:
        add(
            "latency",
            "kubectl apply itself, p50 (not in the figures above)",
            lc["kubectl_apply"]["p50_ms"],
            "ms",
            {},
        )

    for name, p in ph.items():
        w = p.get("writes")
        if not w:
            continue
        base = {}
        if name.startswith("conveyor-"):
            base = {
                "Job (kcm defaults)": _ratio(w["per_job"], (jd.get("writes") or {}).get("per_job")),
                "Job (kcm tuned)": _ratio(w["per_job"], (jt.get("writes") or {}).get("per_job")),
                "Kueue": _ratio(w["per_job"], (ku.get("writes") or {}).get("per_job")),
                "limit": _ratio(w["per_job"], (lim.get("writes") or {}).get("per_job")),
            }
        noise = (p.get("background_writes") or {}).get("writes_per_second")
        note = (
            f"status {w['status_per_job']}, events {w['events_per_job']}, "
            f"other {w['other_per_job']}"
        )
        if noise:
            share = noise * p["seconds"] / max(w["total_writes"], 1)
            note += f"; background {noise}/s before the phase (~{share:.0%} of these)"
        add("api-writes", f"API writes per job: {name}", w["per_job"], "writes", base, note=note)

    c1 = next(
        (p for n, p in ph.items() if n.startswith("conveyor-") and p.get("queues") == 1), None
    )
    c1 = c1 or next((p for n, p in ph.items() if n.startswith("conveyor-")), None)
    if c1 and c1.get("operator"):
        o = c1["operator"]
        add(
            "operator",
            f"Operator peak RSS, {c1['phase']} ({c1['jobs']} jobs existing at the end)",
            _mib(o.get("peak_rss_bytes")),
            "MiB",
        )
        add(
            "operator",
            f"Operator CPU seconds, {c1['phase']}",
            o.get("cpu_seconds"),
            "s",
            note=f"{_per_k(o.get('cpu_seconds'), c1['jobs'])} s per 1000 jobs; "
            f"{o.get('cpu_share_of_one_core')} of one core on average, "
            f"{o.get('busiest_5s_share_of_one_core')} in the busiest 5 s",
        )
    r = ph.get("restart")
    if r:
        add(
            "operator",
            f"Operator restart -> first admission, {r['jobs_pending']} jobs pending",
            r["seconds_to_first_admission"],
            "s",
            note=f"liveness after {r['seconds_to_liveness']} s; peak RSS "
            f"{_mib(r['operator']['peak_rss_bytes'])} MiB, "
            f"{r['operator']['cpu_seconds']} CPU s in the first "
            f"{r['seconds_to_first_admission'] + r['observed_seconds_after_first']:.0f} s",
        )
    g = ph.get("growth")
    if g and g.get("steps"):
        first, last = g["steps"][0], g["steps"][-1]
        per = g.get("growth_per_10k_jobs") or {}
        n = last["finished_jobs"]

        def grown(key: str, v0: Any, unit: str) -> str:
            slope = per.get(key)
            return f"{_fmt(v0)} {unit} with {first['finished_jobs']} finished; " + (
                f"{slope:+.3g} {unit} per 10,000" if slope is not None else ""
            )

        for key, what, value, v0, unit in (
            (
                "peak_rss_mib",
                "Operator peak RSS",
                _mib(last["operator_peak_rss_bytes"]),
                _mib(first["operator_peak_rss_bytes"]),
                "MiB",
            ),
            (
                "restart_to_first_admission_s",
                f"Operator restart -> first admission ({last['batch']} waiting)",
                last["seconds_to_first_admission"],
                first["seconds_to_first_admission"],
                "s",
            ),
            (
                "apply_to_pod_p50_ms",
                "Conveyor apply -> pod created, p50",
                last["created_to_pod"]["p50_ms"],
                first["created_to_pod"]["p50_ms"],
                "ms",
            ),
            (
                "pod_done_to_status_p50_ms",
                "Conveyor pod Succeeded -> job Succeeded, p50",
                last["pod_succeeded_to_done"]["p50_ms"],
                first["pod_succeeded_to_done"]["p50_ms"],
                "ms",
            ),
        ):
            add(
                "growth",
                f"{what}, {n} finished jobs in the namespace",
                value,
                unit,
                {"empty namespace": _ratio(value, v0)},
                note=grown(key, v0, unit),
            )
    del args
    return rows


def _phase_table(title: str, phases: list[str], rows: list[tuple[str, list[str]]]) -> list[str]:
    """A markdown table of figures (rows) by phase (columns), under a heading."""
    out = ["", f"#### {title}", "", "| | " + " | ".join(phases) + " |"]
    out.append("|---|" + "---:|" * len(phases))
    out += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    return out


def _bound_note(p: dict[str, Any]) -> str:
    f = p.get("flight") or {}
    if f.get("bound_jobs_per_second") is None:
        return ""
    return (
        f"Little's-law bound {f['bound_jobs_per_second']:.1f}/s "
        f"({f['cap']} slots / {f['mean_seconds_in_flight']} s in flight); "
    )


def _per_queue(jobs: int, queues: int) -> str:
    low, rest = divmod(jobs, queues)
    return str(low) if not rest else f"{low}-{low + 1}"


def _incomplete(p: dict[str, Any]) -> str:
    if p.get("complete", True):
        return ""
    return f" INCOMPLETE: {p.get('finished')}/{p.get('jobs')} finished"


def _cpu_per_job(p: dict[str, Any]) -> str:
    n = p.get("jobs")
    if not n:
        return ""
    total = sum(v for k, v in p["usage"]["cpu_seconds"].items() if k != "bench-harness")
    return f"{1000 * total / n:.0f}"


def _mib(v: int | None) -> float | None:
    return None if v is None else round(v / 2**20, 1)


def _per_k(v: float | None, n: int) -> float | None:
    return None if v is None or not n else round(1000 * v / n, 2)


# ---------------------------------------------------------------- markdown


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    m, v = meta["machine"], meta["versions"]
    rows = results["figures"]
    bases = ["Job (kcm defaults)", "Job (kcm tuned)", "Kueue", "limit", "empty namespace"]
    a = meta["args"]
    full = a.get("jobs") == 10_000 and a.get("concurrency") == 1000
    out = [
        f"Run {meta['started']} ({meta['duration_seconds'] / 60:.0f} min), `{meta['command']}`",
        "",
        f"Sizes: {a.get('jobs')} jobs per phase, Conveyor concurrency {a.get('concurrency')}, "
        f"shapes {a.get('shape')} queue(s), {a.get('latency_samples')} latency samples"
        + ("." if full else " (**a reduced run, not the issue's 10,000 / 1,000**)."),
        "",
        f"Machine: {m['cores']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"kernel {m['kernel']}. "
        f"Kubernetes {v['kubernetes']}, etcd {_version_word(v['etcd'])}, "
        f"kwok {_version_word(v['kwok'])}, Python {v['python']}, "
        f"Conveyor {v['conveyor']} ({v['conveyor_commit']}), kopf {v['kopf']}, "
        f"kubernetes client {v['kubernetes_client']}. Everything (control plane, kwok, "
        "operator, load generator) shares these cores.",
        "",
        "| figure | value | vs " + " | vs ".join(bases) + " | note |",
        "|---|---:|" + "---:|" * len(bases) + "---|",
    ]
    for r in rows:
        ratios = [
            _fmt(r["ratios"].get(b)) + ("x" if r["ratios"].get(b) is not None else "")
            for b in bases
        ]
        out.append(
            f"| {r['figure']} | {_fmt(r['value'])} {r['unit']} | "
            + " | ".join(ratios)
            + f" | {r['note']} |"
        )
    out += [
        "",
        "Ratios divide this figure by the baseline's figure from the same run "
        "(throughput: higher is better; latency and writes: lower is better).",
    ]

    ph = results["phases"]
    tp = [n for n, p in ph.items() if p.get("writes")]
    if tp:
        labels: list[str] = []
        for n in tp:
            for k in ph[n]["writes"]["by_resource_verb_per_job"]:
                if k not in labels:
                    labels.append(k)
        out += [
            "",
            "#### API writes per job, by verb and resource (apiserver_request_total)",
            "",
            "| write | " + " | ".join(tp) + " |",
            "|---|" + "---:|" * len(tp),
        ]
        for k in labels:
            vals = [ph[n]["writes"]["by_resource_verb_per_job"].get(k) for n in tp]
            if all(x is None or x < 0.005 for x in vals):
                continue
            out.append(f"| {k} | " + " | ".join(_fmt(x) if x else "" for x in vals) + " |")
        out.append(
            "| **total** | " + " | ".join(f"**{ph[n]['writes']['per_job']}**" for n in tp) + " |"
        )
        read = [ph[n].get("reads") for n in tp]
        if any(read):
            out.append(
                "| reads (GET, LIST, WATCH opened), for comparison | "
                + " | ".join(_fmt(r["per_job"]) if r else "" for r in read)
                + " |"
            )

    used = [n for n, p in ph.items() if p.get("usage")]
    if used:
        procs_: list[str] = []
        for n in used:
            for k in ph[n]["usage"]["cpu_seconds"]:
                if k not in procs_:
                    procs_.append(k)
        out += [
            "",
            "#### CPU seconds by process during each phase (share of one core in parentheses)",
            "",
            "| process | " + " | ".join(used) + " |",
            "|---|" + "---:|" * len(used),
        ]
        for k in procs_:
            cells = []
            for n in used:
                u = ph[n]["usage"]
                cpu = u["cpu_seconds"].get(k)
                share = u["cpu_share_of_one_core"].get(k)
                cells.append("" if cpu is None else f"{cpu:.1f} ({share:.2f})")
            out.append(f"| {k} | " + " | ".join(cells) + " |")
        out.append(
            "| wall seconds | "
            + " | ".join(f"{ph[n]['usage']['wall_seconds']:.1f}" for n in used)
            + " |"
        )
        out.append(
            "| listed processes, CPU ms per job | "
            + " | ".join(_cpu_per_job(ph[n]) for n in used)
            + " |"
        )
        out.append(
            "| busy cores, whole machine | "
            + " | ".join(_fmt(ph[n]["usage"].get("machine_busy_cores")) for n in used)
            + " |"
        )
        out.append(
            "| busy cores, processes not listed (other users, containerd, ...) | "
            + " | ".join(_fmt(ph[n]["usage"].get("untracked_busy_cores")) for n in used)
            + " |"
        )

    piped = [n for n, p in ph.items() if p.get("pod_pipeline")]
    if piped:
        out += [
            "",
            "#### Where pods wait: harness-observed lags, p50 / p99 ms",
            "",
            "| stage | " + " | ".join(piped) + " |",
            "|---|" + "---:|" * len(piped),
        ]
        for a, b, who in (
            ("created", "bound", "scheduler"),
            ("bound", "running", "kwok"),
            ("running", "finished", "kwok"),
        ):
            cells = []
            for n in piped:
                lag = ph[n]["pod_pipeline"].get(f"{a}_to_{b}_ms") or {}
                cells.append(f"{_fmt(lag.get('p50'))} / {_fmt(lag.get('p99'))}")
            out.append(f"| pod {a} -> {b} ({who}) | " + " | ".join(cells) + " |")
        for stage in ("created", "finished"):
            out.append(
                f"| last pod {stage}, s after first submit | "
                + " | ".join(_fmt(ph[n]["pod_pipeline"].get(f"last_{stage}_s")) for n in piped)
                + " |"
            )

    ku = ph.get("kueue") or {}
    kp = ku.get("kueue_pipeline")
    if kp:
        out += [
            "",
            "#### Where Kueue's Jobs wait (harness watch of Jobs and Workloads), p50 / p99 ms",
            "",
            "| stage | kueue |",
            "|---|---:|",
        ]
        for key, what in (
            ("job_created_to_workload_ms", "Job created -> its Workload created"),
            ("workload_to_admitted_ms", "Workload created -> admitted"),
            ("job_finished_to_workload_finished_ms", "Job finished -> Workload finished"),
        ):
            lag = kp.get(key) or {}
            out.append(f"| {what} | {_fmt(lag.get('p50'))} / {_fmt(lag.get('p99'))} |")
        out.append(
            f"| admissions per second (first to last) | {_fmt(kp.get('admissions_per_second'))} |"
        )

    flown = [n for n, p in ph.items() if (p.get("flight") or {}).get("pods_timed")]
    if flown:

        def flight(n: str, key: str) -> str:
            v = ph[n]["flight"].get(key)
            return "none" if key == "cap" and not v else _fmt(v)

        out += _phase_table(
            "Little's law: pods in flight (created -> finished, harness watch)",
            flown,
            [
                (what, [flight(n, key) for n in flown])
                for key, what in (
                    ("cap", "cap (slots)"),
                    ("mean_seconds_in_flight", "mean time in flight, s"),
                    ("p50_seconds_in_flight", "p50 time in flight, s"),
                    ("mean_pods_in_flight", "mean pods in flight"),
                    ("max_pods_in_flight", "most pods in flight"),
                    ("bound_jobs_per_second", "bound: cap / mean time in flight, jobs/s"),
                )
            ]
            + [("measured, jobs/s", [_fmt(ph[n].get("jobs_per_second")) for n in flown])],
        )

    kw = [n for n, p in ph.items() if p.get("kwok")]
    if kw:
        out += _phase_table(
            "The fake nodes: kwok's status writes per pod, and watches the API server dropped",
            kw,
            [
                (what, [_fmt(ph[n]["kwok"].get(key)) for n in kw])
                for key, what in (
                    ("status_patches_per_pod", "kwok status writes per pod (2 is right)"),
                    ("pods_patched_more_than_twice", "pods written more than twice"),
                    ("most_patches_on_one_pod", "most writes to one pod"),
                    ("stale_patches_refused", "stale stage writes refused (409)"),
                )
            ]
            + [
                (what, [_fmt((ph[n].get("watch_closes") or {}).get(key)) for n in kw])
                for key, what in (
                    ("kwok_pod_watch", "kwok's pod watch dropped by the API server"),
                    ("all", "all watches dropped (too slow a reader)"),
                )
            ],
        )

    g = ph.get("growth")
    if g and g.get("steps"):
        steps = g["steps"]
        per = g.get("growth_per_10k_jobs") or {}
        out += [
            "",
            "#### Growth: the operator restarted over finished jobs (no TTL), new ones waiting",
            "",
            "| finished jobs in the namespace | "
            + " | ".join(str(s["finished_jobs"]) for s in steps)
            + " | per 10,000 |",
            "|---|" + "---:|" * (len(steps) + 1),
        ]
        growth_rows: tuple[tuple[str | None, str, Callable[[dict[str, Any]], Any]], ...] = (
            (
                None,
                "pods in the namespace (after the pod GC)",
                lambda s: s.get("pods_in_namespace"),
            ),
            (
                None,
                "waited for kwok and the pod GC to settle, s",
                lambda s: s.get("settle_seconds"),
            ),
            (
                "restart_to_first_admission_s",
                "restart -> first admission, s",
                lambda s: s["seconds_to_first_admission"],
            ),
            (None, "liveness after, s", lambda s: s["seconds_to_liveness"]),
            (
                "peak_rss_mib",
                "operator peak RSS, MiB",
                lambda s: _mib(s["operator_peak_rss_bytes"]),
            ),
            (None, "operator CPU s (restart, batch, samples)", lambda s: s["operator_cpu_seconds"]),
            (None, "batch done, s after the start", lambda s: s["batch_seconds_after_start"]),
            (
                "apply_to_pod_p50_ms",
                "apply -> pod created p50, ms",
                lambda s: s["created_to_pod"]["p50_ms"],
            ),
            (None, "apply -> pod created p99, ms", lambda s: s["created_to_pod"]["p99_ms"]),
            (
                "pod_done_to_status_p50_ms",
                "pod Succeeded -> job Succeeded p50, ms",
                lambda s: s["pod_succeeded_to_done"]["p50_ms"],
            ),
            (
                None,
                "pod Succeeded -> job Succeeded p99, ms",
                lambda s: s["pod_succeeded_to_done"]["p99_ms"],
            ),
        )
        for slope_key, what, get in growth_rows:
            slope = per.get(slope_key) if slope_key else None
            out.append(
                f"| {what} | "
                + " | ".join(_fmt(get(s)) for s in steps)
                + f" | {'' if slope is None else f'{slope:+.3g}'} |"
            )
        f = g.get("filler") or {}
        made = (
            f"made by the filler: {f.get('made')} in {f.get('seconds')} s ({f.get('per_second')}/s)"
            if f.get("made")
            else "an earlier run's (--growth-reuse)"
        )
        out.append(
            f"\nThe finished jobs were {made}; each step then adds its "
            f"batch ({steps[0]['batch']}) and its latency samples."
        )

    rec = [n for n, p in ph.items() if (p.get("operator") or {}).get("reconcile")]
    if rec:
        out += [
            "",
            "#### Operator reconciles (conveyor_reconcile_time_seconds): count per job, mean ms",
            "",
            "| kind | " + " | ".join(rec) + " |",
            "|---|" + "---:|" * len(rec),
        ]
        kinds: list[str] = []
        for n in rec:
            kinds += [k for k in ph[n]["operator"]["reconcile"] if k not in kinds]
        for k in kinds:
            cells = []
            for n in rec:
                r = ph[n]["operator"]["reconcile"].get(k)
                cells.append(
                    "" if r is None else f"{r['count'] / ph[n]['jobs']:.2f}, {_fmt(r['mean_ms'])}"
                )
            out.append(f"| {k} | " + " | ".join(cells) + " |")
        out.append(
            "| max work queue depth seen | "
            + " | ".join(_fmt(ph[n]["operator"].get("max_work_queue_depth_seen")) for n in rec)
            + " |"
        )

    warnings = [f"{n}: {w}" for n, p in ph.items() for w in p.get("warnings") or []]
    for n, p in ph.items():
        other = (p.get("usage") or {}).get("untracked_busy_cores")
        if other is not None and other > SHARED_CORES:
            warnings.append(
                f"{n}: the machine was shared: processes outside the benchmark kept {other} "
                "cores busy on average; its figures are lower than on an idle machine"
            )
    warnings += meta.get("warnings", [])
    if warnings:
        out += ["", "#### Warnings", ""] + [f"- {w}" for w in warnings]
    return "\n".join(out) + "\n"


PLOT = "performance-finished.png"  # beside docs/performance.md, and in the results directory


def write(results: dict[str, Any], out_dir: Path, docs: Path | None, *, plot: bool = False) -> None:
    """JSON and markdown into out_dir (and the plot, when asked: a run's end);
    for a run that updates docs/performance.md, the table and the plot there too."""
    results["figures"] = figures(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    md = markdown(results)
    if plot and finished_over_time(results, out_dir / PLOT):
        md += f"\n![Jobs finished over time, every phase]({PLOT})\n"
        if docs is not None:
            shutil.copyfile(out_dir / PLOT, docs.parent / PLOT)
    (out_dir / "latest.md").write_text("# Conveyor benchmark: latest results\n\n" + md)
    if docs is not None:
        splice_docs(docs, md)


def splice_docs(docs: Path, md: str) -> None:
    block = f"{BEGIN}\n{md}{END}"
    if docs.exists():
        text = docs.read_text()
        if BEGIN in text and END in text:
            text = re.sub(
                re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S
            )
        else:
            text = text.rstrip() + "\n\n## Latest results\n\n" + block + "\n"
    else:
        text = "# Performance\n\n## Latest results\n\n" + block + "\n"
    docs.write_text(text)


def server_version(kubeconfig: str) -> dict[str, Any]:
    out = run(
        [binary("kubectl"), f"--kubeconfig={kubeconfig}", "version", "-o", "json"], check=False
    )
    try:
        return dict(json.loads(out).get("serverVersion") or {})
    except ValueError:
        return {}


if __name__ == "__main__":
    # re-render a saved run: python -m bench.report [results.json] [--docs]
    argv = [a for a in sys.argv[1:] if a != "--docs"]
    src = Path(argv[0]) if argv else ROOT / "bench" / "results" / "latest.json"
    data = json.loads(src.read_text())
    write(
        data,
        src.parent,
        ROOT / "docs" / "performance.md" if "--docs" in sys.argv else None,
        plot=True,
    )
