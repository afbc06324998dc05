"""`python -m chaos` / `make chaos`: faults injected into a running Conveyor, with figures.

Runs on the local cluster (`make cluster`), with the operator as local
processes of this checkout, each scenario in a namespace of its own: kill -9
at random moments, leader takeovers (graceful, kill -9, a network cut), the
API server and etcd restarted with their state, a resource the operator can
no longer list (RBAC revoked; CRDs deleted), the kubelet lost until its node
is NotReady, 5 % of writes refused with 500/429, and a memory soak. It prints
a table (jobs, faults, lost, duplicated, over quota, time to recover) and
writes it into docs/reliability.md. It restarts cluster components and deletes
CRDs: run it on a cluster nothing else uses. Exit status 1 if a scenario
failed its verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

import bench.cluster
from bench.cluster import STATE, Kwok, log
from bench.kube import Kube
from tests.cluster.operator import ROOT, apply_crds

from chaos import report, scenarios
from chaos.harness import Context, Row

ALL = ["kill", "takeover", "restarts", "unlistable", "crds", "kubelet", "faults", "soak"]
NEEDS_KWOK = {"faults", "soak"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(ALL), help=f"some of {','.join(ALL)}")
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and fewer trials (a few minutes)"
    )
    parser.add_argument(
        "--docs",
        choices=["auto", "always", "never"],
        default="auto",
        help="write docs/reliability.md (auto: for a full run of every scenario)",
    )
    parser.add_argument(
        "--kubeconfig", default=os.environ.get("KUBECONFIG") or str(STATE / "kubeconfig")
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench.cluster.PROGRAM = "chaos"
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(chosen) - set(ALL)
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    return asyncio.run(run(args, chosen))


async def run(args: argparse.Namespace, chosen: list[str]) -> int:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    log_dir = Path("/tmp/conveyor-chaos") / f"run-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log(f"logs of this run: {log_dir}")
    apply_crds(str(STATE / "bin" / "kubectl"), args.kubeconfig)
    began = time.monotonic()
    rows: list[Row] = []
    async with Kube(args.kubeconfig) as kube:
        ctx = Context(kube, args.kubeconfig, log_dir, args.quick)
        kwok = Kwok(kube, args.kubeconfig, log_dir, nodes=2) if NEEDS_KWOK & set(chosen) else None
        if kwok is not None:
            await kwok.start()
        try:
            plan: list[tuple[str, Callable[[], Awaitable[Row | list[Row]]]]] = [
                ("kill", lambda: scenarios.kill_nine(ctx)),
                ("takeover", lambda: scenarios.takeovers(ctx)),
                ("restarts", lambda: scenarios.control_plane_restarts(ctx)),
                ("unlistable", lambda: scenarios.unlistable(ctx)),
                ("crds", lambda: scenarios.crds_deleted(ctx)),
                ("kubelet", lambda: scenarios.kubelet_lost(ctx)),
                ("faults", lambda: scenarios.write_faults(ctx, kwok)),  # type: ignore[arg-type]
                ("soak", lambda: scenarios.soak(ctx, kwok)),  # type: ignore[arg-type]
            ]
            for number, (name, scenario) in enumerate([p for p in plan if p[0] in chosen], start=1):
                log(f"=== scenario {number}/{len(chosen)}: {name}")
                t = time.monotonic()
                try:
                    found = await scenario()
                except Exception as error:
                    traceback.print_exc()
                    found = Row(name, notes=f"the scenario failed: {error!r}"[:300], passed=False)
                found_rows = found if isinstance(found, list) else [found]
                rows += found_rows
                for row in found_rows:
                    verdict = "ok" if row.passed else "FAILED"
                    log(
                        f"[{name}] {verdict} ({time.monotonic() - t:.0f} s): {row.scenario}: "
                        f"lost {row.lost}, duplicated {row.duplicated}, over quota "
                        f"{row.over_quota}; {row.recover}; {row.notes}"
                    )
        finally:
            if kwok is not None:
                await kwok.stop()
    minutes = (time.monotonic() - began) / 60
    table = report.table(rows)
    print(table)
    full = not args.quick and set(chosen) == set(ALL)
    if args.docs == "always" or (args.docs == "auto" and full):
        report.write_docs(ROOT / "docs" / "reliability.md", table, minutes, " ".join(sys.argv[1:]))
        log("wrote docs/reliability.md")
    return 0 if all(row.passed for row in rows) else 1
