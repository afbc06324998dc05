"""The dashboard's HTTP server (aiohttp): its routes, the guard in front of them, serving.

What each route answers is `handlers`'; this module puts them together and
keeps what may reach them. Who may act is Kubernetes' business, not this
server's. Actions are off unless `allow_actions`; when on, they are
annotations and patches written with the identity the server runs as (the
user's kubeconfig when run by `kubectl conveyor dashboard`, a ServiceAccount
in the chart), so RBAC decides and a refusal is shown as the API server
worded it. The server listens on 127.0.0.1 by default: reached from this
machine, or through `kubectl port-forward`, which RBAC guards too. A page
from another site can neither read it (a Host other than localhost is
refused, against DNS rebinding) nor act through it (actions need a header
that a cross-site form cannot send).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from conveyor.client import connection, operations
from conveyor.dashboard import handlers
from conveyor.dashboard.board import Board

ACTION_HEADER = "X-Conveyor-Action"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


# ---------------------------------------------------------------- guards


def _hostname(host: str | None) -> str:
    """The Host header without its port ("[::1]:8099" → "[::1]")."""
    host = host or ""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0]


@web.middleware
async def guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    settings = request.app[handlers.SETTINGS]
    if settings["allowed_hosts"] and _hostname(request.host) not in settings["allowed_hosts"]:
        return handlers.problem(
            403, f"host {request.host!r} is not served (only {sorted(settings['allowed_hosts'])})"
        )
    if request.method == "POST":
        if not settings["allow_actions"]:
            return handlers.problem(403, "actions are off: the dashboard runs read-only")
        if request.headers.get(ACTION_HEADER) != "1":
            return handlers.problem(403, f"an action needs the {ACTION_HEADER} header")
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


# ---------------------------------------------------------------- the app


def app(
    board: Board,
    api: operations.Conveyor,
    *,
    allow_actions: bool = False,
    allowed_hosts: frozenset[str] | None = LOCAL_HOSTS,
    context: str | None = None,
) -> web.Application:
    application = web.Application(middlewares=[guard])
    application[handlers.BOARD] = board
    application[handlers.API] = api
    application[handlers.SETTINGS] = {
        "allow_actions": allow_actions,
        "allowed_hosts": allowed_hosts or frozenset(),
        "context": context,
        "cache": {},
    }
    application.add_routes(
        [
            web.get("/", handlers.index),
            web.get("/api/overview", handlers.overview),
            web.get("/api/jobs", handlers.jobs),
            web.get("/api/jobs/{namespace}/{name}", handlers.job),
            web.get("/api/rows/{namespace}/{name}", handlers.row),
            web.post("/api/jobs/{namespace}/{name}/{action}", handlers.job_action),
            web.post("/api/queues/{namespace}/{name}/{action}", handlers.queue_action),
            web.get("/api/stream", handlers.stream),
            web.get("/healthz", handlers.healthz),
            web.static("/static", handlers.STATIC, append_version=False),
        ]
    )
    return application


def health_app(board: Board) -> web.Application:
    """/healthz alone, for probes on the pod's address while the dashboard keeps to
    localhost."""
    application = web.Application()
    application[handlers.BOARD] = board
    application.add_routes([web.get("/healthz", handlers.probe)])
    return application


async def serve(
    conn: connection.Connection,
    *,
    address: str,
    port: int,
    allow_actions: bool,
    namespaces: list[str] | None = None,
    health_port: int | None = None,
    announce: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
) -> None:
    board = Board()
    scope = (
        namespaces
        if namespaces is not None
        else ([conn.namespace] if conn.namespace is not None else [])
    )
    board.watch(conn.client, scope)
    api = operations.Conveyor(conn.client)
    runner = web.AppRunner(
        app(board, api, allow_actions=allow_actions, context=conn.context),
        access_log=None,
    )
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    runners = [runner]
    if health_port is not None:
        health = web.AppRunner(health_app(board), access_log=None)
        await health.setup()
        await web.TCPSite(health, "0.0.0.0", health_port).start()
        runners.append(health)
    shown = "localhost" if address in ("127.0.0.1", "::1") else address
    acting = f"actions on, as {conn.context or 'this identity'}" if allow_actions else "read-only"
    watching = ", ".join(scope) if scope else "every namespace"
    announce(
        f"Conveyor dashboard on http://{shown}:{port}/ ({watching}; {acting}); Ctrl-C stops it"
    )
    stopping = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        for each in runners:
            await each.cleanup()
        await board.stop()


def run(conn: connection.Connection, **options: Any) -> None:
    """Serve until Ctrl-C or SIGTERM; the options are `serve`'s."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(conn, **options))
