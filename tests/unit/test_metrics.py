"""The metrics say what happened, with the values that happened: counted where it happens,
and a queue's state read from the cache when Prometheus scrapes.

The counters are the process's own (one registry), so each test reads how much they moved,
on label values no other test uses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import kubernetes
import pytest
from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from conveyor.runtime import kube, kube_errors, metrics
from conveyor.runtime.cache import Resource
from conveyor.runtime.workqueue import Key, Kind, WorkQueue
from tests.unit.factories import T0
from tests.unit.world import NAMESPACE, World, scenario


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def samples(families: Iterable[Metric]) -> dict[tuple[str, tuple[str, ...]], float]:
    """{(name, label values in order): value} of collected families."""
    return {
        (s.name, tuple(s.labels.values())): s.value for family in families for s in family.samples
    }


class _Acting:
    """The world's controller of the moment (each start makes a new one), as `metrics.State`."""

    def __init__(self, world: World) -> None:
        self._world = world

    def queue_states(self) -> Iterable[metrics.QueueState]:
        return self._world.controller.queue_states()

    def work_queue_depth(self) -> Mapping[str, int]:
        return self._world.controller.work_queue_depth()


def following(world: World) -> metrics.StateCollector:
    collector = metrics.StateCollector()
    collector.follow(_Acting(world))
    return collector


def jobs_of(collector: metrics.StateCollector, queue: str) -> dict[str, float]:
    """The queue's conveyor_queue_jobs by phase, as a scrape would read them now."""
    return {
        labels[2]: value
        for (name, labels), value in samples(collector.collect()).items()
        if name == "conveyor_queue_jobs" and labels[:2] == (NAMESPACE, queue)
    }


# ------------------------------------------------------------ state, read at scrape time


@scenario
async def test_a_phase_that_drops_to_zero_reads_zero(world: World) -> None:
    """After the queue drained, Running reads 0 (the gauge once kept its last value, 1), and
    every phase has a series."""
    collector = following(world)
    world.queue("drain", concurrency=1)
    world.job("a", queue="drain")
    world.job("b", queue="drain")
    await world.start()
    assert jobs_of(collector, "drain") == {
        **dict.fromkeys(metrics.PHASES, 0.0),
        "Running": 1.0,
        "Queued": 1.0,
    }
    await world.finish_all()
    await world.finish_all()
    assert jobs_of(collector, "drain") == {
        **dict.fromkeys(metrics.PHASES, 0.0),
        "Succeeded": 2.0,
    }


@scenario
async def test_a_deleted_queue_takes_its_series_with_it(world: World) -> None:
    collector = following(world)
    world.queue("going", concurrency=1)
    world.queue("staying", concurrency=1)
    world.job("a", queue="going")
    await world.start()
    assert jobs_of(collector, "going")["Running"] == 1.0
    world.api.delete(Resource.QUEUES, NAMESPACE, "going")
    await world.settle()
    scraped = samples(collector.collect())
    assert not [labels for _, labels in scraped if "going" in labels]
    assert scraped[("conveyor_queue_paused", (NAMESPACE, "staying"))] == 0.0


@scenario
async def test_the_oldest_waiting_job_and_a_paused_queue(world: World) -> None:
    """A paused queue holding a job for 30 s reads paused 1 and oldest pending 30; 0 once
    nothing waits."""
    collector = following(world)
    world.queue("held", paused=True)
    world.job("a", queue="held")
    await world.start()
    await world.advance(30)
    scraped = samples(collector.collect())
    assert scraped[("conveyor_queue_paused", (NAMESPACE, "held"))] == 1.0
    assert scraped[("conveyor_queue_oldest_pending_seconds", (NAMESPACE, "held"))] == 30.0
    world.update_queue("held", paused=False)
    await world.settle()
    scraped = samples(collector.collect())
    assert scraped[("conveyor_queue_paused", (NAMESPACE, "held"))] == 0.0
    assert scraped[("conveyor_queue_oldest_pending_seconds", (NAMESPACE, "held"))] == 0.0


def test_a_replica_that_does_not_act_reports_no_state() -> None:
    """A follower (or a leader whose term ended) reports the gauges' names and no series, so
    a sum over replicas counts every job once."""
    collector = metrics.StateCollector()
    families = list(collector.collect())
    assert {f.name for f in families} == {
        "conveyor_queue_jobs",
        "conveyor_queue_oldest_pending_seconds",
        "conveyor_queue_paused",
        "conveyor_workqueue_depth",
    }
    assert not samples(families)


def test_the_work_queue_depth_is_its_ready_keys_by_kind() -> None:
    async def scenario() -> None:
        async def handle(key: Key) -> None:
            pass

        queue = WorkQueue(handle, workers=1)
        queue.add(Key(Kind.JOB, "ns", "a"))
        queue.add(Key(Kind.JOB, "ns", "b"))
        queue.add(Key(Kind.ADMIT, "ns", "q"))
        assert queue.depth() == {"job": 2, "admit": 1, "queue-status": 0}

    asyncio.run(scenario())


# ------------------------------------------------------------ jobs and attempts


@scenario
async def test_attempts_are_counted_by_result_and_reason_and_timed(world: World) -> None:
    """A job that fails once (exit 1) and then succeeds: two attempts started, one Failed
    Error and one Succeeded Completed, each timed; one job Succeeded; one admission wait."""
    queue = {"namespace": NAMESPACE, "queue": "counted"}
    world.queue("counted")
    world.job(
        "flaky",
        queue="counted",
        retry={"maxAttempts": 2, "backoff": {"initialDelaySeconds": 1, "jitter": 0}},
    )
    await world.start()
    await world.advance(4)
    world.finish("flaky-1", exit_code=1)
    await world.advance(2)
    await world.advance(7)
    world.finish("flaky-2")
    await world.settle()
    assert world.phase("flaky") == "Succeeded"
    assert sample("conveyor_attempts_started_total", **queue) == 2
    finished = "conveyor_attempts_finished_total"
    assert sample(finished, **queue, result="Failed", reason="Error") == 1
    assert sample(finished, **queue, result="Succeeded", reason="Completed") == 1
    assert sample("conveyor_jobs_finished_total", **queue, phase="Succeeded") == 1
    duration = "conveyor_attempt_duration_seconds"
    assert sample(f"{duration}_sum", **queue, result="Failed") == 4
    assert sample(f"{duration}_sum", **queue, result="Succeeded") == 7
    assert sample("conveyor_admission_wait_seconds_count", **queue) == 1


@scenario
async def test_the_admission_wait_counts_from_the_time_a_delayed_job_was_due(world: World) -> None:
    """A job delayed 10 s whose queue lets it start at 12 s waited 2 s for its queue."""
    queue = {"namespace": NAMESPACE, "queue": "late"}
    world.queue("late", paused=True)
    world.job("later", queue="late", delaySeconds=10)
    await world.start()
    await world.advance(12)
    world.update_queue("late", paused=False)
    await world.settle()
    assert world.pods("later") == ["later-1"]
    assert sample("conveyor_admission_wait_seconds_sum", **queue) == 2
    assert sample("conveyor_admission_wait_seconds_bucket", **queue, le="1.0") == 0
    assert sample("conveyor_admission_wait_seconds_bucket", **queue, le="2.5") == 1


def test_a_reason_that_is_not_a_word_cannot_grow_the_series() -> None:
    assert metrics.reason_label("OOMKilled") == "OOMKilled"
    assert metrics.reason_label(None) == ""
    assert metrics.reason_label("the pod did not start: image x:y not found") == "Other"
    assert metrics.reason_label("A" * 65) == "Other"


# ------------------------------------------------------------ reconciles and the work queue


@scenario
async def test_reconciles_are_counted_by_result_and_a_failure_as_an_error(world: World) -> None:
    """A status write that fails once: one job reconcile error, one retry; the job still
    runs."""

    def done() -> float:
        return sum(
            sample("conveyor_reconcile_total", kind="job", result=result)
            for result in ("success", "requeue_after")
        )

    before = {
        "errors": sample("conveyor_reconcile_errors_total", kind="job"),
        "error": sample("conveyor_reconcile_total", kind="job", result="error"),
        "done": done(),
        "retries": sample("conveyor_workqueue_retries_total", kind="job"),
        "timed": sample("conveyor_reconcile_time_seconds_count", kind="job"),
    }
    world.api.fail("patch_job_status", kube_errors.ApiError(500, "etcd is away"))
    world.job("once")
    await world.start()
    await world.advance(2)
    assert world.phase("once") == "Running"
    moved = {
        "errors": sample("conveyor_reconcile_errors_total", kind="job") - before["errors"],
        "error": sample("conveyor_reconcile_total", kind="job", result="error") - before["error"],
        "retries": sample("conveyor_workqueue_retries_total", kind="job") - before["retries"],
    }
    assert moved == {"errors": 1, "error": 1, "retries": 1}
    assert done() > before["done"]
    timed = sample("conveyor_reconcile_time_seconds_count", kind="job") - before["timed"]
    assert timed >= 2


def test_the_work_queue_counts_adds_once_and_times_the_wait_and_the_work() -> None:
    """Ten adds of a waiting key are one add, one wait and one piece of work; a key added
    while it is being worked on is one more add."""
    kind = {"kind": "queue-status"}

    def counts() -> tuple[float, float, float]:
        return (
            sample("conveyor_workqueue_adds_total", **kind),
            sample("conveyor_workqueue_queue_duration_seconds_count", **kind),
            sample("conveyor_workqueue_work_duration_seconds_count", **kind),
        )

    before = counts()

    async def scenario() -> None:
        key = Key(Kind.QUEUE_STATUS, "ns", "q")
        working = asyncio.Event()
        release = asyncio.Event()
        passes = 0

        async def handle(_: Key) -> None:
            nonlocal passes
            passes += 1
            working.set()
            if passes == 1:
                await release.wait()

        queue = WorkQueue(handle, workers=1)
        for _ in range(10):
            queue.add(key)
        queue.start()
        await working.wait()
        queue.add(key)
        queue.add(key)
        release.set()
        while passes < 2 or not queue.idle:
            await asyncio.sleep(0)
        await queue.stop()

    asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    after = counts()
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == (2, 2, 2)


# ------------------------------------------------------------ API requests


@asynccontextmanager
async def local_server(
    answer: Callable[[web.Request], Awaitable[web.Response]],
) -> AsyncIterator[str]:
    """A local HTTP server whose every request `answer` answers; its URL."""
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def client_of(
    answer: Callable[[web.Request], Awaitable[web.Response]],
) -> AsyncIterator[kube.ClientKubeApi]:
    """A local HTTP server whose every request `answer` answers, and a ClientKubeApi with a
    bearer token talking to it."""
    async with local_server(answer) as host:
        configuration = kubernetes.client.Configuration()
        configuration.host = host
        configuration.api_key = {"authorization": "sekret"}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        api = kube.ClientKubeApi(threads=2, configuration=configuration)
        try:
            yield api
        finally:
            await api.close()


@asynccontextmanager
async def api_server(status: int) -> AsyncIterator[kube.ClientKubeApi]:
    """A ClientKubeApi whose every request is answered with a Status of `status`."""

    async def refuse(request: web.Request) -> web.Response:
        body: dict[str, Any] = {"kind": "Status", "status": "Failure", "code": status}
        return web.json_response(body, status=status)

    async with client_of(refuse) as api:
        yield api


def test_a_refused_request_is_counted_by_verb_resource_and_status() -> None:
    async def scenario() -> None:
        async with api_server(409) as api:
            with pytest.raises(kube_errors.ConflictError):
                await api.create_pod("ns", {"apiVersion": "v1", "kind": "Pod"})
        async with api_server(500) as api:
            with pytest.raises(kube_errors.ApiError):
                await api.patch_queue_status("ns", "q", {})

    labels = {"verb": "create", "resource": "pods", "code": "409"}
    patch = {"verb": "patch", "resource": "jobqueues/status", "code": "500"}
    before = sample("conveyor_api_request_errors_total", **labels)
    before_patch = sample("conveyor_api_request_errors_total", **patch)
    asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert sample("conveyor_api_request_errors_total", **labels) == before + 1
    assert sample("conveyor_api_request_errors_total", **patch) == before_patch + 1


@asynccontextmanager
async def recording_server() -> AsyncIterator[tuple[kube.ClientKubeApi, list[dict[str, Any]]]]:
    """A ClientKubeApi whose every request is answered with `{}` and recorded."""
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        text = await request.text()
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "type": request.headers.get("Content-Type"),
                "auth": request.headers.get("Authorization"),
                "body": json.loads(text) if text else None,
            }
        )
        return web.json_response({"metadata": {"resourceVersion": "7"}})

    async with client_of(record) as api:
        yield api, seen


def test_each_write_is_the_request_the_api_server_expects() -> None:
    """The writes skip the client's generated methods: the same paths, query, content
    types, bodies and credentials as those would send; and a fenced write is not sent."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j-1"}}
    event = kube.EventBody(
        "j.1", "ns", "BackgroundJob", "j", "u1", "Normal", "Started", "attempt 1", T0
    )

    async def scenario() -> list[dict[str, Any]]:
        async with recording_server() as (api, seen):
            assert await api.create_pod("ns", pod) == {"metadata": {"resourceVersion": "7"}}
            await api.patch_job_status("ns", "j", {"phase": "Running"})
            await api.patch_queue_status("ns", "q", {"running": 1})
            await api.post_event(event)
            await api.patch_event(kube.EventRepeat("j.1", "ns", 2, "again", T0))
            await api.delete_pod("ns", "j-1")
            await api.delete_job("ns", "j")
            api.fence = lambda: False
            with pytest.raises(kube_errors.FencedError):
                await api.patch_job_status("ns", "j", {"phase": "Failed"})
            return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    jobs = "/apis/conveyor.dev/v1alpha1/namespaces/ns"
    assert [(r["method"], r["path"], r["query"], r["type"]) for r in seen] == [
        ("POST", "/api/v1/namespaces/ns/pods", {"fieldValidation": "Strict"}, "application/json"),
        ("PATCH", f"{jobs}/backgroundjobs/j/status", {}, "application/merge-patch+json"),
        ("PATCH", f"{jobs}/jobqueues/q/status", {}, "application/merge-patch+json"),
        ("POST", "/api/v1/namespaces/ns/events", {}, "application/json"),
        ("PATCH", "/api/v1/namespaces/ns/events/j.1", {}, "application/strategic-merge-patch+json"),
        (
            "DELETE",
            "/api/v1/namespaces/ns/pods/j-1",
            {"gracePeriodSeconds": "5"},
            "application/json",
        ),
        (
            "DELETE",
            f"{jobs}/backgroundjobs/j",
            {"propagationPolicy": "Background"},
            "application/json",
        ),
    ]
    assert all(r["auth"] == "Bearer sekret" for r in seen)
    assert seen[0]["body"] == pod
    assert seen[1]["body"] == {"status": {"phase": "Running"}}
    assert seen[3]["body"]["involvedObject"]["uid"] == "u1"
    assert seen[4]["body"] == {
        "count": 2,
        "lastTimestamp": "2026-03-01T12:00:00Z",
        "message": "again",
    }


# ------------------------------------------------------------ the exposition


def test_a_loop_histogram_reads_as_prometheus_clients_own() -> None:
    """The same observations (one on a bound, one past the last) give the same samples as a
    prometheus_client Histogram: cumulative buckets, +Inf, count and sum."""
    registry = CollectorRegistry()
    theirs = Histogram("theirs_seconds", "t", ["k"], buckets=(0.1, 1, 10), registry=registry)
    ours = metrics.LoopHistogram("ours_seconds", "o", ["k"], buckets=(0.1, 1, 10))
    try:
        for amount in (0.05, 0.1, 0.5, 1, 3, 99):
            theirs.labels("a").observe(amount)
            ours.labels("a").observe(amount)
        expected = [
            (s.name.replace("theirs", "ours"), s.labels, s.value)
            for family in registry.collect()
            for s in family.samples
            if not s.name.endswith("_created")
        ]
        got = [(s.name, s.labels, s.value) for family in ours.collect() for s in family.samples]
        assert got == expected
        assert ("ours_seconds_bucket", {"k": "a", "le": "1.0"}, 4) in got
    finally:
        REGISTRY.unregister(ours)


def test_the_exposition_has_the_build_the_leader_and_the_counters() -> None:
    body, content_type = metrics.exposition(None)
    assert content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    (build,) = families["conveyor_build_info"].samples
    assert set(build.labels) == {"version", "python"}
    assert build.value == 1
    assert "conveyor_leader" in families
    assert families["conveyor_reconcile_errors"].type == "counter"  # the parser drops _total
    assert not [name for name in families if name.endswith("_created")]
    # The reconcile and work-queue series of every kind exist from the start, at 0.
    kinds = {s.labels["kind"] for s in families["conveyor_workqueue_retries"].samples}
    assert kinds == {"job", "admit", "queue-status"}
    openmetrics, content_type = metrics.exposition("application/openmetrics-text")
    assert content_type.startswith("application/openmetrics-text")
    assert openmetrics.rstrip().endswith(b"# EOF")
