"""`conveyor` / `python -m conveyor`: run the operator against the cluster the kubeconfig names.

With no `--namespace`, it watches every namespace; with one or more, only
those. Inside a pod it uses the pod's service account, elsewhere the current
kubeconfig context.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

import kopf

from conveyor import handlers, kopf_setup
from conveyor.runtime import metrics
from conveyor.runtime.controller import Controller
from conveyor.runtime.kube import ClientKubeApi


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="conveyor", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help=(
            "watch only this namespace, or namespaces matching a glob such as 'team-*' "
            "(repeat for several; default: all namespaces)"
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
        "--workers", type=int, default=16, help="reconcilers working at once (default 16)"
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


def _is_pattern(namespace: str) -> bool:
    return any(char in namespace for char in "*?[]!,")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in (
        "kopf.objects",
        "kopf._core.reactor.queueing",
        "kopf.activities.probe",
        "aiohttp.access",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    assert handlers  # registering the handlers is importing the module

    if args.metrics_port:
        metrics.serve(args.metrics_port)
    controller = Controller(
        ClientKubeApi(threads=args.api_threads),
        workers=args.workers,
        parallelism=args.api_threads,
    )

    @kopf.on.startup()
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        kopf_setup.configure(
            settings, watch_namespaces=any(_is_pattern(ns) for ns in args.namespace)
        )

    @kopf.on.cleanup()
    async def cleanup(**_: Any) -> None:
        await controller.stop()

    kopf_setup.count_toggles()
    kopf_setup.decode_watch_streams_with_orjson()
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not args.namespace,
            namespaces=args.namespace or (),
            liveness_endpoint=args.liveness or None,
            memo=kopf.Memo(controller=controller),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
