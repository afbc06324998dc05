"""`conveyor` / `python -m conveyor`: run the operator against the cluster the kubeconfig names.

With no `--namespace`, it watches every namespace; with one or more, only
those. Inside a pod it uses the pod's service account, elsewhere the current
kubeconfig context.

kopf runs the process: startup and cleanup, signals, the liveness endpoint
and its probe. The watches are the operator's own (`runtime.watches`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

import kopf

from conveyor.runtime import metrics
from conveyor.runtime.cache import Cache
from conveyor.runtime.controller import Controller
from conveyor.runtime.kube import ClientKubeApi
from conveyor.runtime.watches import Watches


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
        help="threads (and pooled connections) for API calls (default 32)",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("CONVEYOR_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kopf.activities.probe", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    if args.metrics_port:
        metrics.serve(args.metrics_port)
    api = ClientKubeApi(threads=args.api_threads)
    cache = Cache()
    controller = Controller(api, cache, workers=args.workers)
    watches: list[Watches] = []
    tasks: list[asyncio.Task[None]] = []

    async def decide_once_synced(watching: Watches) -> None:
        await watching.wait_synced()
        controller.start()

    @kopf.on.startup()
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False
        settings.scanning.disabled = True
        watching = Watches(api.client, cache, namespaces=args.namespace, in_pool=api.run_blocking)
        watches.append(watching)
        watching.start()
        tasks.append(asyncio.create_task(decide_once_synced(watching), name="conveyor-sync"))

    @kopf.on.probe(id="watches")
    async def probe(**_: Any) -> dict[str, Any]:
        return {name: state for w in watches for name, state in w.health().items()}

    @kopf.on.cleanup()
    async def cleanup(**_: Any) -> None:
        for task in tasks:
            task.cancel()
        for watching in watches:
            await watching.stop()
        await controller.stop()

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
