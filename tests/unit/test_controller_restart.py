"""A restarted operator rebuilds what it knows from the API server and runs no attempt twice."""

from __future__ import annotations

from conveyor.runtime import kube_errors
from conveyor.runtime.cache import Resource
from conveyor.runtime.queue_status import INTERVAL
from tests.unit.world import IMAGE, NAMESPACE, World, scenario


def pod_body(job: str, attempt: int, *, queue: str) -> dict[str, object]:
    """An attempt's pod as another operator (or an earlier one) created it."""
    return {
        "metadata": {
            "name": f"{job}-{attempt}",
            "namespace": NAMESPACE,
            "labels": {
                "conveyor.dev/job": job,
                "conveyor.dev/queue": queue,
                "conveyor.dev/attempt": str(attempt),
            },
        },
        "spec": {"containers": [{"name": "worker", "image": IMAGE}]},
        "status": {"phase": "Running"},
    }


@scenario
async def test_a_restart_counts_the_running_pods_before_it_admits(world: World) -> None:
    """Two of five jobs run when the operator dies; the new one starts nothing until a slot
    frees, adopts nothing twice, and runs every job exactly once."""
    world.queue("q", concurrency=2)
    for i in range(5):
        world.job(f"j{i}", queue="q")
    await world.start()
    assert len(world.pods()) == 2
    await world.restart()
    await world.advance(1)
    assert len(world.pods()) == 2
    while len(world.pods()) < 5 or any(not world.pod_done(p) for p in world.pods()):
        await world.finish_all()
    assert world.api.most_live_pods[(NAMESPACE, "q")] == 2
    for i in range(5):
        assert world.pods(f"j{i}") == [f"j{i}-1"]
        assert world.phase(f"j{i}") == "Succeeded"


@scenario
async def test_a_pod_created_just_before_a_crash_is_adopted_not_recreated(world: World) -> None:
    """The pod create succeeded, the Running write never did: after a restart the job is
    Running with that pod as attempt 1, and finishes with no second pod."""
    world.job("once")
    world.api.fail("patch_job_status", kube_errors.ApiError(500, "etcd is away"), times=100)
    await world.start()
    assert world.pods() == ["once-1"]
    assert world.phase("once") is None
    world.api.clear_failures()
    await world.restart()
    status = world.status("once")
    assert (status["phase"], status["attempts"], status["podName"]) == ("Running", 1, "once-1")
    await world.finish_all()
    assert world.phase("once") == "Succeeded"
    assert world.pods("once") == ["once-1"]
    assert world.api.count("create_pod") == 1


@scenario
async def test_a_conflict_on_create_is_adopted_and_holds_its_slot(world: World) -> None:
    """Someone else created the attempt's pod and the watch has not shown it yet: the 409 is
    read as "it exists", the job runs that pod, and its slot stays taken meanwhile."""
    world.queue("q", concurrency=1)
    await world.start()
    with world.api.hold_watch(Resource.PODS):
        world.api.create(Resource.PODS, pod_body("twin", 1, queue="q"))
        world.job("twin", queue="q")
        world.job("next", queue="q")
        await world.advance(1)
        status = world.status("twin")
        assert (status["phase"], status["attempts"], status["podName"]) == ("Running", 1, "twin-1")
        assert world.pods() == ["twin-1"]  # the queue is full: "next" waits
        assert world.phase("next") == "Queued"
    await world.advance(1)
    assert world.phase("twin") == "Running"
    await world.finish_all()
    assert world.phase("twin") == "Succeeded"
    assert world.pods() == ["next-1", "twin-1"]
    assert world.api.count("read_pod") == 1  # the 409, read once


@scenario
async def test_a_foreign_pod_in_the_way_is_reported_not_adopted(world: World) -> None:
    """A pod with the attempt's name that is not the job's: InvalidSpec saying so, no attempt."""
    world.api.create(
        Resource.PODS,
        {"metadata": {"name": "clash-1", "namespace": NAMESPACE}, "spec": {}},
    )
    world.job("clash")
    await world.start()
    condition = world.condition("clash", "InvalidSpec")
    assert condition is not None and "clash-1 exists" in condition["message"]
    assert world.status("clash").get("attempts", 0) == 0


@scenario
async def test_a_failing_write_is_retried_with_backoff_not_in_a_loop(world: World) -> None:
    """The Running write keeps failing: retries come after a growing backoff (not a busy
    loop), and once the API server answers the job runs on its one pod."""
    world.job("stubborn")
    world.api.fail("patch_job_status", kube_errors.ApiError(500, "try later"), times=4)
    await world.start()
    early = len(world.api.failed)
    assert 1 <= early <= 2  # the first write, and the look its own pod's event asked for
    await world.advance(0.5)
    assert len(world.api.failed) == early
    for _ in range(4):
        await world.advance(5)
    assert len(world.api.failed) == 4
    assert world.phase("stubborn") == "Running"
    assert world.pods() == ["stubborn-1"]
    assert world.api.count("create_pod") == 1


@scenario
async def test_a_restart_looks_at_the_jobs_that_can_still_run_before_the_finished_ones(
    world: World,
) -> None:
    """A namespace of finished jobs does not hold up the one waiting: after a restart it is
    reconciled (and started) first, then the finished ones, each once."""
    world.workers = 1
    for i in range(5):
        world.job(f"done-{i}")
    await world.start()
    await world.finish_all()
    assert all(world.phase(f"done-{i}") == "Succeeded" for i in range(5))
    await world.kill()
    world.job("waiting")  # named after the finished ones: listed last
    world.reconciles.clear()
    await world.restart()
    assert world.reconciles[0] == "waiting"
    finished = [name for name in world.reconciles if name.startswith("done-")]
    assert sorted(finished) == [f"done-{i}" for i in range(5)]
    assert world.pods("waiting") == ["waiting-1"]


@scenario
async def test_a_restart_admits_before_the_finished_jobs_are_listed(world: World) -> None:
    """The first list brings the unfinished jobs only: a ready job starts at once, while a
    job waiting for a finished one, a recurring job and the queue's status wait for the
    rest, and nothing is written from the partial view (deploy is not written Blocked)."""
    world.queue("q", concurrency=2)
    world.job("build", queue="q")
    world.job("tick", every="1h", queue="q")
    await world.start()
    await world.finish_all()
    assert world.phase("build") == "Succeeded"
    await world.kill()
    world.job("deploy", queue="q", dependsOn=["build"])
    world.job("plain", queue="q")
    since = len(world.api.calls)
    await world.start(unfinished_first=True)
    assert world.pods("plain") == ["plain-1"]
    assert world.pods("deploy") == []
    await world.advance(INTERVAL.total_seconds())
    written = {(call.method, call.name) for call in world.api.calls[since:]}
    assert ("patch_job_status", "plain") in written
    assert not {name for _, name in written} & {"deploy", "tick", "q"}
    assert world.phase("deploy") is None
    await world.list_the_rest()
    assert world.pods("deploy") == ["deploy-1"]
    await world.advance(INTERVAL.total_seconds())
    written = {(call.method, call.name) for call in world.api.calls[since:]}
    assert ("patch_queue_status", "q") in written
    assert ("patch_job_status", "deploy") in written


@scenario
async def test_a_pod_that_finished_while_down_is_not_taken_for_lost_before_it_is_listed(
    world: World,
) -> None:
    """long's pod succeeds while no operator runs. The first list leaves that pod out: the
    job, Running, is held back (its pod would look lost, and be run again) until the rest
    is listed, then records the success of its one attempt."""
    world.job("long")
    await world.start()
    assert world.phase("long") == "Running"
    await world.kill()
    world.finish("long-1")
    since = len(world.api.calls)
    await world.start(unfinished_first=True)
    await world.advance(5)
    assert [c for c in world.api.calls[since:] if c.name.startswith("long")] == []
    await world.list_the_rest()
    status = world.status("long")
    assert (status["phase"], status["attempts"]) == ("Succeeded", 1)
    assert world.pods("long") == ["long-1"]


@scenario
async def test_a_finished_pod_its_job_never_recorded_is_adopted_from_a_partial_list(
    world: World,
) -> None:
    """The pod was created, the Running write never made it, and the pod succeeded while no
    operator ran. The first list sees neither a pod nor a status: the job is admitted, its
    create is a 409, and the pod is adopted as attempt 1, not run again."""
    world.job("once")
    world.api.fail("patch_job_status", kube_errors.ApiError(500, "etcd is away"), times=100)
    await world.start()
    assert world.pods() == ["once-1"]
    await world.kill()
    world.api.clear_failures()
    world.finish("once-1")
    await world.start(unfinished_first=True)
    await world.list_the_rest()
    status = world.status("once")
    assert (status["phase"], status["attempts"], status["podName"]) == ("Succeeded", 1, "once-1")
    assert world.pods() == ["once-1"]


@scenario
async def test_a_rate_limited_queue_admits_only_once_its_finished_pods_are_listed(
    world: World,
) -> None:
    """Two starts a minute: both were used just before the restart, by pods that finished.
    A partial list does not show them, so the queue admits nothing until it is complete;
    then it waits for the window, as it would have."""
    world.queue("metered", rateLimit={"max": 2, "periodSeconds": 60})
    world.job("a", queue="metered")
    world.job("b", queue="metered")
    await world.start()
    await world.finish_all()
    await world.kill()
    world.job("c", queue="metered")
    await world.start(unfinished_first=True)
    await world.advance(1)
    assert world.pods("c") == []
    await world.list_the_rest()
    await world.advance(1)
    assert world.pods("c") == []
    await world.advance(60)
    assert world.pods("c") == ["c-1"]
