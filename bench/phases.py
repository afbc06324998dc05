"""The benchmark's phases. Each runs in its own namespace, which it deletes
(and waits for) before the next one starts.

Timing: every time below is the harness's own monotonic clock when its watch
delivered the event, so all figures carry the same small watch delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from tests.cluster.operator import OperatorProcess

from bench import flight, kueue, logs, procs, workloads
from bench.cluster import (
    Kwok,
    binary,
    cleanup_namespace,
    create_namespace,
    kcm,
    kcm_flags,
    log,
)
from bench.kube import Kube, parse_request_totals, read_diff, resource_label, write_diff
from bench.kueue import KueueManager
from bench.operator import Sampler, operator_metric

PREFIX = "bench-"
SAMPLE_LABEL = "bench.conveyor.dev/sample"  # on the latency samples' jobs (and their pods)


@dataclasses.dataclass
class Ctx:
    kube: Kube
    kubeconfig: str
    args: Any
    log_dir: Path
    kwok: Kwok
    own_pids: set[int] = dataclasses.field(default_factory=set)

    def ns(self, phase: str) -> str:
        return f"{PREFIX}{phase}"


class PhaseAbortedError(RuntimeError):
    pass


# ---------------------------------------------------------------- helpers


class Tracker:
    """Follows one kind of object in a namespace through a watch: when each
    was first seen, when it finished, and how."""

    def __init__(self, total: int, outcome: Callable[[dict[str, Any]], str | None]) -> None:
        self.total = total
        self.outcome = outcome
        self.seen: dict[str, float] = {}
        self.finished: dict[str, tuple[float, str]] = {}
        self.done = asyncio.Event()
        self.first_seen_at: float | None = None
        self.extra: list[Callable[[str, dict[str, Any], float], None]] = []

    def on_event(self, kind: str, obj: dict[str, Any]) -> None:
        now = time.monotonic()
        name = obj["metadata"]["name"]
        if name not in self.seen and kind != "DELETED":
            self.seen[name] = now
            if self.first_seen_at is None:
                self.first_seen_at = now
        for fn in self.extra:
            fn(kind, obj, now)
        if name in self.finished or kind == "DELETED":
            return
        result = self.outcome(obj)
        if result is not None:
            self.finished[name] = (now, result)
            if len(self.finished) >= self.total:
                self.done.set()

    @property
    def failed(self) -> int:
        return sum(1 for _, r in self.finished.values() if r == "Failed")

    def last_finish(self) -> float | None:
        return max((t for t, _ in self.finished.values()), default=None)


@contextlib.asynccontextmanager
async def watching(kube: Kube, path: str, tracker: Tracker, params: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    ready = asyncio.Event()
    task = asyncio.create_task(kube.watch(path, tracker.on_event, params=params, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), timeout=60)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def submit_all(
    kube: Kube, path: str, objects: list[dict[str, Any]], concurrency: int, counter: list[int]
) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(obj: dict[str, Any]) -> None:
        async with sem:
            await kube.create(path, obj)
            counter[0] += 1

    await asyncio.gather(*(one(o) for o in objects))


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))  # nearest rank
    return ordered[rank - 1]


class PodTimeline:
    """When each pod was first seen created, bound to a node (the scheduler),
    running and finished (kwok): shows which stage of the pipeline pods wait in."""

    STAGES = ("created", "bound", "running", "finished")

    def __init__(self) -> None:
        self.at: dict[str, dict[str, float]] = {}

    def on_event(self, kind: str, obj: dict[str, Any], now: float) -> None:
        if kind == "DELETED":
            return
        name = obj["metadata"]["name"]
        marks = self.at.setdefault(name, {})
        marks.setdefault("created", now)
        if (obj.get("spec") or {}).get("nodeName"):
            marks.setdefault("bound", now)
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Running", "Succeeded", "Failed"):
            marks.setdefault("running", now)
        if phase in ("Succeeded", "Failed"):
            marks.setdefault("finished", now)

    def intervals(self) -> list[tuple[float, float]]:
        """(created, finished) of every finished pod: its time in flight."""
        return [(m["created"], m["finished"]) for m in self.at.values() if "finished" in m]

    def summary(self, t0: float) -> dict[str, Any]:
        out: dict[str, Any] = {"pods": len(self.at)}
        for a, b in zip(self.STAGES, self.STAGES[1:], strict=False):
            lags = [m[b] - m[a] for m in self.at.values() if a in m and b in m]
            out[f"{a}_to_{b}_ms"] = {
                "p50": _ms(percentile(lags, 50)),
                "p99": _ms(percentile(lags, 99)),
            }
        for stage in self.STAGES:
            times = sorted(m[stage] - t0 for m in self.at.values() if stage in m)
            out[f"last_{stage}_s"] = round(times[-1], 2) if times else None
        return out


def _ms(v: float | None) -> float | None:
    return None if v is None else round(1000 * v, 1)


def control_plane_pids(ctx: Ctx) -> dict[str, int | None]:
    pids: dict[str, int | None] = {c: procs.component_pid(c) for c in procs.COMPONENTS}
    pids["kwok"] = ctx.kwok.pid
    pids["bench-harness"] = os.getpid()
    return pids


def reads_summary(diff: dict[tuple[str, str, str, str], float], n: int) -> dict[str, Any]:
    """API reads per job (GET, LIST, WATCH opened), the ten most frequent by resource and
    verb: writes alone do not say all a phase asks of the API server."""
    total = sum(diff.values())
    top = sorted(diff.items(), key=lambda kv: -kv[1])[:10]
    return {
        "total_reads": total,
        "per_job": round(total / n, 3),
        "top_per_job": {resource_label(k): round(v / n, 4) for k, v in top},
    }


def writes_summary(diff: dict[tuple[str, str, str, str], float], n: int) -> dict[str, Any]:
    """API writes per job, by resource and verb, with status and events apart."""
    total = sum(diff.values())
    status = sum(v for k, v in diff.items() if k[2] == "status")
    events = sum(v for k, v in diff.items() if k[1] == "events")
    by = {
        resource_label(k): round(v / n, 3) for k, v in sorted(diff.items(), key=lambda kv: -kv[1])
    }
    return {
        "total_writes": total,
        "per_job": round(total / n, 3),
        "status_per_job": round(status / n, 3),
        "events_per_job": round(events / n, 3),
        "other_per_job": round((total - status - events) / n, 3),
        "by_resource_verb_per_job": by,
    }


async def scrape(kube: Kube) -> dict[tuple[str, str, str, str], float]:
    return parse_request_totals(await kube.metrics())


async def noise_window(ctx: Ctx) -> dict[str, Any]:
    """Writes per second on the cluster while this phase does nothing yet:
    other users of the cluster, kwok's leases, the real kubelet."""
    seconds = ctx.args.noise_window
    if seconds <= 0:
        return {"seconds": 0, "writes_per_second": None}
    a = await scrape(ctx.kube)
    await asyncio.sleep(seconds)
    b = await scrape(ctx.kube)
    diff = write_diff(a, b)
    total = sum(diff.values())
    top = sorted(diff.items(), key=lambda kv: -kv[1])[:5]
    return {
        "seconds": seconds,
        "writes_per_second": round(total / seconds, 2),
        "top": {resource_label(k): v for k, v in top},
    }


def check_no_other_operator(ctx: Ctx, namespaces: list[str]) -> list[str]:
    others = procs.conflicting(procs.conveyor_operators(ctx.own_pids), namespaces)
    return [o.describe() for o in others]


async def wait_for_exclusive(ctx: Ctx, namespaces: list[str]) -> None:
    """Refuse to share our namespaces with another Conveyor operator: wait for
    cluster-wide ones (other engineers' integration tests) to go away."""
    deadline = time.monotonic() + ctx.args.wait_for_operators
    told = 0.0
    while True:
        others = check_no_other_operator(ctx, namespaces)
        if not others:
            return
        if time.monotonic() > deadline:
            raise PhaseAbortedError(
                "another Conveyor operator would process the benchmark's jobs too "
                f"(waited {ctx.args.wait_for_operators}s):\n  "
                + "\n  ".join(others)
                + "\nStop it, or rerun when it is gone (--wait-for-operators SECONDS)."
            )
        if time.monotonic() - told > 30:
            log(
                "waiting: another Conveyor operator watches all namespaces (or ours); "
                "the benchmark would be processed twice:\n  " + "\n  ".join(others)
            )
            told = time.monotonic()
        await asyncio.sleep(3)


class Progress:
    def __init__(self, ctx: Ctx, phase: str, tracker: Tracker, submitted: list[int]) -> None:
        self.ctx, self.phase, self.tracker, self.submitted = ctx, phase, tracker, submitted
        self.t0 = time.monotonic()
        self.warnings: list[str] = []
        self.instance = procs.cluster_instance()
        self.operator: OperatorProcess | None = None
        self.manager: KueueManager | None = None
        self.max_queue_depth = 0.0

    async def run(self) -> None:
        interval = self.ctx.args.progress_interval
        last_done, last_t = 0, self.t0
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            done = len(self.tracker.finished)
            rate = (done - last_done) / max(now - last_t, 1e-6)
            last_done, last_t = done, now
            msg = (
                f"[{self.phase}] submitted {self.submitted[0]}/{self.tracker.total}, "
                f"done {done}/{self.tracker.total}"
                + (f" ({self.tracker.failed} failed)" if self.tracker.failed else "")
                + f", {now - self.t0:.0f}s, {rate:.0f}/s now"
            )
            if self.operator is not None:
                self.operator.check()
                depth = operator_metric(
                    await asyncio.to_thread(self.operator.scrape), "conveyor_workqueue_depth"
                )
                if depth:
                    d = sum(depth.values())  # by kind of key
                    self.max_queue_depth = max(self.max_queue_depth, d)
                    msg += f", operator queue {d:.0f}"
                others = check_no_other_operator(self.ctx, [self.ctx.ns(self.phase)])
                if others:
                    w = "another Conveyor operator appeared during the phase: " + "; ".join(others)
                    if w not in self.warnings:
                        self.warnings.append(w)
                        log("WARNING: " + w)
            if self.manager is not None:
                self.manager.check()
            self.ctx.kwok.check()
            if procs.cluster_instance() != self.instance:
                raise PhaseAbortedError("the cluster was restarted during the phase (by someone?)")
            print(msg, flush=True)


async def wait_done(ctx: Ctx, tracker: Tracker, progress: Progress) -> bool:
    ptask = asyncio.create_task(progress.run())
    done_task = asyncio.create_task(tracker.done.wait())
    try:
        finished, _ = await asyncio.wait(
            {ptask, done_task}, timeout=ctx.args.phase_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ptask in finished:
            ptask.result()  # raises what stopped it
        return done_task in finished
    finally:
        for t in (ptask, done_task):
            t.cancel()
        await asyncio.gather(ptask, done_task, return_exceptions=True)


# ---------------------------------------------------------------- throughput


def conveyor_phase_name(queues: int) -> str:
    return f"conveyor-{queues}q" if queues else "conveyor-noq"


async def throughput(
    ctx: Ctx,
    phase: str,
    *,
    kind: str,
    n: int,
    queues: int = 1,
    per_queue_concurrency: int | None = None,
    kcm_note: str | None = None,
) -> dict[str, Any]:
    """Submit n objects as fast as the client can and wait until the last one
    finished. kind: conveyor (queues=0: jobs that name no queue) | kueue | job | pod."""
    args = ctx.args
    ns = ctx.ns(phase)
    nouns = {
        "conveyor": f"BackgroundJobs in {queues} queue(s)"
        if queues
        else "BackgroundJobs, no queue",
        "kueue": "batch/v1 Jobs through Kueue",
        "job": "batch/v1 Jobs",
        "pod": "bare pods",
    }
    log(f"=== phase {phase}: {n} {nouns[kind]}")
    if kind == "kueue":
        kueue.stop_stale()
        await kueue.release_workloads(ctx.kube, ns)
    await create_namespace(ctx.kube, ns)
    operator: OperatorProcess | None = None
    manager: KueueManager | None = None
    cap: int | None = None
    result: dict[str, Any] = {"phase": phase, "kind": kind, "jobs": n, "namespace": ns}
    try:
        if kind == "conveyor":
            await wait_for_exclusive(ctx, [ns])
            conc = per_queue_concurrency or max(1, args.concurrency // max(queues, 1))
            names = [f"q{i:02d}" for i in range(queues)]
            for q in names:
                await ctx.kube.create(
                    f"{workloads.GROUP_PATH}/namespaces/{ns}/jobqueues",
                    workloads.queue(q, ns, conc),
                )
            if queues:
                cap = conc * queues
                result.update(queues=queues, concurrency_per_queue=conc)
            else:
                result.update(queues=0, concurrency_per_queue=None)
            objects = [
                workloads.background_job(
                    workloads.job_name(i),
                    ns,
                    names[i % queues] if queues else None,
                    fail=workloads.should_fail(i, args.fail_percent),
                    run_for=args.run_for,
                )
                for i in range(n)
            ]
            path = f"{workloads.GROUP_PATH}/namespaces/{ns}/backgroundjobs"
            outcome = workloads.bgj_outcome
            operator = OperatorProcess(
                ctx.kubeconfig,
                [ns],
                ctx.log_dir / f"operator-{phase}.log",
                extra_args=args.operator_args,
                metrics=True,
            )
            operator.spawn()
            ctx.own_pids.add(operator.proc.pid)  # type: ignore[union-attr]
            result["operator_healthy_after_s"] = round(await operator.until_healthy(), 2)
            result["operator_cmdline"] = " ".join(operator.cmdline[1:])
        elif kind == "kueue":
            cap = args.kueue_quota
            manager = kueue.manager_for(args, ctx.kubeconfig, ns, ctx.log_dir)
            result.update(
                await kueue.start(ctx.kube, manager, ns, cap),
                kcm_flags=kcm_note,
                kueue_client=f"qps {args.kueue_client_qps}, burst {args.kueue_client_burst}",
            )
            objects = [
                workloads.kueue_job(
                    workloads.job_name(i),
                    ns,
                    kueue.LOCAL_QUEUE,
                    fail=workloads.should_fail(i, args.fail_percent),
                    run_for=args.run_for,
                )
                for i in range(n)
            ]
            path = f"/apis/batch/v1/namespaces/{ns}/jobs"
            outcome = workloads.job_outcome
        elif kind == "job":
            objects = [
                workloads.batch_job(
                    workloads.job_name(i),
                    ns,
                    fail=workloads.should_fail(i, args.fail_percent),
                    run_for=args.run_for,
                )
                for i in range(n)
            ]
            path = f"/apis/batch/v1/namespaces/{ns}/jobs"
            outcome = workloads.job_outcome
            result["kcm_flags"] = kcm_note
        else:
            objects = [
                workloads.bare_pod(
                    f"p-{i:05d}",
                    ns,
                    fail=workloads.should_fail(i, args.fail_percent),
                    run_for=args.run_for,
                )
                for i in range(n)
            ]
            path = f"/api/v1/namespaces/{ns}/pods"
            outcome = workloads.pod_outcome

        tracker = Tracker(n, outcome)
        timeline = PodTimeline()
        pod_tracker = tracker
        if kind == "pod":
            tracker.extra.append(timeline.on_event)
        else:
            pod_tracker = Tracker(10**9, workloads.pod_outcome)
            pod_tracker.extra.append(timeline.on_event)
        kueue_timeline = kueue.WorkloadTimeline()
        wl_tracker = Tracker(10**9, lambda _obj: None)
        wl_tracker.extra.append(kueue_timeline.on_event)
        submitted = [0]
        async with (
            watching(ctx.kube, path, tracker),
            watching(ctx.kube, f"/api/v1/namespaces/{ns}/pods", pod_tracker)
            if pod_tracker is not tracker and args.pod_timeline
            else contextlib.nullcontext(),
            watching(ctx.kube, f"{kueue.API}/namespaces/{ns}/workloads", wl_tracker)
            if kind == "kueue"
            else contextlib.nullcontext(),
        ):
            result["background_writes"] = await noise_window(ctx)
            sampler = Sampler(control_plane_pids(ctx))
            if operator is not None:
                sampler.add("operator", operator.pid)
            if manager is not None:
                sampler.add("kueue", manager.pid)
            progress = Progress(ctx, phase, tracker, submitted)
            progress.operator = operator
            progress.manager = manager
            kwok_mark = logs.mark(ctx.kwok.log_path)
            apiserver_mark = logs.mark(logs.APISERVER_LOG)
            before = await scrape(ctx.kube)
            sampler.start()
            t0 = time.monotonic()
            submit_end: list[float] = []

            async def submit_timed() -> None:
                await submit_all(ctx.kube, path, objects, args.submit_concurrency, submitted)
                submit_end.append(time.monotonic())

            submit = asyncio.create_task(submit_timed())
            try:
                complete = await wait_done(ctx, tracker, progress)
            finally:
                if not submit.done():
                    submit.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await submit
            after = await scrape(ctx.kube)
            usage = await sampler.stop()
        last = tracker.last_finish() or time.monotonic()
        elapsed = last - t0
        done = len(tracker.finished)
        result.update(
            complete=complete,
            finished=done,
            failed=tracker.failed,
            seconds=round(elapsed, 2),
            jobs_per_second=round(done / elapsed, 2) if elapsed > 0 else None,
            submit_seconds=round(submit_end[0] - t0, 2) if submit_end else None,
            writes=writes_summary(write_diff(before, after), n),
            reads=reads_summary(read_diff(before, after), n),
            pod_pipeline=timeline.summary(t0) if timeline.at else None,
            flight=flight.little(timeline.intervals(), t0, last, cap),
            finished_over_time=flight.finished_over_time(tracker.finished, t0),
            kwok=logs.kwok_stats(ctx.kwok.log_path, kwok_mark, ns),
            watch_closes=logs.watch_closes(logs.APISERVER_LOG, apiserver_mark),
            usage=usage,
            warnings=progress.warnings,
        )
        if operator is not None:
            text = operator.scrape()
            result["operator"] = operator_summary(text, usage, progress.max_queue_depth)
        if kind == "kueue":
            result["kueue_pipeline"] = kueue_timeline.summary(tracker.seen, tracker.finished)
        if not complete:
            result["warnings"].append(
                f"timed out after {args.phase_timeout}s with {done}/{n} finished"
            )
        bound = result["flight"].get("bound_jobs_per_second")
        log(
            f"=== {phase}: {done}/{n} in {elapsed:.1f}s = {result['jobs_per_second']}/s"
            + (f" (Little's-law bound {bound}/s)" if bound else "")
            + f", {result['writes']['per_job']} API writes per job, kwok "
            f"{result['kwok']['status_patches_per_pod']} status patches per pod"
        )
        return result
    finally:
        if operator is not None:
            operator.stop()
        if not args.keep_namespaces:
            await cleanup_namespace(ctx.kube, ns)  # Kueue still runs: it owns finalizers
        if manager is not None:
            if not args.keep_namespaces:
                await kueue.uninstall(ctx.kube, ns)
            manager.stop()


def operator_summary(text: str, usage: dict[str, Any], max_depth: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "peak_rss_bytes": usage["vm_hwm_bytes"].get("operator"),
        "cpu_seconds": usage["cpu_seconds"].get("operator"),
        "cpu_share_of_one_core": usage["cpu_share_of_one_core"].get("operator"),
        "busiest_5s_share_of_one_core": usage["busiest_5s_share_of_one_core"].get("operator"),
        "max_work_queue_depth_seen": max_depth,
    }
    sums = operator_metric(text, "conveyor_reconcile_time_seconds_sum")
    counts = operator_metric(text, "conveyor_reconcile_time_seconds_count")
    reconcile = {}
    for labels, total in sums.items():
        count = counts.get(labels, 0)
        kind = labels.strip("{}").partition("=")[2].strip('"') or labels
        reconcile[kind] = {
            "count": int(count),
            "seconds": round(total, 2),
            "mean_ms": round(1000 * total / count, 2) if count else None,
        }
    out["reconcile"] = reconcile
    return out


# ---------------------------------------------------------------- tuned Job baseline


async def with_tuned_kcm(
    ctx: Ctx, run: Callable[[str], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run a phase with kube-controller-manager on --kcm-tuned-flags, put back afterwards."""
    flags = ctx.args.kcm_tuned_flags.split()
    log(
        f"restarting kube-controller-manager with {' '.join(flags)} (others' tests see a short gap)"
    )
    await asyncio.to_thread(kcm, "set", *flags)
    try:
        return await run(" ".join(flags))
    finally:
        log("restoring kube-controller-manager's own flags")
        await asyncio.to_thread(kcm, "reset")


async def job_tuned(ctx: Ctx, n: int) -> dict[str, Any]:
    return await with_tuned_kcm(
        ctx, lambda note: throughput(ctx, "job-tuned", kind="job", n=n, kcm_note=note)
    )


async def kueue_phase(ctx: Ctx, n: int) -> dict[str, Any]:
    """batch/v1 Jobs through Kueue (a ClusterQueue with a quota of --kueue-quota
    pods), with the controller-manager tuned as for job-tuned."""
    return await with_tuned_kcm(
        ctx, lambda note: throughput(ctx, "kueue", kind="kueue", n=n, kcm_note=note)
    )


def default_kcm_note() -> str:
    flags = [
        f
        for f in kcm_flags()
        if any(k in f for k in ("--kube-api-qps", "--kube-api-burst", "--concurrent-job-syncs"))
    ]
    return (
        " ".join(flags)
        or "defaults (--kube-api-qps=20 --kube-api-burst=30 --concurrent-job-syncs=5)"
    )


# ---------------------------------------------------------------- latency at low load


async def latency(ctx: Ctx, kind: str) -> dict[str, Any]:
    """One object at a time through `kubectl apply`: object visible -> its pod
    created, and pod Succeeded -> object Succeeded."""
    args = ctx.args
    samples = args.latency_samples
    phase = f"latency-{kind}"
    ns = ctx.ns(phase)
    log(f"=== phase {phase}: {samples} jobs one at a time through kubectl apply")
    if kind == "kueue":
        kueue.stop_stale()
        await kueue.release_workloads(ctx.kube, ns)
    await create_namespace(ctx.kube, ns)
    operator = None
    manager: KueueManager | None = None
    try:
        if kind == "kueue":
            manager = kueue.manager_for(args, ctx.kubeconfig, ns, ctx.log_dir)
            await kueue.start(ctx.kube, manager, ns, args.kueue_quota)
        if kind == "conveyor":
            await wait_for_exclusive(ctx, [ns])
            await ctx.kube.create(
                f"{workloads.GROUP_PATH}/namespaces/{ns}/jobqueues",
                workloads.queue("q00", ns, args.concurrency),
            )
            operator = OperatorProcess(
                ctx.kubeconfig,
                [ns],
                ctx.log_dir / f"operator-{phase}.log",
                extra_args=args.operator_args,
                metrics=True,
            )
            operator.spawn()
            ctx.own_pids.add(operator.proc.pid)  # type: ignore[union-attr]
            await operator.until_healthy()
        result = {
            "phase": phase,
            "kind": kind,
            "samples": samples,
            **await sample_latency(
                ctx, ns, kind, samples, operator=operator, manager=manager, label=phase
            ),
        }
        log(
            f"=== {phase}: created->pod p50 {result['created_to_pod']['p50_ms']} ms "
            f"p99 {result['created_to_pod']['p99_ms']} ms; pod Succeeded->done p50 "
            f"{result['pod_succeeded_to_done']['p50_ms']} ms p99 "
            f"{result['pod_succeeded_to_done']['p99_ms']} ms"
        )
        return result
    finally:
        if operator is not None:
            operator.stop()
        if not args.keep_namespaces:
            await cleanup_namespace(ctx.kube, ns)
        if manager is not None:
            if not args.keep_namespaces:
                await kueue.uninstall(ctx.kube, ns)
            manager.stop()


async def sample_latency(
    ctx: Ctx,
    ns: str,
    kind: str,
    samples: int,
    *,
    operator: OperatorProcess | None,
    label: str,
    prefix: str = "l-",
    manager: KueueManager | None = None,
) -> dict[str, Any]:
    """`samples` jobs (BackgroundJobs in queue q00, batch/v1 Jobs, or batch/v1
    Jobs for Kueue) applied one at a time, each after the previous finished:
    the latency figures."""
    args = ctx.args
    if kind == "conveyor":
        path = f"{workloads.GROUP_PATH}/namespaces/{ns}/backgroundjobs"
        outcome = workloads.bgj_outcome
    else:
        path = f"/apis/batch/v1/namespaces/{ns}/jobs"
        outcome = workloads.job_outcome
    # only this sample's objects: the namespace may hold 50,000 others (growth)
    selector = {"labelSelector": f"{SAMPLE_LABEL}={label}"}
    jobs = Tracker(samples, outcome)
    pod_created: dict[str, float] = {}
    pod_done: dict[str, float] = {}

    def on_pod(kind_: str, obj: dict[str, Any]) -> None:
        owner = workloads.owner_name(obj)
        if owner is None or kind_ == "DELETED":
            return
        now = time.monotonic()
        pod_created.setdefault(owner, now)
        if workloads.pod_outcome(obj) is not None:
            pod_done.setdefault(owner, now)

    pods = Tracker(10**9, workloads.pod_outcome)
    pods.extra.append(lambda k, o, _t: on_pod(k, o))
    kubectl = [binary("kubectl"), f"--kubeconfig={ctx.kubeconfig}"]
    apply_seconds: list[float] = []
    to_pod: list[float] = []
    to_done: list[float] = []
    end_to_end: list[float] = []
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        async with (
            watching(ctx.kube, path, jobs, params=selector),
            watching(ctx.kube, f"/api/v1/namespaces/{ns}/pods", pods, params=selector),
        ):
            for i in range(samples):
                name = f"{prefix}{i:04d}"
                if kind == "conveyor":
                    obj = workloads.background_job(name, ns, "q00", fail=False, run_for=None)
                elif kind == "kueue":
                    obj = workloads.kueue_job(name, ns, kueue.LOCAL_QUEUE, fail=False, run_for=None)
                else:
                    obj = workloads.batch_job(name, ns, fail=False, run_for=None)
                workloads.label(obj, SAMPLE_LABEL, label)
                f = Path(tmp) / f"{name}.yaml"
                f.write_text(yaml.safe_dump(obj))
                t = time.monotonic()
                proc = await asyncio.create_subprocess_exec(
                    *kubectl,
                    "apply",
                    "-f",
                    str(f),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                _, err = await proc.communicate()
                if proc.returncode != 0:
                    raise RuntimeError(f"kubectl apply failed: {err.decode()[-500:]}")
                apply_seconds.append(time.monotonic() - t)
                deadline = time.monotonic() + 60
                while name not in jobs.finished:
                    if time.monotonic() > deadline:
                        raise PhaseAbortedError(f"{kind} {name} did not finish within 60s")
                    if operator is not None:
                        operator.check()
                    if manager is not None:
                        manager.check()
                    await asyncio.sleep(0.005)
                seen = jobs.seen[name]
                if name in pod_created:
                    to_pod.append(pod_created[name] - seen)
                if name in pod_done:
                    to_done.append(jobs.finished[name][0] - pod_done[name])
                end_to_end.append(jobs.finished[name][0] - seen)
                if (i + 1) % 20 == 0:
                    print(f"[{label}] {i + 1}/{samples}", flush=True)
                await asyncio.sleep(args.latency_gap)

    def ms(values: list[float]) -> dict[str, float | None]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(1000 * v, 1)

        return {
            "p50_ms": r(percentile(values, 50)),
            "p99_ms": r(percentile(values, 99)),
            "max_ms": r(max(values) if values else None),
            "mean_ms": r(statistics.fmean(values) if values else None),
            "samples": len(values),
        }

    return {
        "created_to_pod": ms(to_pod),
        "pod_succeeded_to_done": ms(to_done),
        "created_to_done": ms(end_to_end),
        "kubectl_apply": ms(apply_seconds),
    }


# ---------------------------------------------------------------- restart with a backlog


async def first_admission(
    operator: OperatorProcess, pods: Tracker, within: float, label: str
) -> tuple[float, float]:
    """Seconds from the operator's spawn to its liveness and to the first pod
    seen in `pods` (its first admission)."""
    healthy = await operator.until_healthy(within=within)
    deadline = time.monotonic() + within
    while pods.first_seen_at is None:
        operator.check()
        if time.monotonic() > deadline:
            raise PhaseAbortedError(f"no pod {within}s after the restart")
        await asyncio.sleep(0.01)
    first = pods.first_seen_at - operator.started_at
    log(f"[{label}] first admission {first:.2f}s after the operator started")
    return healthy, first


async def restart(ctx: Ctx, n: int) -> dict[str, Any]:
    """n jobs wait while no operator runs; then the operator starts: how long
    until it admits the first one (creates its pod), and what it costs to hold
    them all."""
    args = ctx.args
    phase = "restart"
    ns = ctx.ns(phase)
    log(f"=== phase {phase}: {n} jobs pending, then the operator starts")
    await create_namespace(ctx.kube, ns)
    operator = None
    try:
        await wait_for_exclusive(ctx, [ns])
        await ctx.kube.create(
            f"{workloads.GROUP_PATH}/namespaces/{ns}/jobqueues",
            workloads.queue("q00", ns, args.concurrency),
        )
        objects = [
            workloads.background_job(
                workloads.job_name(i), ns, "q00", fail=False, run_for=args.run_for
            )
            for i in range(n)
        ]
        path = f"{workloads.GROUP_PATH}/namespaces/{ns}/backgroundjobs"
        t = time.monotonic()
        await submit_all(ctx.kube, path, objects, args.submit_concurrency, [0])
        log(f"[{phase}] {n} jobs submitted in {time.monotonic() - t:.1f}s, no operator running")
        pods = Tracker(10**9, workloads.pod_outcome)
        async with watching(ctx.kube, f"/api/v1/namespaces/{ns}/pods", pods):
            operator = OperatorProcess(
                ctx.kubeconfig,
                [ns],
                ctx.log_dir / f"operator-{phase}.log",
                extra_args=args.operator_args,
                metrics=True,
            )
            sampler = Sampler(control_plane_pids(ctx), interval=0.25)
            operator.spawn()
            ctx.own_pids.add(operator.proc.pid)  # type: ignore[union-attr]
            sampler.add("operator", operator.pid)
            sampler.start()
            healthy, first = await first_admission(operator, pods, args.phase_timeout, phase)
            await asyncio.sleep(args.restart_observe)
            usage = await sampler.stop()
            admitted = len(pods.seen)
        result = {
            "phase": phase,
            "jobs_pending": n,
            "seconds_to_first_admission": round(first, 2),
            "seconds_to_liveness": round(healthy, 2),
            "observed_seconds_after_first": args.restart_observe,
            "pods_created_while_observed": admitted,
            "operator": {
                "peak_rss_bytes": usage["vm_hwm_bytes"].get("operator"),
                "cpu_seconds": usage["cpu_seconds"].get("operator"),
            },
            "usage": usage,
        }
        log(
            f"=== {phase}: first admission {first:.2f}s after start; {admitted} pods in the next "
            f"{args.restart_observe}s; peak RSS "
            f"{(result['operator']['peak_rss_bytes'] or 0) / 2**20:.0f} MiB"
        )
        return result
    finally:
        if operator is not None:
            operator.stop()
        if not args.keep_namespaces:
            await cleanup_namespace(ctx.kube, ns)
