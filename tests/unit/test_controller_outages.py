"""The API server failing the operator's pod creates for a while: backoff, then every job runs."""

from __future__ import annotations

from conveyor.runtime import kube_errors
from conveyor.runtime.cache import Resource
from tests.unit.world import NAMESPACE, World, scenario


@scenario
async def test_starts_that_keep_failing_back_off_per_job_and_resume_after(world: World) -> None:
    """Thirty queued jobs, every pod create answered 500 for ten minutes: each job's creates
    back off (1 s, 2 s, 4 s ... 60 s), so ~15 tries a job rather than one or two a second;
    once the API server answers again, every job starts within the longest backoff."""
    world.queue("q", concurrency=10)
    for i in range(30):
        world.job(f"j{i}", queue="q")
    world.api.fail("create_pod", kube_errors.ApiError(500, "etcd leader changed"), times=10**9)
    await world.start()
    for _ in range(600):
        await world.advance(1)
    tried = len(world.api.failed)
    assert 30 * 6 <= tried <= 30 * 20, f"{tried} creates tried by 30 jobs in 600 s"
    assert world.pods() == []
    world.api.clear_failures()
    for _ in range(62):
        await world.advance(1)
        await world.finish_all()
    assert sorted(world.pods()) == sorted(f"j{i}-1" for i in range(30))
    assert all(world.phase(f"j{i}") == "Succeeded" for i in range(30))


@scenario
async def test_a_start_that_failed_once_is_tried_again_a_second_later(world: World) -> None:
    """One 429 on the create: the job is offered again after about a second, not lost."""
    world.queue("q", concurrency=1)
    world.job("once", queue="q")
    world.api.fail("create_pod", kube_errors.ApiError(429, "too many requests"))
    await world.start()
    assert world.pods() == []
    await world.advance(1.2)
    assert world.pods() == ["once-1"]


@scenario
async def test_an_attempt_whose_status_could_not_be_written_is_not_run_again(
    world: World,
) -> None:
    """Status writes refused (RBAC revoked) while someone deletes the job's pods twice: the
    second attempt's pod, created but never recorded, is remembered as lost once deleted,
    so the job goes on with attempt 3, never a second pod for attempt 2."""
    world.job("payment")
    await world.start()
    assert world.pods() == ["payment-1"]
    world.api.fail(
        "patch_job_status",
        kube_errors.ApiError(403, 'User "conveyor" cannot patch resource "backgroundjobs/status"'),
        times=10**9,
    )
    world.api.delete(Resource.PODS, NAMESPACE, "payment-1")
    await world.advance(1)
    assert world.pods() == ["payment-2"]
    world.api.delete(Resource.PODS, NAMESPACE, "payment-2")
    await world.advance(5)
    world.api.clear_failures()
    for _ in range(130):  # the job's retries back off up to 60 s, jittered
        await world.advance(1)
    creates = [c.name for c in world.api.calls if c.method == "create_pod"]
    assert creates == ["payment-1", "payment-2", "payment-3"], creates
    status = world.status("payment")
    assert status["attempts"] == 3, status
    results = [(h["attempt"], h["result"], h["reason"]) for h in status["history"]]
    assert results[:2] == [(1, "Disrupted", "PodDeleted"), (2, "Disrupted", "PodDeleted")]
    assert results[2][0] == 3
