"""Deadlines: attemptDeadlineSeconds per attempt, jobDeadlineSeconds for the whole job, and
activeDeadlineSeconds, the deprecated name of the first, still honoured and said so."""

from __future__ import annotations

from conveyor.core import conditions, deprecation, podspec
from conveyor.core.decisions import CreatePod, DeletePod
from conveyor.core.lifecycle import step
from conveyor.runtime.cache import Resource
from tests.unit.factories import (
    NAMESPACE,
    QUEUE,
    advance,
    around,
    at,
    effective,
    job,
    pod,
    reasons,
    spec,
)
from tests.unit.test_lifecycle import condition, fail_attempt, running_job
from tests.unit.world import World, scenario


def test_the_attempt_deadline_is_the_pods_own() -> None:
    """attemptDeadlineSeconds, or its old name, becomes the pod's activeDeadlineSeconds."""
    for fields in ({"attemptDeadlineSeconds": 30}, {"activeDeadlineSeconds": 30}):
        view = job(spec(**fields))
        rendered = podspec.render_pod(
            view, uid="u", attempt=1, effective=effective(view.spec), now=at(0)
        )
        assert rendered["spec"]["activeDeadlineSeconds"] == 30


def test_a_running_job_past_its_job_deadline_is_stopped_and_fails() -> None:
    """At startTime + jobDeadlineSeconds the running attempt's pod is deleted, the attempt
    recorded as DeadlineExceeded, and the job fails with that reason: no further attempt."""
    view = running_job(jobDeadlineSeconds=60, retry={"maxAttempts": 5})
    running = {1: pod(1, "Running", created_at=at(0))}
    early = step(view, around(view, at(59), pods=running))
    assert early.status.phase == "Running"
    assert early.wake_at == at(60), "it wakes when the job deadline runs out"

    view, decision = advance(view, around(view, at(60), pods=running))
    assert decision.status.phase == "Failed"
    assert decision.actions == [DeletePod("send-1-1")]
    failed = condition(decision, "Failed")
    assert failed is not None and failed.reason == "DeadlineExceeded"
    assert "jobDeadlineSeconds" in failed.message
    assert decision.status.history[-1].reason == "DeadlineExceeded"
    assert decision.status.last_failure is not None
    assert decision.status.last_failure.reason == "DeadlineExceeded"
    assert reasons(decision) == ["Failed"]

    later = step(view, around(view, at(70), pods=running, admit=True))
    assert later.actions == [] and later.status.phase == "Failed"


def test_the_job_deadline_counts_backoff_and_stops_a_retry() -> None:
    """Retries and backoff count: a retry due after the job deadline never starts."""
    view = running_job(
        jobDeadlineSeconds=30,
        retry={"maxAttempts": 5, "backoff": {"strategy": "Fixed", "initialDelaySeconds": 60}},
    )
    view, backing_off = fail_attempt(view, 1, at(10))
    assert backing_off.status.phase == "BackingOff"
    assert backing_off.wake_at == at(30), "the deadline comes before the retry (at 70)"
    view, decision = advance(view, around(view, at(30), admit=True))
    assert decision.status.phase == "Failed"
    assert not [a for a in decision.actions if isinstance(a, CreatePod)]
    assert condition(decision, "Failed").reason == "DeadlineExceeded"


def test_the_job_deadline_starts_with_the_first_attempt() -> None:
    """Time spent waiting for the queue does not count (as batch/v1 counts from startTime)."""
    view = job(spec(jobDeadlineSeconds=10))
    view, queued = advance(view, around(view, at(0)))
    assert queued.status.phase == "Queued" and queued.wake_at is None
    view, started = advance(view, around(view, at(500), admit=True))
    assert started.actions == [CreatePod(1)]
    assert started.status.start_time == at(500)


def test_the_deprecated_name_gets_a_condition_and_one_warning() -> None:
    """activeDeadlineSeconds works, and says it is deprecated: a Deprecated condition, a
    Warning event when it appears (not on every reconcile); gone with the field."""
    view = job(spec(activeDeadlineSeconds=30))
    view, first = advance(view, around(view, at(0)))
    found = condition(first, deprecation.CONDITION)
    assert found is not None and found.status == "True"
    assert found.reason == deprecation.REASON and "attemptDeadlineSeconds" in found.message
    assert [(e.type, e.reason) for e in first.events] == [("Warning", deprecation.REASON)]
    view, again = advance(view, around(view, at(1)))
    assert again.events == []

    renamed = job(spec(attemptDeadlineSeconds=30), status=view.status)
    fixed = step(renamed, around(renamed, at(2)))
    assert condition(fixed, deprecation.CONDITION) is None


def test_every_condition_the_lifecycle_writes_is_complete() -> None:
    """reason, message and lastTransitionTime are set on every condition (the CRD requires
    them): walked through a failing, deprecated, suspended job's life."""
    view = running_job(activeDeadlineSeconds=5, retry={"maxAttempts": 2})
    view, _ = fail_attempt(view, 1, at(10))
    view, _ = advance(view, around(view, at(12), admit=True))
    view, last = fail_attempt(view, 2, at(20))
    assert last.status.phase == "Failed"
    assert {c.type for c in last.status.conditions} >= {"Admitted", "Failed", "Deprecated"}
    for cond in last.status.conditions:
        assert cond.reason and cond.message and cond.last_transition_time is not None, cond
    assert conditions.is_true(last.status.conditions, "Failed")


@scenario
async def test_a_queue_whose_defaults_use_the_deprecated_name_says_so(world: World) -> None:
    """The queue's status gets a Deprecated condition (beside Ready) while its defaults use
    activeDeadlineSeconds; its jobs still get it as their attempt deadline."""
    world.queue(QUEUE, defaults={"activeDeadlineSeconds": 30})
    world.job("send-1", queue=QUEUE)
    await world.start()
    await world.advance(1.5)
    body = world.api.get(Resource.QUEUES, NAMESPACE, QUEUE)
    assert body is not None
    types = {c["type"]: c for c in body["status"]["conditions"]}
    assert types["Deprecated"]["reason"] == deprecation.REASON
    assert "spec.defaults.attemptDeadlineSeconds" in types["Deprecated"]["message"]
    pod_body = world.api.get(Resource.PODS, NAMESPACE, "send-1-1")
    assert pod_body is not None and pod_body["spec"]["activeDeadlineSeconds"] == 30


@scenario
async def test_the_operator_wakes_a_running_job_at_its_job_deadline(world: World) -> None:
    """Nothing happens to the pod; the clock alone brings the job back at startTime +
    jobDeadlineSeconds, when its pod is deleted and it fails."""
    world.job("bounded", jobDeadlineSeconds=4, retry={"maxAttempts": 5})
    await world.start()
    await world.advance(0.5)
    world.api.run_pod(NAMESPACE, "bounded-1")
    await world.advance(1)
    assert world.phase("bounded") == "Running"
    await world.advance(3)
    assert world.phase("bounded") == "Failed"
    assert world.condition("bounded", "Failed")["reason"] == "DeadlineExceeded"
    assert world.pods("bounded") == []
