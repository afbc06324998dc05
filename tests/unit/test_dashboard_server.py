"""The dashboard's server against a board fed as the watches feed it, and a fake of the
caller's API calls: pages and filters, the read-only default, the guards of actions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from conveyor.client import operations
from conveyor.core import actions
from conveyor.dashboard import server
from conveyor.dashboard.board import Board
from tests.unit.dashboard_data import attempt, job_body, queue_body


class FakeCalls:
    """The calls the server makes for a job's page and for actions, recorded."""

    def __init__(self, bodies: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.bodies = bodies
        self.asked: list[tuple[str, str, str]] = []
        self.paused: list[tuple[str, str, bool]] = []

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        if (namespace, name) not in self.bodies:
            raise operations.ApiError(f'backgroundjobs "{name}" not found', 404)
        return self.bodies[(namespace, name)]

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return [{"type": "Normal", "reason": "Started", "message": f"{name} started"}]

    def log_tails(self, namespace: str, name: str) -> dict[int, str]:
        return {1: "hello from the pod"}

    def jobs(self, namespace: str | None, **filters: Any) -> list[dict[str, Any]]:
        return [
            b
            for (ns, _), b in self.bodies.items()
            if ns == namespace
            and (b["spec"].get("queue") or "") == filters.get("queue")
            and b["status"].get("phase") == filters.get("phase")
        ]

    def ask(self, action: actions.Action, namespace: str, name: str, **_: Any) -> Any:
        body = self.job(namespace, name)
        refused = actions.refusal(action, body["status"].get("phase"), recurring=False)
        if refused:
            raise operations.NotApplicableError(refused)
        self.asked.append((action.name, namespace, name))
        return operations.Asked(namespace, name, action, "token")

    def set_paused(self, namespace: str, name: str, paused: bool) -> dict[str, Any]:
        self.paused.append((namespace, name, paused))
        return {"spec": {"paused": paused}}


BODIES = [
    job_body("send-1", "Succeeded", created=1, history=[attempt(1, "Succeeded", finished=5)]),
    job_body("send-2", "Failed", created=2, lastFailure={"reason": "Error"}),
    job_body("send-3", "Failed", created=3, lastFailure={"reason": "OOMKilled"}),
    job_body("charge-1", "Queued", created=4, queue="payments"),
    job_body("elsewhere", "Running", namespace="other"),
    job_body("ship-1", "Blocked", created=5, spec={"dependsOn": ["send-1", "gone"]}),
]


def scenario(
    test: Callable[[TestClient, Board, FakeCalls], Awaitable[None]], **options: Any
) -> Callable[[], None]:
    def run() -> None:
        async def main() -> None:
            board = Board()
            for body in BODIES:
                board.job_store.apply(body)
            board.queue_store.apply(queue_body("email", concurrency=2))
            calls = FakeCalls(
                {(b["metadata"]["namespace"], b["metadata"]["name"]): b for b in BODIES}
            )
            app = server.app(board, calls, **options)  # type: ignore[arg-type]
            async with TestClient(TestServer(app)) as client:
                await test(client, board, calls)

        asyncio.run(asyncio.wait_for(main(), 20))

    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run


def with_actions(test):
    return scenario(test, allow_actions=True)


@scenario
async def test_the_overview_counts_by_queue(client, board, calls):
    response = await client.get("/api/overview?namespace=shop")
    assert response.status == 200
    data = await response.json()
    queues = {q["name"]: q for q in data["queues"]}
    assert set(queues) == {"email", "payments"}
    assert (queues["email"]["succeeded"], queues["email"]["failed"]) == (1, 2)
    assert queues["email"]["blocked"] == 1
    assert queues["payments"]["exists"] is False
    assert data["phases"]["Failed"] == 2
    assert data["allowActions"] is False
    assert len(data["throughput"]) == 60
    everywhere = await (await client.get("/api/overview")).json()
    assert everywhere["namespaces"] == ["other", "shop"]


@scenario
async def test_jobs_are_filtered_and_paged_on_the_server(client, board, calls):
    data = await (await client.get("/api/jobs?namespace=shop&phase=Failed&limit=1")).json()
    assert (data["total"], [j["name"] for j in data["items"]]) == (2, ["send-3"])
    assert data["phases"]["Succeeded"] == 1  # tab counts ignore the phase filter
    data = await (await client.get("/api/jobs?namespace=shop&phase=Failed&offset=1")).json()
    assert [j["name"] for j in data["items"]] == ["send-2"]
    data = await (await client.get("/api/jobs?q=oom")).json()
    assert [j["name"] for j in data["items"]] == ["send-3"]
    data = await (await client.get("/api/jobs?queue=payments")).json()
    assert [j["name"] for j in data["items"]] == ["charge-1"]
    bad = await client.get("/api/jobs?phase=Sleeping")
    assert bad.status == 400


@scenario
async def test_a_watch_event_shows_at_once(client, board, calls):
    before = board.version
    board.job_store.apply(job_body("send-4", "Running", created=9))
    assert board.version > before
    data = await (await client.get("/api/jobs?namespace=shop&phase=Running")).json()
    assert [j["name"] for j in data["items"]] == ["send-4"]
    board.job_store.apply(job_body("send-4", "Running", created=9), deleted=True)
    data = await (await client.get("/api/jobs?namespace=shop&phase=Running")).json()
    assert data["total"] == 0


@scenario
async def test_a_jobs_page_has_its_attempts_events_and_neighbours(client, board, calls):
    data = await (await client.get("/api/jobs/shop/ship-1")).json()
    assert data["dependencies"] == [
        {"name": "send-1", "phase": "Succeeded"},
        {"name": "gone", "phase": None},
    ]
    assert data["events"][0]["reason"] == "Started"
    assert data["applicable"]["cancel"] is True and data["applicable"]["retry"] is False
    one = await (await client.get("/api/jobs/shop/send-1")).json()
    assert one["attempts"][0]["logTail"] == "hello from the pod"
    assert one["dependents"] == [{"name": "ship-1", "phase": "Blocked"}]
    missing = await client.get("/api/jobs/shop/nope")
    assert missing.status == 404


@scenario
async def test_read_only_by_default(client, board, calls):
    response = await client.post("/api/jobs/shop/send-2/retry", headers={server.ACTION_HEADER: "1"})
    assert response.status == 403
    assert "read-only" in (await response.json())["error"]
    assert calls.asked == []


@with_actions
async def test_an_action_needs_its_header_and_applies_once_asked(client, board, calls):
    refused = await client.post("/api/jobs/shop/send-2/retry")
    assert refused.status == 403 and calls.asked == []
    done = await client.post("/api/jobs/shop/send-2/retry", headers={server.ACTION_HEADER: "1"})
    assert done.status == 200
    assert calls.asked == [("replay", "shop", "send-2")]
    wrong = await client.post("/api/jobs/shop/send-1/promote", headers={server.ACTION_HEADER: "1"})
    assert wrong.status == 409
    assert "only a Delayed or BackingOff job" in (await wrong.json())["error"]


@with_actions
async def test_retry_every_failed_job_of_a_queue_and_pause(client, board, calls):
    headers = {server.ACTION_HEADER: "1"}
    done = await client.post("/api/queues/shop/email/retry-failed", headers=headers)
    assert (await done.json())["done"] == "2 failed jobs retried"
    assert sorted(n for _, _, n in calls.asked) == ["send-2", "send-3"]
    await client.post("/api/queues/shop/email/pause", headers=headers)
    assert calls.paused == [("shop", "email", True)]


@scenario
async def test_another_host_is_refused(client, board, calls):
    """A page of another site that resolves its name to 127.0.0.1 (DNS rebinding) reads
    nothing."""
    response = await client.get("/api/overview", headers={"Host": "attacker.example:8099"})
    assert response.status == 403
    ok = await client.get("/api/overview", headers={"Host": "localhost:31337"})
    assert ok.status == 200


@scenario
async def test_the_page_and_its_assets_are_served_from_the_package(client, board, calls):
    page = await client.get("/")
    assert page.status == 200 and "app.js" in await page.text()
    script = await client.get("/static/app.js")
    assert script.status == 200 and "EventSource" in await script.text()
    assert "http" not in (await (await client.get("/static/app.css")).text())


@scenario
async def test_the_stream_sends_the_overview_when_the_board_changes(client, board, calls):
    response = await client.get("/api/stream?namespace=shop")
    assert response.headers["Content-Type"] == "text/event-stream"
    first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
    assert first.startswith(b"event: overview\n")
    board.job_store.apply(job_body("send-9", "Queued", created=20))
    second = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
    assert b'"waiting": 1' in second
    response.close()


def test_hostnames_without_ports():
    assert server._hostname("localhost:8099") == "localhost"
    assert server._hostname("[::1]:8099") == "[::1]"
    assert server._hostname("127.0.0.1") == "127.0.0.1"
    assert server._hostname(None) == ""


@with_actions
async def test_the_failed_jobs_of_no_queue_are_retried_through_the_dash(client, board, calls):
    """`-` in the path stands for the jobs that name no queue; they cannot be paused."""
    calls.bodies[("shop", "loose")] = job_body("loose", "Failed", queue=None)
    headers = {server.ACTION_HEADER: "1"}
    done = await client.post("/api/queues/shop/-/retry-failed", headers=headers)
    assert (await done.json())["done"] == "1 failed jobs retried"
    assert calls.asked == [("replay", "shop", "loose")]
    refused = await client.post("/api/queues/shop/-/pause", headers=headers)
    assert refused.status == 404 and calls.paused == []
