"""`python -m bench` / `make bench`: Conveyor against batch/v1 Jobs and a raw
pod client on the local control plane, with kwok fake nodes. See bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import cluster, growth, phases, report, workloads
from bench.cluster import ROOT, Kwok, log
from bench.kube import Kube

ALL_PHASES = [
    "latency",
    "limit",
    "conveyor",
    "restart",
    "growth",
    "job-default",
    "job-tuned",
    "kueue",
]
STATE_DIR = Path(os.environ.get("CONVEYOR_BENCH_STATE", "/tmp/conveyor-bench"))
DEFAULT_TUNED = "--kube-api-qps=1000 --kube-api-burst=2000 --concurrent-job-syncs=50"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=10_000, help="jobs per throughput phase (10000)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=1000,
        help="Conveyor queue concurrency, split evenly over the queues of a shape (1000)",
    )
    p.add_argument(
        "--shape",
        default="0,1,20",
        help="Conveyor runs, as numbers of queues the jobs are spread over; 0: jobs that "
        "name no queue, so no concurrency cap, like the Job baselines (0,1,20)",
    )
    p.add_argument(
        "--per-queue-concurrency",
        type=int,
        default=None,
        help="give every queue this concurrency instead of splitting --concurrency",
    )
    p.add_argument(
        "--phases",
        default=",".join(ALL_PHASES),
        help=f"which phases to run, in this order anyway ({','.join(ALL_PHASES)})",
    )
    p.add_argument(
        "--latency-samples", type=int, default=100, help="jobs for the latency phase (100)"
    )
    p.add_argument("--latency-gap", type=float, default=0.2, help="pause between them, s (0.2)")
    p.add_argument(
        "--restart-jobs", type=int, default=None, help="pending jobs at the restart (--jobs)"
    )
    p.add_argument(
        "--job-default-jobs",
        type=int,
        default=None,
        help="Jobs for the kcm-defaults baseline (--jobs); its rate is set by the Job "
        "controller's 20 QPS client budget, so fewer give the same jobs/s sooner",
    )
    p.add_argument(
        "--restart-observe",
        type=float,
        default=10,
        help="keep measuring the operator this long after its first admission (10 s)",
    )
    p.add_argument(
        "--fail-percent",
        type=float,
        default=0,
        help="this share of the throughput jobs fail (kwok stage bench-pod-fail) (0)",
    )
    p.add_argument("--run-for", default=None, help="each pod runs this long, e.g. 2s (0)")
    p.add_argument("--submit-concurrency", type=int, default=64, help="creates in flight (64)")
    p.add_argument(
        "--operator-args",
        default="",
        help='extra arguments for `python -m conveyor`, e.g. "--workers 32"',
    )
    p.add_argument(
        "--kcm-tuned-flags",
        default=DEFAULT_TUNED,
        help=f"controller-manager flags of the tuned Job baseline ({DEFAULT_TUNED})",
    )
    p.add_argument(
        "--growth-steps",
        default=None,
        help="finished jobs in the namespace at each step of the growth phase "
        "(0,J,5J for --jobs J: 0,10000,50000)",
    )
    p.add_argument(
        "--growth-batch",
        type=int,
        default=None,
        help="new jobs waiting at each growth step's restart (--concurrency, at most --jobs)",
    )
    p.add_argument("--kueue-jobs", type=int, default=None, help="Jobs for the kueue phase (--jobs)")
    p.add_argument(
        "--kueue-quota",
        type=int,
        default=None,
        help="pods the Kueue ClusterQueue admits at once (--concurrency, as Conveyor's queue)",
    )
    p.add_argument(
        "--kueue-client-qps",
        type=float,
        default=1000,
        help="Kueue manager's API client budget, as the tuned controller-manager's (1000; "
        "Kueue's default is 20)",
    )
    p.add_argument("--kueue-client-burst", type=int, default=2000, help="its burst (2000)")
    p.add_argument(
        "--kwok-nice",
        type=int,
        default=-10,
        help="kwok's CPU priority (nice value; -10: it takes the CPU it needs before the "
        "control plane, as kubelets on their own machines would) (-10)",
    )
    p.add_argument(
        "--kwok-parallelism",
        type=int,
        default=64,
        help="kwok's podPlayStageParallelism: pod stage writes in flight at once (64)",
    )
    p.add_argument(
        "--kwok-stages",
        default=str(cluster.STAGES),
        help="kwok's stages (bench/kwok/stages.yaml; another file for experiments)",
    )
    p.add_argument(
        "--pod-timeline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also watch the pods of Job and Conveyor phases, to show where they wait (on)",
    )
    p.add_argument(
        "--bypass-scheduler",
        action="store_true",
        help="set spec.nodeName in every pod template: pods skip kube-scheduler",
    )
    p.add_argument("--fake-nodes", type=int, default=4, help="kwok nodes (4)")
    p.add_argument("--phase-timeout", type=float, default=7200, help="per phase, s (7200)")
    p.add_argument(
        "--noise-window",
        type=float,
        default=5,
        help="measure the cluster's background writes this long before each phase (5 s)",
    )
    p.add_argument("--progress-interval", type=float, default=5, help="progress line every N s (5)")
    p.add_argument(
        "--wait-for-operators",
        type=float,
        default=900,
        help="wait this long for another (cluster-wide) Conveyor operator to go (900 s)",
    )
    p.add_argument(
        "--kubeconfig",
        default=None,
        help="default: $KUBECONFIG, else the local cluster's admin kubeconfig",
    )
    p.add_argument(
        "--no-cluster-up",
        action="store_true",
        help="do not run tests/cluster/up.sh first (use the running cluster as is)",
    )
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), help="results directory")
    p.add_argument(
        "--docs",
        choices=["auto", "always", "never"],
        default="auto",
        help="update docs/performance.md: auto = only for a run at the issue's sizes",
    )
    p.add_argument("--keep-namespaces", action="store_true", help="leave each phase's namespace")
    p.add_argument(
        "--growth-reuse",
        action="store_true",
        help="go on in the growth namespace a --keep-namespaces run left: its jobs count "
        "toward the steps, and only the difference is made",
    )
    args = p.parse_args(argv)
    args.shapes = [int(s) for s in args.shape.split(",") if s.strip()]
    if args.kueue_quota is None:
        args.kueue_quota = args.concurrency
    args.growth_step_list = (
        [int(s) for s in args.growth_steps.split(",") if s.strip()]
        if args.growth_steps
        else [0, args.jobs, 5 * args.jobs]
    )
    if args.growth_batch is None:
        args.growth_batch = min(args.concurrency, args.jobs)
    args.phase_list = [x.strip() for x in args.phases.split(",") if x.strip()]
    unknown = set(args.phase_list) - set(ALL_PHASES)
    if unknown:
        p.error(f"unknown phases: {', '.join(sorted(unknown))}")
    args.operator_args = shlex.split(args.operator_args)
    if args.kubeconfig is None:
        args.kubeconfig = os.environ.get("KUBECONFIG") or str(cluster.STATE / "kubeconfig")
    return args


def is_full_size(args: argparse.Namespace) -> bool:
    return (
        (args.jobs, args.concurrency, args.shapes, args.per_queue_concurrency)
        == (10_000, 1000, [0, 1, 20], None)
        and args.phase_list == ALL_PHASES
        and args.job_default_jobs in (None, args.jobs)
        and args.kueue_jobs in (None, args.jobs)
        and args.growth_step_list == [0, 10_000, 50_000]
        and (args.kwok_nice, args.kwok_parallelism) == (-10, 64)
        and Path(args.kwok_stages) == cluster.STAGES
        and args.fail_percent == 0
        and not args.run_for
        and not args.bypass_scheduler
    )


async def run(args: argparse.Namespace, argv: list[str]) -> int:
    started = time.time()
    run_id = time.strftime("%Y%m%d-%H%M%S")
    log_dir = STATE_DIR / f"run-{run_id}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log(f"logs of this run: {log_dir}")
    results: dict[str, Any] = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "command": "python -m bench " + " ".join(shlex.quote(a) for a in argv),
            "args": {k: v for k, v in vars(args).items() if k not in ("phase_list",)},
            "machine": report.machine(),
            "logs": str(log_dir),
            "warnings": [],
        },
        "phases": {},
    }
    out_dir = Path(args.out)
    docs = ROOT / "docs" / "performance.md"
    update_docs = args.docs == "always" or (args.docs == "auto" and is_full_size(args))

    def save(final: bool) -> None:
        results["meta"]["duration_seconds"] = round(time.time() - started, 1)
        results["meta"]["complete"] = final
        report.write(results, out_dir, docs if (final and update_docs) else None, plot=final)

    async with Kube(args.kubeconfig, connections=max(args.submit_concurrency, 16) + 16) as kube:
        server = await kube.get("/version")
        results["meta"]["versions"] = report.versions(server)
        # a run that died while the tuned controller-manager ran left it so
        await asyncio.to_thread(cluster.kcm, "reset")
        if {"latency", "conveyor", "restart", "growth"} & set(args.phase_list):
            cluster.apply_crds(args.kubeconfig)
        kwok = Kwok(
            kube,
            args.kubeconfig,
            log_dir,
            args.fake_nodes,
            nice=args.kwok_nice,
            parallelism=args.kwok_parallelism,
            stages=Path(args.kwok_stages),
        )
        ctx = phases.Ctx(
            kube=kube, kubeconfig=args.kubeconfig, args=args, log_dir=log_dir, kwok=kwok
        )
        await kwok.start()
        if args.bypass_scheduler:
            workloads.bind_directly(kwok.nodes)
        ctx.own_pids.add(kwok.pid or 0)
        n = args.jobs
        try:
            plan: list[tuple[str, Any]] = []
            if "latency" in args.phase_list:
                plan += [
                    ("latency-conveyor", lambda: phases.latency(ctx, "conveyor")),
                    ("latency-job", lambda: phases.latency(ctx, "job")),
                ]
            if "limit" in args.phase_list:
                plan.append(("limit", lambda: phases.throughput(ctx, "limit", kind="pod", n=n)))
            if "conveyor" in args.phase_list:
                for q in args.shapes:
                    plan.append(
                        (
                            phases.conveyor_phase_name(q),
                            lambda q=q: phases.throughput(
                                ctx,
                                phases.conveyor_phase_name(q),
                                kind="conveyor",
                                n=n,
                                queues=q,
                                per_queue_concurrency=args.per_queue_concurrency,
                            ),
                        )
                    )
            if "restart" in args.phase_list:
                plan.append(("restart", lambda: phases.restart(ctx, args.restart_jobs or n)))
            if "growth" in args.phase_list:
                plan.append(("growth", lambda: growth.growth(ctx, args.growth_step_list)))
            if "job-default" in args.phase_list:
                plan.append(
                    (
                        "job-default",
                        lambda: phases.throughput(
                            ctx,
                            "job-default",
                            kind="job",
                            n=args.job_default_jobs or n,
                            kcm_note=phases.default_kcm_note(),
                        ),
                    )
                )
            if "job-tuned" in args.phase_list:
                plan.append(("job-tuned", lambda: phases.job_tuned(ctx, n)))
            if "kueue" in args.phase_list:
                plan += [
                    ("latency-kueue", lambda: phases.latency(ctx, "kueue")),
                    ("kueue", lambda: phases.kueue_phase(ctx, args.kueue_jobs or n)),
                ]
            for i, (name, fn) in enumerate(plan, 1):
                log(
                    f"phase {i}/{len(plan)}: {name}, {time.time() - started:.0f}s into the run "
                    f"(logs: {log_dir})"
                )
                try:
                    results["phases"][name] = await fn()
                except phases.PhaseAbortedError as e:
                    log(f"phase {name} aborted: {e}")
                    results["meta"]["warnings"].append(f"phase {name} aborted: {e}")
                    if "restarted" in str(e):
                        break
                save(final=False)
        finally:
            await kwok.stop()
            if {"job-tuned", "kueue"} & set(args.phase_list):
                await asyncio.to_thread(cluster.kcm, "reset")
    save(final=True)
    log(
        f"results: {out_dir / 'latest.md'}, {out_dir / 'latest.json'}"
        + (
            f", {docs}"
            if update_docs
            else " (docs/performance.md left as is: not a full-size run; --docs always)"
        )
    )
    print()
    print((out_dir / "latest.md").read_text())
    return 0 if not results["meta"]["warnings"] else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    lock = (STATE_DIR / "lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(
            "another benchmark is running (lock /tmp/conveyor-bench/lock); one at a time",
            file=sys.stderr,
        )
        return 2
    if not args.no_cluster_up:
        log("bringing up (or reusing) the local cluster: tests/cluster/up.sh")
        subprocess.run(
            ["bash", str(ROOT / "tests" / "cluster" / "up.sh"), "--with-kwok"], check=True
        )

    loop = asyncio.new_event_loop()
    task = loop.create_task(run(args, argv))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        log("interrupted; cleaned up what it could")
        return 130
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
