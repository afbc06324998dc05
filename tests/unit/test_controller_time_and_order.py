"""Backoff, delays, dependencies and recurring runs, through the controller, on a moved clock."""

from __future__ import annotations

import datetime

from conveyor.core import naming
from conveyor.runtime.cache import Resource
from tests.unit.factories import T0
from tests.unit.world import NAMESPACE, World, scenario


def rfc3339(moment: datetime.datetime) -> str:
    return naming.format_time(moment)


@scenario
async def test_a_failed_attempt_is_retried_when_its_backoff_ends(world: World) -> None:
    """Fixed 5 s backoff: BackingOff until then, the second attempt at exactly 5 s."""
    world.job(
        "flaky",
        retry={"maxAttempts": 2, "backoff": {"strategy": "Fixed", "initialDelaySeconds": 5}},
    )
    await world.start()
    await world.finish_all(exit_code=1)
    assert world.phase("flaky") == "BackingOff"
    await world.advance(4.5)
    assert world.pods() == ["flaky-1"]
    await world.advance(0.5)
    assert world.pods() == ["flaky-1", "flaky-2"]
    await world.finish_all(exit_code=1)
    status = world.status("flaky")
    assert (status["phase"], status["attempts"], status["failures"]) == ("Failed", 2, 2)


@scenario
async def test_a_delayed_job_starts_at_its_time(world: World) -> None:
    """startAt 60 s ahead: Delayed until then, started at that moment."""
    world.job("later", startAt=rfc3339(T0 + datetime.timedelta(seconds=60)))
    await world.start()
    assert world.phase("later") == "Delayed"
    await world.advance(59)
    assert world.pods() == []
    await world.advance(1)
    assert world.pods() == ["later-1"]


@scenario
async def test_a_delay_survives_a_restart(world: World) -> None:
    """The wake-up is computed again from the status by the new operator."""
    world.job("patient", delaySeconds=30)
    await world.start()
    await world.advance(10)
    await world.restart()
    await world.advance(19)
    assert world.pods() == []
    await world.advance(1)
    assert world.pods() == ["patient-1"]


@scenario
async def test_dependents_wait_for_their_dependencies_and_start_after(world: World) -> None:
    """ship waits Blocked for charge and reserve; their success starts it; a failure fails it."""
    world.job("ship", dependsOn=["charge", "reserve"])
    world.job("charge")
    world.job("reserve")
    world.job("refund", dependsOn=["charge-twice"])
    world.job("charge-twice", retry={"maxAttempts": 1})
    await world.start()
    assert world.phase("ship") == "Blocked"
    assert sorted(world.pods()) == ["charge-1", "charge-twice-1", "reserve-1"]
    world.finish("charge-1")
    world.finish("charge-twice-1", exit_code=1)
    await world.settle()
    assert world.phase("ship") == "Blocked"
    assert world.phase("refund") == "Failed"
    assert world.condition("refund", "Failed")["reason"] == "DependencyFailed"  # type: ignore[index]
    world.finish("reserve-1")
    await world.settle()
    assert "ship-1" in world.pods()


@scenario
async def test_a_recurring_job_creates_a_run_at_each_time_and_prunes_old_ones(
    world: World,
) -> None:
    """every 10 s: runs named by their scheduled time, owned by the parent; only the newest
    successfulRunsHistoryLimit of the succeeded runs are kept."""
    world.job("tick", every="10s", successfulRunsHistoryLimit=2)
    await world.start()
    assert world.phase("tick") == "Scheduled"
    names = []
    for k in range(1, 5):
        await world.advance(10)
        run = f"tick-{int(T0.timestamp()) + 10 * k}"
        names.append(run)
        assert run in world.api.names(Resource.JOBS, NAMESPACE)
        await world.finish_all()
        assert world.phase(run) == "Succeeded"
    await world.settle()
    kept = [n for n in world.api.names(Resource.JOBS, NAMESPACE) if n.startswith("tick-")]
    assert kept == names[-2:]
    body = world.api.get(Resource.JOBS, NAMESPACE, names[-1])
    assert body is not None
    assert body["metadata"]["ownerReferences"][0]["name"] == "tick"
    assert "every" not in body["spec"]


@scenario
async def test_a_recurring_job_missed_while_down_catches_up_by_its_policy(world: World) -> None:
    """RunLatest: after 35 s without an operator, one run, of the newest missed time."""
    world.job("catchup", every="10s", missedRunsPolicy="RunLatest")
    await world.start()
    await world.kill()
    world.clock.now += datetime.timedelta(seconds=35)
    await world.restart()
    runs = [n for n in world.api.names(Resource.JOBS, NAMESPACE) if n.startswith("catchup-")]
    assert runs == [f"catchup-{int(T0.timestamp()) + 30}"]


@scenario
async def test_forbid_waits_for_a_run_that_finished_while_the_operator_was_down(
    world: World,
) -> None:
    """The run's pod succeeded during an outage, its status still says Running: the next due
    run is created once the run's own reconcile has caught up, not skipped as overlapping."""
    world.job("nightly", every="10s", concurrencyPolicy="Forbid")
    await world.start()
    await world.advance(10)
    first = f"nightly-{int(T0.timestamp()) + 10}"
    assert world.pods(first) == [f"{first}-1"]
    await world.kill()
    world.finish(f"{first}-1")
    world.clock.now += datetime.timedelta(seconds=10.5)
    await world.restart()
    second = f"nightly-{int(T0.timestamp()) + 20}"
    assert world.phase(first) == "Succeeded"
    assert second in world.api.names(Resource.JOBS, NAMESPACE)
    assert "RunSkipped" not in world.event_reasons("nightly")
