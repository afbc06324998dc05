"""`conveyor` / `python -m conveyor`: run the operator against the cluster the kubeconfig names.

With no `--namespace`, it watches every namespace; with one or more, only
those. Inside a pod it uses the pod's service account, elsewhere the current
kubeconfig context.

kopf runs the process: startup and cleanup, signals, the liveness endpoint
and its probe. The watches are the operator's own (`runtime.watches`).

With `--leader-election` (the chart's default, for its two replicas) every
replica watches, and only the holder of the Lease decides and writes
(`runtime.leadership`): each term begins with a fresh controller that looks
at everything in the warm cache once, and ends, when the lease is lost, with
that controller stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import socket
import sys
import time
from typing import Any

import kopf
from aiohttp import web

from conveyor.runtime import metrics
from conveyor.runtime.cache import Cache
from conveyor.runtime.controller import Controller
from conveyor.runtime.kube import ClientKubeApi
from conveyor.runtime.leadership import Leadership, Timing
from conveyor.runtime.watches import Watches

log = logging.getLogger("conveyor")

GRACE = 5.0
"""Seconds a watch may fail to list before the operator stops acting (see `Watches.guard`)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="conveyor", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help=(
            "watch only this namespace, or namespaces matching a pattern such as 'team-*' "
            "or '!kube-*' (repeat for several; default: all namespaces). A pattern "
            "watches cluster-wide and ignores other namespaces, so it needs a ClusterRole"
        ),
    )
    parser.add_argument(
        "--liveness",
        default=os.environ.get("CONVEYOR_LIVENESS", ""),
        help="serve liveness probes at this URL, e.g. http://0.0.0.0:8080/healthz",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus metrics on this port (default: off)",
    )
    parser.add_argument(
        "--workers", type=int, default=32, help="reconcilers working at once (default 32)"
    )
    parser.add_argument(
        "--api-threads",
        type=int,
        default=32,
        help="threads for the lists and log reads (default 32)",
    )
    parser.add_argument(
        "--operator-id",
        default=os.environ.get("CONVEYOR_OPERATOR_ID", ""),
        help=(
            "this operator's name on the pods it creates, shared by the replicas of one "
            "release, so that another operator acting in the same namespaces is reported "
            "(default: the Lease's namespace/name with leader election, else the host name)"
        ),
    )
    parser.add_argument(
        "--quiet-event",
        action="append",
        default=[],
        metavar="REASON",
        help=(
            "post no events of this reason (repeat for several), e.g. Started, which the "
            "Running phase and the Admitted condition say too: one API write less per attempt"
        ),
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("CONVEYOR_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    election = parser.add_argument_group(
        "leader election", "several replicas, of which only the Lease's holder acts"
    )
    election.add_argument(
        "--leader-election",
        action="store_true",
        default=os.environ.get("CONVEYOR_LEADER_ELECTION", "") == "true",
        help="act only while holding the Lease below (default: act at once, alone)",
    )
    election.add_argument(
        "--leader-election-name", default="conveyor", help="the Lease's name (default conveyor)"
    )
    election.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        help="the Lease's namespace (default: this pod's, else default)",
    )
    defaults = Timing()
    election.add_argument(
        "--lease-duration", type=int, default=defaults.lease_duration, help="seconds"
    )
    election.add_argument(
        "--renew-deadline", type=int, default=defaults.renew_deadline, help="seconds"
    )
    election.add_argument("--retry-period", type=int, default=defaults.retry_period, help="seconds")
    return parser.parse_args(argv)


def identity() -> str:
    """This replica's name in the Lease: its pod's name, else host and process."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def operator_id(args: argparse.Namespace) -> str:
    """The operator's identity on its pods (see `runtime.rivals`)."""
    if args.operator_id:
        return str(args.operator_id)
    if args.leader_election:
        return f"{args.leader_election_namespace}/{args.leader_election_name}"
    return socket.gethostname()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The client's election logs every renewal at INFO; ours logs each term's start and end.
    for noisy in ("kopf.activities.probe", "aiohttp.access", "leaderelection"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    api = ClientKubeApi(threads=args.api_threads)
    cache = Cache()
    leadership = (
        Leadership(
            api.client,
            name=args.leader_election_name,
            namespace=args.leader_election_namespace,
            identity=identity(),
            timing=Timing(args.lease_duration, args.renew_deadline, args.retry_period),
        )
        if args.leader_election
        else None
    )
    if leadership is not None:
        api.fence = leadership.may_write
    controllers: list[Controller] = []
    watches: list[Watches] = []
    tasks: list[asyncio.Task[None]] = []
    servers: list[web.AppRunner] = []

    async def term(watching: Watches) -> Controller:
        controller = Controller(
            api,
            cache,
            workers=args.workers,
            identity=operator_id(args),
            quiet_events=frozenset(args.quiet_event),
            complete=watching.synced,
        )
        controllers[:] = [controller]
        controller.resync()
        if watching.stale(GRACE):
            controller.work.pause()  # the guard lets it go once every watch lists
        controller.start()
        metrics.STATE.follow(controller)
        return controller

    async def complete(watching: Watches, began: float) -> None:
        await watching.wait_synced()
        log.info("listed everything: %s in %.2f s", watching.counts(), time.monotonic() - began)
        # What the lists brought lives long: spare it the cyclic collector's full passes,
        # each of which walked every record (257 ms at 50,000 jobs and 30,000 pods).
        gc.freeze()
        for controller in controllers:
            controller.completed()

    async def decide(watching: Watches) -> None:
        began = time.monotonic()
        await watching.wait_ready()
        log.info("listed %s in %.2f s: deciding", watching.counts(), time.monotonic() - began)
        tasks.append(asyncio.create_task(complete(watching, began), name="conveyor-complete"))
        if leadership is None:
            metrics.LEADER.set(1)
            await term(watching)
            return
        while True:
            await leadership.acquired()
            controller = await term(watching)
            await leadership.lost()
            metrics.STATE.follow(None)
            await controller.stop()
            log.warning("this term is over; following until the lease is ours again")

    @kopf.on.startup()
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False
        settings.scanning.disabled = True
        if args.metrics_port:
            servers.append(await metrics.serve(args.metrics_port))
        watching = Watches(api.client, cache, namespaces=args.namespace, in_pool=api.run_blocking)
        api.on_forbidden = watching.recheck
        watches.append(watching)
        watching.start()
        if leadership is not None:
            leadership.start()
        tasks.append(asyncio.create_task(decide(watching), name="conveyor-decide"))
        tasks.append(
            asyncio.create_task(
                watching.guard(lambda: controllers[0].work if controllers else None, GRACE),
                name="conveyor-guard",
            )
        )

    @kopf.on.probe(id="watches")
    async def probe(**_: Any) -> dict[str, Any]:
        return {name: state for w in watches for name, state in w.health().items()}

    @kopf.on.probe(id="leader")
    async def leader(**_: Any) -> bool:
        return leadership is None or leadership.may_write()

    @kopf.on.cleanup()
    async def cleanup(**_: Any) -> None:
        for task in tasks:
            task.cancel()
        for controller in controllers:
            await controller.stop()
        if leadership is not None:
            await asyncio.to_thread(leadership.release)
        for watching in watches:
            await watching.stop()
        for server in servers:
            await server.cleanup()
        await api.close()

    asyncio.run(
        kopf.operator(
            standalone=True,
            # kopf serves no resource here (it runs the process only, and its own namespace
            # scanning is off): this only spares it a warning that no namespace scope was
            # given. The scope that matters is --namespace, which our watches follow.
            clusterwide=True,
            liveness_endpoint=args.liveness or None,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
