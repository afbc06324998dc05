"""Actions asked for with an annotation, carried out by the controller against the fake API:
cancel deletes the pod and frees the slot, promote still waits for the queue, run-now creates
one manual run; each posts an event and happens once."""

from __future__ import annotations

from conveyor.core import naming
from conveyor.runtime.cache import Resource
from tests.unit.factories import T0
from tests.unit.world import NAMESPACE, World, scenario


@scenario
async def test_cancel_deletes_the_running_pod_and_the_next_job_gets_the_slot(
    world: World,
) -> None:
    world.queue("one", concurrency=1)
    world.job("long", queue="one")
    world.job("next", queue="one")
    await world.start()
    await world.advance(1)
    assert world.pods() == ["long-1"]
    world.api.run_pod(NAMESPACE, "long-1")
    world.annotate("long", naming.ANNOTATION_CANCEL, "c1")
    await world.advance(1)
    status = world.status("long")
    assert status["phase"] == "Failed"
    assert world.condition("long", "Failed")["reason"] == "Cancelled"
    assert status["cancelled"] == "c1"
    assert "long-1" not in world.pods()
    assert world.pods() == ["next-1"]
    assert "Cancelled" in world.event_reasons("long")
    # looked at again (any change), the cancel is not taken twice
    world.annotate("long", "unrelated", "x")
    await world.advance(1)
    assert world.event_reasons("long").count("Cancelled") == 1
    assert world.pods("long") == []


@scenario
async def test_a_promoted_job_still_waits_for_its_queues_slot(world: World) -> None:
    """A backing-off job promoted while its queue is full starts when the slot frees, long
    before its backoff would have ended."""
    world.queue("one", concurrency=1)
    world.job(
        "flaky",
        queue="one",
        retry={"backoff": {"strategy": "Fixed", "initialDelaySeconds": 600}},
    )
    await world.start()
    await world.advance(1)
    world.finish("flaky-1", exit_code=1)
    await world.advance(1)
    assert world.phase("flaky") == "BackingOff"
    world.job("hog", queue="one")
    await world.advance(1)
    assert "hog-1" in world.pods()
    world.annotate("flaky", naming.ANNOTATION_PROMOTE, "p1")
    await world.advance(1)
    assert world.phase("flaky") == "Queued"
    assert "flaky-2" not in world.pods()
    assert "Promoted" in world.event_reasons("flaky")
    world.finish("hog-1")
    await world.advance(1)
    assert world.phase("flaky") == "Running"
    assert "flaky-2" in world.pods()


@scenario
async def test_run_now_creates_one_manual_run_of_a_recurring_job(world: World) -> None:
    world.job("nightly", schedule="0 3 * * *")
    await world.start()
    await world.advance(30)
    world.annotate("nightly", naming.ANNOTATION_RUN_NOW, "n1")
    await world.settle()
    run = f"nightly-{int(T0.timestamp()) + 30}"
    runs = [n for n in world.api.names(Resource.JOBS, NAMESPACE) if n.startswith("nightly-")]
    assert runs == [run]
    body = world.api.get(Resource.JOBS, NAMESPACE, run)
    assert body is not None
    assert body["metadata"]["labels"][naming.LABEL_MANUAL] == "true"
    assert body["metadata"]["labels"][naming.LABEL_PARENT] == "nightly"
    assert world.status("nightly")["ranNow"] == "n1"
    assert world.status("nightly")["active"] == [run]
    assert "RunNow" in world.event_reasons("nightly")
    await world.finish_all()
    assert world.phase(run) == "Succeeded"
    await world.advance(5)
    runs = [n for n in world.api.names(Resource.JOBS, NAMESPACE) if n.startswith("nightly-")]
    assert runs == [run]
    assert world.status("nightly").get("active", []) == []
