"""The controller's admission against the fake API server: quotas hold with creates in flight.

Each test plays the user and the kubelet around a real Controller and reads
what the fake API server holds (or saw: the most pods alive at once per
queue), never the controller's own counters.
"""

from __future__ import annotations

import random

from conveyor.runtime.cache import Resource
from tests.unit.world import NAMESPACE, World, scenario


@scenario
async def test_concurrency_holds_with_creates_in_flight_and_a_lagging_watch(world: World) -> None:
    """Concurrency 3, twelve jobs: pod creates held in flight, watch events late and pods ending
    in random order; never more than three pods alive at once, and every job runs once."""
    rng = random.Random(7)
    world.queue("q", concurrency=3)
    for i in range(12):
        world.job(f"j{i}", queue="q")
    creates = world.api.pause("create_pod")
    await world.start(settle=False)
    # Three admitted, their creates wait at the API server, and nothing more is tried.
    assert len(world.api.waiting["create_pod"]) == 3
    creates.set()
    await world.settle()
    assert len(world.pods()) == 3
    while len(world.pods()) < 12 or any(not world.pod_done(p) for p in world.pods()):
        running = [p for p in world.pods() if not world.pod_done(p)]
        assert running, "nothing runs, yet jobs are left"
        if rng.random() < 0.5:
            with world.api.hold_watch():
                world.finish(rng.choice(running))
                await world.advance(0.2)
        else:
            world.finish(rng.choice(running))
        await world.advance(0.2)
    assert world.api.most_live_pods[(NAMESPACE, "q")] == 3
    for i in range(12):
        assert world.phase(f"j{i}") == "Succeeded"
        assert world.pods(f"j{i}") == [f"j{i}-1"]


@scenario
async def test_a_freed_slot_is_refilled_once_the_watch_shows_the_pod_ended(world: World) -> None:
    """A pod's end the watch has not delivered yet frees nothing."""
    world.queue("q", concurrency=1)
    world.job("a", queue="q")
    world.job("b", queue="q")
    await world.start()
    assert world.pods() == ["a-1"]
    with world.api.hold_watch():
        world.finish("a-1")
        await world.advance(1)
        assert world.pods() == ["a-1"]
    await world.advance(1)
    assert world.pods() == ["a-1", "b-1"]


@scenario
async def test_the_rate_limit_waits_exactly_for_the_next_token(world: World) -> None:
    """max 2 per 10 s: two start now, none before the window slides, two more at 10 s."""
    world.queue("metered", rateLimit={"max": 2, "periodSeconds": 10})
    for i in range(5):
        world.job(f"call-{i}", queue="metered")
    await world.start()
    assert len(world.pods()) == 2
    await world.advance(9.9)
    assert len(world.pods()) == 2
    await world.advance(0.1)
    assert len(world.pods()) == 4
    await world.advance(10)
    assert len(world.pods()) == 5


@scenario
async def test_priority_then_age_decides_who_starts_first(world: World) -> None:
    """In a paused queue of concurrency 1, jobs start by priority, then by age, once resumed."""
    world.queue("line", concurrency=1, paused=True)
    for name, priority in [("low-a", 1), ("mid-a", 5), ("mid-b", 5), ("top", 10), ("low-b", 1)]:
        world.job(name, queue="line", priority=priority)
        await world.advance(1)
    await world.start()
    await world.advance(0.2)  # newcomers are looked at together, a moment after the first
    assert world.pods() == []
    assert {world.phase(n) for n in ("low-a", "mid-a", "mid-b", "top", "low-b")} == {"Queued"}
    world.update_queue("line", paused=False)
    await world.settle()
    order = []
    for _ in range(5):
        (running,) = [p for p in world.pods() if not world.pod_done(p)]
        order.append(running.rsplit("-", 1)[0])
        await world.finish_all()
    assert order == ["top", "mid-a", "mid-b", "low-a", "low-b"]


@scenario
async def test_a_job_admitted_in_its_first_pass_is_never_written_queued(world: World) -> None:
    """With room in the queue a job costs two status writes (Running, Succeeded); one that
    must wait costs one more (Queued), written once."""
    world.queue("q", concurrency=1)
    world.job("first", queue="q")
    world.job("second", queue="q")
    await world.start()
    await world.finish_all()
    await world.finish_all()
    phases = [
        (c.name, (c.body or {}).get("phase"))
        for c in world.api.calls
        if c.method == "patch_job_status"
    ]
    assert [p for n, p in phases if n == "first"] == ["Running", "Succeeded"]
    assert [p for n, p in phases if n == "second"] == ["Queued", "Running", "Succeeded"]


@scenario
async def test_a_missing_queue_holds_its_jobs_until_it_appears(world: World) -> None:
    """QueueNotFound while the queue is missing; the queue's creation starts the job."""
    world.job("early", queue="later")
    await world.start()
    condition = world.condition("early", "QueueNotFound")
    assert condition is not None and condition["status"] == "True"
    assert world.pods() == []
    world.queue("later")
    await world.settle()
    assert world.pods() == ["early-1"]
    assert world.condition("early", "QueueNotFound") is None


@scenario
async def test_a_lower_concurrency_takes_effect_for_the_next_admissions(world: World) -> None:
    """Concurrency lowered from 3 to 1: running pods finish; then one at a time."""
    world.queue("q", concurrency=3)
    for i in range(6):
        world.job(f"j{i}", queue="q")
    await world.start()
    assert len(world.pods()) == 3
    world.update_queue("q", concurrency=1)
    await world.settle()
    world.api.most_live_pods.clear()
    world.api.live_pods.clear()
    await world.finish_all()
    while any(not world.pod_done(p) for p in world.pods()) or len(world.pods()) < 6:
        running = [p for p in world.pods() if not world.pod_done(p)]
        assert len(running) <= 1
        await world.finish_all()
    assert all(world.phase(f"j{i}") == "Succeeded" for i in range(6))


@scenario
async def test_jobs_without_a_queue_start_at_once(world: World) -> None:
    """No queue, no limits: fifty jobs, fifty pods in one go."""
    for i in range(50):
        world.job(f"j{i}")
    await world.start()
    assert len(world.pods()) == 50
    assert world.api.count("create_pod") == 50
    body = world.api.get(Resource.PODS, NAMESPACE, "j0-1")
    assert body is not None and body["metadata"]["labels"]["conveyor.dev/attempt"] == "1"
