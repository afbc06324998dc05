"""The `growth` phase: what the operator costs as finished work piles up.

BackgroundJobs keep their pods and their status when they finish (no TTL), so
a namespace that ran 50,000 jobs holds 50,000 of each, and the operator lists,
indexes and watches all of them. At each step (`--growth-steps`, e.g.
0,10000,50000 finished jobs) the operator is started afresh over the
namespace with `--growth-batch` new jobs waiting (once the namespace is still:
kwok has finished every pod and the pod GC has taken the finished pods past
its threshold), and the harness measures:
restart -> first admission, its peak RSS while the batch runs, and apply ->
pod and pod done -> job done of `--latency-samples` jobs one at a time
afterwards. Each figure's growth per 10,000 finished jobs is the slope of a
least-squares line through the steps.

The filler is made fast and honestly. One real job (the seed) runs through
the operator first; each filler job is then a copy of it: the BackgroundJob
created by the harness, its pod as the operator made the seed's (the same
labels, owner reference, spec and node, under the filler's name and uid),
run to Succeeded by kwok like any pod, and then the seed's final status,
under the filler's names and uids, written to the job. Many at once, no
operator running: about five API writes per filler, against the ten or so a
job costs through the operator.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from tests.cluster.operator import OperatorProcess

from bench import workloads
from bench.cluster import cleanup_namespace, create_namespace, log
from bench.operator import Sampler
from bench.phases import (
    Ctx,
    PhaseAbortedError,
    Tracker,
    control_plane_pids,
    first_admission,
    sample_latency,
    submit_all,
    wait_for_exclusive,
    watching,
)

PHASE = "growth"
SEED = "growth-seed-job"  # distinctive: the copies replace it by the filler's name
QUEUE = "q00"
STALL_SECONDS = 120  # the filler gives up when no job finished for this long
OBJECT_META = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")
# A step measures once the namespace is still: kwok has finished every pod and the pod
# GC (every 20 s, past --terminated-pod-gc-threshold finished pods) has taken what it takes.
SETTLE_QUIET_SECONDS = 45
SETTLE_TIMEOUT_SECONDS = 1200


async def growth(ctx: Ctx, steps: list[int]) -> dict[str, Any]:
    args = ctx.args
    ns = ctx.ns(PHASE)
    log(f"=== phase {PHASE}: the operator over {', '.join(map(str, steps))} finished jobs")
    jobs_path = f"{workloads.GROUP_PATH}/namespaces/{ns}/backgroundjobs"
    reused = args.growth_reuse and await ctx.kube.exists(f"{jobs_path}/{SEED}")
    if not reused:
        await create_namespace(ctx.kube, ns)
    try:
        await wait_for_exclusive(ctx, [ns])
        if reused:
            filler, finished = await _reuse(ctx, ns)
            tags = f"r{int(time.time()) % 100_000}"  # apart from the earlier runs' batches
        else:
            await ctx.kube.create(
                f"{workloads.GROUP_PATH}/namespaces/{ns}/jobqueues",
                workloads.queue(QUEUE, ns, args.concurrency),
            )
            seed_job, seed_pod = await run_seed(ctx, ns)
            filler = Filler(ctx, ns, seed_job, seed_pod)
            finished = 1  # the seed
            tags = ""
        measured: list[dict[str, Any]] = []
        for i, target in enumerate(steps):
            if target < finished and reused and measured:
                log(f"[{PHASE}] step {target} skipped: {finished} jobs are there already")
                continue
            if target > finished:
                if filler is None:
                    raise PhaseAbortedError(f"the seed's pod is gone: cannot make {target} jobs")
                t = time.monotonic()
                await filler.fill(target - finished)
                seconds = time.monotonic() - t
                log(
                    f"[{PHASE}] {target - finished} finished jobs made in {seconds:.0f}s "
                    f"({(target - finished) / max(seconds, 1e-6):.0f}/s)"
                )
                finished = target
            still = await settle(ctx, ns)
            step = await measure_step(ctx, ns, jobs_path, finished, f"{tags}s{i}")
            step.update(still)
            measured.append(step)
            finished += args.growth_batch + args.latency_samples
        result = {
            "phase": PHASE,
            "steps": measured,
            "filler": filler.summary() if filler is not None else None,
            "growth_per_10k_jobs": slopes(measured),
        }
        log(f"=== {PHASE}: per 10,000 finished jobs: {result['growth_per_10k_jobs']}")
        return result
    finally:
        if not args.keep_namespaces:
            await cleanup_namespace(ctx.kube, ns)


async def _reuse(ctx: Ctx, ns: str) -> tuple[Filler | None, int]:
    """The filler of a namespace an earlier run left, and how many jobs (all finished) it
    holds."""
    jobs_path = f"{workloads.GROUP_PATH}/namespaces/{ns}/backgroundjobs"
    seed_job = await ctx.kube.get(f"{jobs_path}/{SEED}")
    pods = await ctx.kube.get(
        f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": f"conveyor.dev/job={SEED}"}
    )
    # The pod GC may have taken the seed's pod (the oldest of many finished ones): then
    # the steps can measure what is there, and make no more.
    filler = Filler(ctx, ns, seed_job, pods["items"][0]) if pods["items"] else None
    items, _version = await ctx.kube.list(jobs_path)
    names = [item["metadata"]["name"] for item in items]
    fillers = sum(1 for name in names if name.startswith("f-"))
    if filler is not None:
        filler.made = fillers
    log(f"[{PHASE}] going on in {ns}: {len(names)} jobs, {fillers} of them fillers")
    return filler, len(names)


def _operator(ctx: Ctx, ns: str, name: str) -> OperatorProcess:
    operator = OperatorProcess(
        ctx.kubeconfig,
        [ns],
        ctx.log_dir / f"operator-{PHASE}-{name}.log",
        extra_args=ctx.args.operator_args,
        metrics=True,
    )
    operator.spawn()
    ctx.own_pids.add(operator.proc.pid)  # type: ignore[union-attr]
    return operator


async def run_seed(ctx: Ctx, ns: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """One job through the operator: its final object and its pod, the model of every filler."""
    jobs_path = f"{workloads.GROUP_PATH}/namespaces/{ns}/backgroundjobs"
    operator = _operator(ctx, ns, "seed")
    try:
        await operator.until_healthy()
        jobs = Tracker(1, workloads.bgj_outcome)
        async with watching(ctx.kube, jobs_path, jobs):
            job = workloads.background_job(SEED, ns, QUEUE, fail=False, run_for=None)
            await ctx.kube.create(jobs_path, job)
            try:
                await asyncio.wait_for(jobs.done.wait(), timeout=120)
            except TimeoutError as e:
                raise PhaseAbortedError("the seed job did not finish within 120 s") from e
        # the status settles with the Succeeded write; give a late queue write a moment
        seed_job = await ctx.kube.get(f"{jobs_path}/{SEED}")
        pods = await ctx.kube.get(f"/api/v1/namespaces/{ns}/pods")
        owned = [p for p in pods["items"] if workloads.owner_name(p) == SEED]
        if len(owned) != 1:
            raise PhaseAbortedError(f"the seed job has {len(owned)} pods, not 1")
        return seed_job, owned[0]
    finally:
        operator.stop()


class Filler:
    """Makes finished jobs as copies of the seed (module docstring)."""

    def __init__(
        self, ctx: Ctx, ns: str, seed_job: dict[str, Any], seed_pod: dict[str, Any]
    ) -> None:
        self.ctx, self.ns = ctx, ns
        self.jobs_path = f"{workloads.GROUP_PATH}/namespaces/{ns}/backgroundjobs"
        self.pods_path = f"/api/v1/namespaces/{ns}/pods"
        self.seed_uid = seed_job["metadata"]["uid"]
        self.seed_pod_uid = seed_pod["metadata"]["uid"]
        self.seed_pod_name = seed_pod["metadata"]["name"]
        self.status_text = json.dumps(seed_job["status"])
        pod = json.loads(json.dumps(seed_pod))
        pod.pop("status", None)
        for key in OBJECT_META:
            pod["metadata"].pop(key, None)
        self.pod_text = json.dumps(pod)
        self.job_spec = seed_job["spec"]
        self.nodes = itertools.cycle(ctx.kwok.nodes)
        self.made = 0
        self.seconds = 0.0

    def _copy(self, text: str, name: str, uid: str, pod_uid: str = "") -> Any:
        text = text.replace(SEED, name).replace(self.seed_uid, uid)
        if pod_uid:
            text = text.replace(self.seed_pod_uid, pod_uid)
        return json.loads(text)

    async def fill(self, count: int) -> None:
        start = self.made
        names = [f"f-{i:06d}" for i in range(start, start + count)]
        pending: dict[str, tuple[str, str]] = {}  # pod name -> (job name, job uid)
        done: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        patched = [0]

        def on_pod(kind: str, obj: dict[str, Any], _now: float) -> None:
            meta = obj["metadata"]
            entry = pending.get(meta["name"])
            if entry is None or kind == "DELETED" or workloads.pod_outcome(obj) is None:
                return
            del pending[meta["name"]]
            done.put_nowait((*entry, meta["uid"]))

        async def make(name: str) -> None:
            job = {
                "apiVersion": "conveyor.dev/v1alpha1",
                "kind": "BackgroundJob",
                "metadata": {"name": name, "namespace": self.ns},
                "spec": self.job_spec,
            }
            created = await self.ctx.kube.create_object(self.jobs_path, job)
            uid = created["metadata"]["uid"]
            pod = self._copy(self.pod_text, name, uid)
            pod["spec"]["nodeName"] = next(self.nodes)  # the fake nodes share them
            pending[pod["metadata"]["name"]] = (name, uid)
            await self.ctx.kube.create(self.pods_path, pod)

        async def finish() -> None:
            while patched[0] < count:
                name, uid, pod_uid = await done.get()
                status = self._copy(self.status_text, name, uid, pod_uid)
                await self.ctx.kube.request(
                    "PATCH",
                    f"{self.jobs_path}/{name}/status",
                    body={"status": status},
                    content_type="application/merge-patch+json",
                )
                patched[0] += 1

        pods = Tracker(10**9, workloads.pod_outcome)
        pods.extra.append(on_pod)
        t0 = time.monotonic()
        conc = self.ctx.args.submit_concurrency
        async with watching(self.ctx.kube, self.pods_path, pods):
            makers = asyncio.create_task(_bounded(make, names, conc))
            finishers = [asyncio.create_task(finish()) for _ in range(conc)]
            last, last_t, moved = 0, t0, t0
            try:
                while patched[0] < count:
                    await asyncio.sleep(self.ctx.args.progress_interval)
                    if makers.done() and makers.exception() is not None:
                        raise makers.exception()  # type: ignore[misc]
                    self.ctx.kwok.check()
                    now = time.monotonic()
                    if patched[0] > last:
                        moved = now
                    elif now - moved > STALL_SECONDS:
                        raise PhaseAbortedError(
                            f"the filler made no finished job for {STALL_SECONDS} s "
                            f"({patched[0]}/{count}; {len(pending)} pods not finished)"
                        )
                    print(
                        f"[{PHASE}] filler: {patched[0]}/{count} finished, "
                        f"{(patched[0] - last) / (now - last_t):.0f}/s now",
                        flush=True,
                    )
                    last, last_t = patched[0], now
            finally:
                for task in [makers, *finishers]:
                    task.cancel()
                await asyncio.gather(makers, *finishers, return_exceptions=True)
        self.made += count
        self.seconds += time.monotonic() - t0

    def summary(self) -> dict[str, Any]:
        return {
            "made": self.made,
            "seconds": round(self.seconds, 1),
            "per_second": round(self.made / self.seconds, 1) if self.seconds else None,
        }


async def _bounded(fn: Any, items: list[str], concurrency: int) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(item: str) -> None:
        async with sem:
            await fn(item)

    await asyncio.gather(*(one(i) for i in items))


async def _pod_counts(ctx: Ctx, ns: str) -> tuple[int, int]:
    """Pods in the namespace, and how many of them are not finished."""
    path = f"/api/v1/namespaces/{ns}/pods"
    page = await ctx.kube.get(path, params={"limit": "1"})
    remaining = (page.get("metadata") or {}).get("remainingItemCount")
    if remaining is None:
        everything, _ = await ctx.kube.list(path)
        total = len(everything)
    else:
        total = len(page.get("items") or []) + int(remaining)
    running, _ = await ctx.kube.list(
        path, params={"fieldSelector": "status.phase!=Succeeded,status.phase!=Failed"}
    )
    return total, len(running)


async def settle(ctx: Ctx, ns: str) -> dict[str, Any]:
    """Wait until kwok has finished every pod of the namespace and its pod count has not
    moved for SETTLE_QUIET_SECONDS (the pod GC is done), so that a step measures the
    operator over what is kept, not kwok's or the pod GC's backlog."""
    t0 = time.monotonic()
    total, unfinished = await _pod_counts(ctx, ns)
    still_since = t0
    settled = False
    while True:
        now = time.monotonic()
        if unfinished == 0 and now - still_since >= SETTLE_QUIET_SECONDS:
            settled = True
            break
        if now - t0 > SETTLE_TIMEOUT_SECONDS:
            log(
                f"[{PHASE}] WARNING: the namespace did not settle in "
                f"{SETTLE_TIMEOUT_SECONDS} s ({total} pods, {unfinished} not finished): "
                "measuring anyway"
            )
            break
        await asyncio.sleep(ctx.args.progress_interval)
        ctx.kwok.check()
        before = total
        total, unfinished = await _pod_counts(ctx, ns)
        if total != before or unfinished:
            still_since = time.monotonic()
        log(
            f"[{PHASE}] settling: {total} pods ({unfinished} not finished), "
            f"still for {time.monotonic() - still_since:.0f}/{SETTLE_QUIET_SECONDS} s"
        )
    waited = time.monotonic() - t0
    log(f"[{PHASE}] settled in {waited:.0f} s: {total} pods in the namespace")
    return {"pods_in_namespace": total, "settle_seconds": round(waited, 1), "settled": settled}


async def measure_step(
    ctx: Ctx, ns: str, jobs_path: str, finished: int, tag: str
) -> dict[str, Any]:
    """With `finished` finished jobs in the namespace and no operator running:
    --growth-batch new jobs wait; the operator starts; time to its first pod,
    then the batch runs, then the latency samples. Peak RSS over it all."""
    args = ctx.args
    batch = [
        workloads.background_job(f"{tag}-{i:05d}", ns, QUEUE, fail=False, run_for=None)
        for i in range(args.growth_batch)
    ]
    for obj in batch:
        workloads.label(obj, "bench.conveyor.dev/batch", tag)
    await submit_all(ctx.kube, jobs_path, batch, args.submit_concurrency, [0])
    selector = {"labelSelector": f"bench.conveyor.dev/batch={tag}"}
    jobs = Tracker(len(batch), workloads.bgj_outcome)
    pods = Tracker(10**9, workloads.pod_outcome)
    log(f"[{PHASE}] {finished} finished jobs, {len(batch)} waiting: starting the operator")
    async with (
        watching(ctx.kube, jobs_path, jobs, params=selector),
        watching(ctx.kube, f"/api/v1/namespaces/{ns}/pods", pods, params=selector),
    ):
        sampler = Sampler(control_plane_pids(ctx), interval=0.25)
        operator = _operator(ctx, ns, tag)
        try:
            sampler.add("operator", operator.pid)
            sampler.start()
            healthy, first = await first_admission(operator, pods, args.phase_timeout, PHASE)
            try:
                await asyncio.wait_for(jobs.done.wait(), timeout=args.phase_timeout)
            except TimeoutError as e:
                raise PhaseAbortedError(f"the batch of {len(batch)} did not finish") from e
            batch_s = (jobs.last_finish() or time.monotonic()) - operator.started_at
            lat = await sample_latency(
                ctx,
                ns,
                "conveyor",
                args.latency_samples,
                operator=operator,
                label=f"{PHASE}-{tag}",
                prefix=f"{tag}-l-",
            )
            usage = await sampler.stop()
        finally:
            operator.stop()
    step = {
        "finished_jobs": finished,
        "seconds_to_first_admission": round(first, 2),
        "seconds_to_liveness": round(healthy, 2),
        "batch": len(batch),
        "batch_seconds_after_start": round(batch_s, 2),
        "operator_peak_rss_bytes": usage["vm_hwm_bytes"].get("operator"),
        "operator_cpu_seconds": usage["cpu_seconds"].get("operator"),
        **lat,
    }
    log(
        f"[{PHASE}] {finished} finished: first admission {first:.2f}s, peak RSS "
        f"{(step['operator_peak_rss_bytes'] or 0) / 2**20:.0f} MiB, apply->pod p50 "
        f"{lat['created_to_pod']['p50_ms']} ms, pod done->status p50 "
        f"{lat['pod_succeeded_to_done']['p50_ms']} ms"
    )
    return step


FIGURES: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "peak_rss_mib": lambda s: (s["operator_peak_rss_bytes"] or 0) / 2**20,
    "restart_to_first_admission_s": lambda s: s["seconds_to_first_admission"],
    "apply_to_pod_p50_ms": lambda s: s["created_to_pod"]["p50_ms"],
    "pod_done_to_status_p50_ms": lambda s: s["pod_succeeded_to_done"]["p50_ms"],
}


def slopes(steps: list[dict[str, Any]]) -> dict[str, float | None]:
    """Least-squares growth of each figure per 10,000 finished jobs."""
    xs = [s["finished_jobs"] / 10_000 for s in steps]
    out: dict[str, float | None] = {}
    for name, get in FIGURES.items():
        ys = [y for y in (get(s) for s in steps) if y is not None]
        if len(ys) < len(steps) or len(set(xs)) < 2:
            out[name] = None
            continue
        out[name] = round(statistics.linear_regression(xs, ys).slope, 3)
    return out
