"""Another operator acting in the same namespace: reported on the job and on the queue."""

from __future__ import annotations

from typing import Any

from conveyor.core import naming
from conveyor.runtime import rivals
from conveyor.runtime.cache import Resource
from tests.unit.world import NAMESPACE, World, scenario


def queue_condition(world: World, queue: str) -> dict[str, Any] | None:
    body = world.api.get(Resource.QUEUES, NAMESPACE, queue)
    assert body is not None
    found = (body.get("status") or {}).get("conditions") or []
    return next((c for c in found if c["type"] == rivals.CONDITION), None)


def foreign_pod(job: str, attempt: int, creator: str) -> dict[str, Any]:
    """The pod another operator would have created for the job's attempt."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": naming.pod_name(job, attempt),
            "namespace": NAMESPACE,
            "labels": {
                naming.LABEL_JOB: job,
                naming.LABEL_QUEUE: "q",
                naming.LABEL_ATTEMPT: str(attempt),
                naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
            },
            "annotations": {naming.ANNOTATION_OPERATOR: creator},
        },
        "spec": {"containers": [{"name": "worker", "image": "busybox"}]},
        "status": {"phase": "Pending"},
    }


@scenario
async def test_a_pod_of_another_operator_is_reported_on_its_job_and_its_queue(
    world: World,
) -> None:
    """A second release creates a pod here: a Warning on the job, once, and OperatorConflict
    on the namespace's queues while it acts; False again ten minutes after it stopped."""
    world.queue("q", concurrency=1, paused=True)
    world.job("a", queue="q")
    world.job("b", queue="q")
    await world.start()
    assert world.pods() == []
    world.api.create(Resource.PODS, foreign_pod("a", 1, "other/conveyor"))
    world.api.create(Resource.PODS, foreign_pod("b", 1, "other/conveyor"))
    await world.advance(1)
    assert world.event_reasons("a") == ["AnotherOperator"]
    assert world.event_reasons("b") == [], "reported once per operator, not per pod"
    found = queue_condition(world, "q")
    assert found is not None
    assert (found["status"], found["reason"]) == ("True", "AnotherOperator")
    assert "other/conveyor" in found["message"]
    await world.advance(rivals.ACTIVE_FOR.total_seconds())
    found = queue_condition(world, "q")
    assert found is not None and found["status"] == "False"


@scenario
async def test_its_own_pods_and_a_takeover_are_not_a_rival(world: World) -> None:
    """The operator's own pods carry its identity; a restarted operator of the same release
    sees them and reports nothing."""
    world.queue("q")
    world.job("a", queue="q")
    await world.start()
    assert world.pods() == ["a-1"]
    body = world.api.get(Resource.PODS, NAMESPACE, "a-1")
    assert body is not None
    assert body["metadata"]["annotations"][naming.ANNOTATION_OPERATOR] == "conveyor"
    await world.restart()
    world.finish("a-1")
    await world.advance(1)
    assert "AnotherOperator" not in world.event_reasons("a")
    assert queue_condition(world, "q") is None


@scenario
async def test_an_old_finished_pod_listed_after_the_start_is_no_rival(world: World) -> None:
    """A pod another release made long ago, finished, reaches a restarted operator with the
    second list, after it began: it is history, not another operator acting here now."""
    world.queue("q", concurrency=1)
    world.job("old", queue="q")
    world.api.create(Resource.PODS, foreign_pod("old", 1, "earlier/conveyor"))
    world.finish("old-1")
    world.api.set_status(Resource.JOBS, NAMESPACE, "old", {"phase": "Succeeded", "attempts": 1})
    world.job("new", queue="q")
    await world.start(unfinished_first=True)
    await world.list_the_rest()
    await world.advance(1)
    assert world.pods("new") == ["new-1"]
    assert world.event_reasons("old") == []
    found = queue_condition(world, "q")
    assert found is None or found["status"] == "False"
