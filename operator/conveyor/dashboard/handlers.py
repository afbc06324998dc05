"""What the dashboard's routes answer: pages, the JSON API, live updates, health and actions.

Reads come from the board (`board`), filtered and paged here; a job's own
page adds what only it needs (the object, its events, its pods' log tails),
read when the page is opened. `/api/stream` is a Server-Sent Events stream:
one message whenever the board's version moves (coalesced), carrying the
queues' counts; a page then asks again only for the one list it shows.
Actions are annotations and patches written through `client.operations`; a
refusal is answered as the API server worded it. Whether a request reaches a
handler at all (its host, actions on, the action header) is `server`'s guard.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from conveyor.client import operations
from conveyor.core import actions, job_listing, naming, summary, summary_json, throughput
from conveyor.dashboard.board import Board

STATIC = Path(__file__).resolve().parent / "static"
MAX_PAGE = 500
JOB_ACTIONS = {a.name: a for a in actions.ALL}
JOB_ACTIONS["retry"] = actions.REPLAY

BOARD = web.AppKey("board", Board)
API = web.AppKey("api", operations.Conveyor)
SETTINGS = web.AppKey("settings", dict)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def problem(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


# ---------------------------------------------------------------- pages and reads


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def _namespace(request: web.Request) -> str | None:
    return request.query.get("namespace") or None


def _overview(request: web.Request, board: Board) -> dict[str, Any]:
    now = utcnow()
    namespace = _namespace(request)
    queue = request.query.get("queue")
    rows = [r for r in board.jobs.values() if namespace in (None, r.namespace)]
    scope = (namespace or "", queue) if namespace is not None and queue is not None else None
    return {
        "version": board.version,
        "now": naming.format_time(now),
        "namespaces": board.namespaces(),
        "queues": [summary_json.queue_json(q) for q in board.queue_rows(now, namespace)],
        "phases": job_listing.phase_counts(rows),
        "throughput": [
            summary_json.bucket_json(b) for b in throughput.throughput(rows, now, queue=scope)
        ],
        "allowActions": request.app[SETTINGS]["allow_actions"],
        "context": request.app[SETTINGS]["context"],
    }


def _cached_overview(request: web.Request) -> dict[str, Any]:
    """The overview, computed once per board version, scope and second, whoever asks: every
    open page's stream asks at each change."""
    board = request.app[BOARD]
    cache = request.app[SETTINGS]["cache"]
    key = (board.version, _namespace(request), request.query.get("queue"), int(time.time()))
    if cache.get("key") != key:
        cache["key"], cache["value"] = key, _overview(request, board)
    value: dict[str, Any] = cache["value"]
    return value


async def overview(request: web.Request) -> web.Response:
    return _json(_cached_overview(request))


def _int(request: web.Request, name: str, default: int, *, low: int, high: int) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a number") from None
    return max(low, min(high, value))


async def jobs(request: web.Request) -> web.Response:
    board = request.app[BOARD]
    phases = [p for p in request.query.get("phase", "").split(",") if p]
    unknown = [p for p in phases if p not in summary.PHASES]
    if unknown:
        return problem(400, f"unknown phase {unknown[0]!r}: one of {', '.join(summary.PHASES)}")
    scoped = job_listing.matching(
        board.jobs.values(),
        namespace=_namespace(request),
        queue=request.query.get("queue"),
        text=request.query.get("q", ""),
        parent=request.query.get("parent") or None,
    )
    page = job_listing.select(
        scoped,
        phases=phases,
        offset=_int(request, "offset", 0, low=0, high=10**9),
        limit=_int(request, "limit", 50, low=1, high=MAX_PAGE),
    )
    return _json(
        {
            "version": board.version,
            "total": page.total,
            "offset": page.offset,
            "limit": page.limit,
            "items": [summary_json.job_json(r) for r in page.rows],
            "phases": job_listing.phase_counts(scoped, recurring=True),
        }
    )


async def row(request: web.Request) -> web.Response:
    """A job's row from the board: cheap, for a page to see whether its job moved."""
    key = (request.match_info["namespace"], request.match_info["name"])
    found = request.app[BOARD].jobs.get(key)
    if found is None:
        return problem(404, f"backgroundjob {key[0]}/{key[1]} not found")
    return _json(summary_json.job_json(found))


async def job(request: web.Request) -> web.Response:
    """Everything about one job, read now: the object, events, log tails, neighbours."""
    board, api = request.app[BOARD], request.app[API]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    try:
        body = await asyncio.to_thread(api.job, namespace, name)
        events = await asyncio.to_thread(api.events, namespace, name)
        row = summary.job_row(body)
        tails = {} if row.recurring else await asyncio.to_thread(api.log_tails, namespace, name)
    except operations.ApiError as error:
        return problem(error.status or 502, str(error))
    rows = board.jobs
    dependencies = [
        {"name": dep, "phase": rows[(namespace, dep)].phase if (namespace, dep) in rows else None}
        for dep in row.depends_on
    ]
    dependents = sorted(
        r.name for r in rows.values() if r.namespace == namespace and name in r.depends_on
    )
    runs = job_listing.select(rows.values(), namespace=namespace, parent=name, limit=MAX_PAGE).rows
    return _json(
        {
            "job": body,
            "row": summary_json.job_json(row),
            "attempts": [summary_json.attempt_json(a) for a in summary.timeline(body, tails)],
            "events": [
                {
                    "type": e.get("type"),
                    "reason": e.get("reason"),
                    "message": e.get("message"),
                    "time": e.get("lastTimestamp") or e.get("eventTime"),
                    "count": e.get("count"),
                }
                for e in events
            ],
            "dependencies": dependencies,
            "dependents": [{"name": d, "phase": rows[(namespace, d)].phase} for d in dependents],
            "runs": [summary_json.job_json(r) for r in runs],
            "allowActions": request.app[SETTINGS]["allow_actions"],
            "applicable": {
                key: actions.refusal(action, row.phase, recurring=row.recurring) is None
                for key, action in JOB_ACTIONS.items()
            },
        }
    )


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: the overview, now and whenever the board changes."""
    board = request.app[BOARD]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    version = -1
    try:
        while True:
            try:
                async with asyncio.timeout(15):
                    version = await board.changes(version)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            data = json.dumps(_cached_overview(request), default=str)
            await response.write(f"event: overview\ndata: {data}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


def _healthy(board: Board) -> tuple[bool, dict[str, Any]]:
    health = board.health()
    return all(v["synced"] and not v["failing"] for v in health.values()), health


async def healthz(request: web.Request) -> web.Response:
    ok, health = _healthy(request.app[BOARD])
    return _json({"ok": ok, "watches": health}, 200 if ok else 503)


async def probe(request: web.Request) -> web.Response:
    """The probes' /healthz on the pod's address: whether it is healthy, and nothing else."""
    ok, _ = _healthy(request.app[BOARD])
    return _json({"ok": ok}, 200 if ok else 503)


# ---------------------------------------------------------------- actions


async def _act(call: Callable[[], Any]) -> web.Response:
    try:
        done = await asyncio.to_thread(call)
    except operations.NotApplicableError as error:
        return problem(409, str(error))
    except operations.ApiError as error:
        return problem(error.status or 502, str(error))
    return _json({"ok": True, "done": done})


async def job_action(request: web.Request) -> web.Response:
    api = request.app[API]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    action = JOB_ACTIONS.get(request.match_info["action"])
    if action is None:
        return problem(404, f"no action {request.match_info['action']!r}")

    def ask() -> str:
        asked = api.ask(action, namespace, name, now=utcnow())
        return f"{action.name} asked ({action.how(asked.value)})"

    return await _act(ask)


NO_QUEUE_IN_PATH = "-"
"""In a path, the jobs that name no queue ("-" is no queue's name: not a DNS label)."""


async def queue_action(request: web.Request) -> web.Response:
    api = request.app[API]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    name = "" if name == NO_QUEUE_IN_PATH else name
    verb = request.match_info["action"]
    if verb in ("pause", "resume") and name:
        return await _act(lambda: bool(api.set_paused(namespace, name, verb == "pause")) and verb)
    if verb == "retry-failed":

        def retry_all() -> str:
            failed = api.jobs(namespace, queue=name, phase="Failed")
            for body in failed:
                api.ask(actions.REPLAY, namespace, body["metadata"]["name"], now=utcnow(), job=body)
            return f"{len(failed)} failed jobs retried"

        return await _act(retry_all)
    return problem(404, f"no action {verb!r}")
