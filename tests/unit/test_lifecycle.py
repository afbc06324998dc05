"""lifecycle.step: the state machine of one BackgroundJob, driven with explicit times and pods."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.api.v1alpha1 import BackgroundJobStatus, JobDefaults
from conveyor.core import conditions, decisions, naming
from conveyor.core.attempts import LOG_TAIL_BYTES
from conveyor.core.decisions import CreatePod, DeleteJob, DeletePod
from conveyor.core.draft import HISTORY_LIMIT
from conveyor.core.lifecycle import step
from tests.unit.factories import (
    JOB,
    QUEUE,
    T0,
    advance,
    around,
    at,
    effective,
    job,
    pod,
    reasons,
    spec,
    with_status,
)


def condition(decision_or_status, type_):
    status = getattr(decision_or_status, "status", decision_or_status)
    return conditions.find(status.conditions, type_)


def running_job(*, retry=None, now=T0, **spec_fields):
    """A job whose first attempt was just admitted (pod send-1-1 created at `now`)."""
    fields = dict(spec_fields)
    if retry is not None:
        fields["retry"] = retry
    view = job(spec(**fields))
    view, _ = advance(view, around(view, now))
    view, decision = advance(view, around(view, now, admit=True))
    assert decision.actions == [CreatePod(1)]
    return view


def fail_attempt(view, n, now, *, exit_code=1, **pod_fields):
    """The attempt `n` pod failed at `now` with `exit_code`."""
    failed = pod(
        n,
        "Failed",
        created_at=now - datetime.timedelta(seconds=1),
        finished_at=now,
        exit_code=exit_code,
        container_reason="Error",
        **pod_fields,
    )
    return advance(view, around(view, now, pods={n: failed}))


# ---------------------------------------------------------------- the happy path


def test_fresh_job_is_queued_and_wants_admission():
    """A new job with a queue is Queued, asks for admission, and creates nothing yet."""
    decision = step(job(), around(job(), at(0)))
    assert decision.status.phase == "Queued"
    assert decision.wants_admission is True
    assert decision.actions == []
    assert decision.events == []
    assert decision.status.attempts == 0
    assert decision.status.attempts_summary == "0/5"
    assert decision.status.queue_order is not None
    assert decision.status.observed_generation == 1


def test_admitted_job_creates_pod_one_and_runs():
    """Admission creates attempt 1's pod, goes Running, sets Admitted and emits Started."""
    view = job()
    view, _ = advance(view, around(view, at(0)))
    decision = step(view, around(view, at(3), admit=True))
    status = decision.status
    assert decision.actions == [CreatePod(1)]
    assert status.phase == "Running"
    assert status.attempts == 1
    assert status.pod_name == naming.pod_name(JOB, 1)
    assert status.start_time == at(3)
    assert status.queue_order is None
    assert status.attempts_summary == "1/5"
    admitted = condition(decision, "Admitted")
    assert admitted is not None
    assert admitted.status == "True"
    assert reasons(decision) == ["Started"]
    assert [h.attempt for h in status.history] == [1]
    assert status.history[0].start_time == at(3)


def test_running_pod_keeps_running_and_wakes_at_the_start_deadline():
    """While the pod has not started, the job wakes at its start deadline; nothing else changes."""
    view = running_job()
    decision = step(view, around(view, at(10), pods={1: pod(1, "Pending", created_at=at(0))}))
    assert decision.status == view.status
    assert decision.events == []
    assert decision.actions == []
    assert decision.wake_at == at(300)


def test_success():
    """A succeeded pod makes the job Succeeded with condition Succeeded=True and completion time."""
    view = running_job()
    done = pod(1, "Succeeded", created_at=at(0), finished_at=at(42), exit_code=0)
    decision = step(view, around(view, at(50), pods={1: done}))
    status = decision.status
    assert status.phase == "Succeeded"
    assert status.completion_time == at(42)
    succeeded = condition(decision, "Succeeded")
    assert succeeded is not None
    assert (succeeded.status, succeeded.reason) == ("True", "Completed")
    assert status.history[-1].result == "Succeeded"
    assert status.history[-1].finished_at == at(42)
    assert status.attempts_summary == "1/5"
    assert reasons(decision) == ["Succeeded"]
    assert decision.actions == []
    assert decisions.is_terminal(status.phase)


def test_finished_job_stays_finished():
    """A Succeeded job ignores admission and pods: no new attempt, no events."""
    view = running_job()
    done = pod(1, "Succeeded", created_at=at(0), finished_at=at(42))
    view, _ = advance(view, around(view, at(50), pods={1: done}))
    decision = step(view, around(view, at(60), pods={}, admit=True))
    assert decision.status == view.status
    assert decision.actions == []
    assert decision.events == []


# ---------------------------------------------------------------- failures and retries


def test_failure_backs_off_exponentially_then_retries():
    """Failures back off 1s, 2s, 4s; at nextAttemptAt the job queues, then runs attempt n+1."""
    view = running_job(retry={"maxAttempts": 5})
    finished = at(10)
    for n, delay in [(1, 1), (2, 2), (3, 4)]:
        view, decision = fail_attempt(view, n, finished)
        status = decision.status
        assert status.phase == "BackingOff"
        assert status.failures == n
        assert status.next_attempt_at == finished + datetime.timedelta(seconds=delay)
        assert decision.wake_at == status.next_attempt_at
        assert reasons(decision) == ["AttemptFailed"]
        assert status.attempts_summary == f"{n}/5"
        assert status.last_failure is not None
        assert status.last_failure.attempt == n

        early = step(view, around(view, status.next_attempt_at - datetime.timedelta(seconds=0.5)))
        assert early.status.phase == "BackingOff"
        assert early.wants_admission is False

        view, queued = advance(view, around(view, status.next_attempt_at))
        assert queued.status.phase == "Queued"
        assert queued.wants_admission is True
        assert queued.status.next_attempt_at is None

        start = status.next_attempt_at
        view, started = advance(view, around(view, start, admit=True))
        assert started.actions == [CreatePod(n + 1)]
        assert started.status.phase == "Running"
        assert started.status.attempts == n + 1
        assert started.status.pod_name == naming.pod_name(JOB, n + 1)
        assert started.status.attempts_summary == f"{n + 1}/5"
        finished = start + datetime.timedelta(seconds=5)


def test_backoff_uses_queue_defaults_and_fixed_strategy():
    """A Fixed backoff from the queue's defaults delays every retry by the same time."""
    view = running_job()
    defaults = JobDefaults.model_validate(
        {"retry": {"backoff": {"strategy": "Fixed", "initialDelaySeconds": 7}}}
    )
    eff = effective(view.spec, defaults)
    failed = pod(1, "Failed", created_at=at(0), finished_at=at(10), exit_code=1)
    decision = step(view, around(view, at(10), pods={1: failed}, effective=eff))
    assert decision.status.next_attempt_at == at(17)


def test_attempts_exhausted():
    """The last allowed failure fails the job: AttemptsExhausted, lastFailure with exit code."""
    view = running_job(retry={"maxAttempts": 2})
    view, _ = fail_attempt(view, 1, at(10))
    view, _ = advance(view, around(view, at(11), admit=True))
    assert view.status.attempts == 2
    view, decision = fail_attempt(view, 2, at(20), exit_code=3, log_tail="last words")
    status = decision.status
    assert status.phase == "Failed"
    assert status.completion_time == at(20)
    failed = condition(decision, "Failed")
    assert failed is not None
    assert (failed.status, failed.reason) == ("True", "AttemptsExhausted")
    assert status.last_failure is not None
    assert status.last_failure.attempt == 2
    assert status.last_failure.exit_code == 3
    assert status.last_failure.log_tail == "last words"
    assert status.attempts_summary == "2/2"
    assert "Failed" in reasons(decision)
    assert decision.wants_admission is False
    assert [h.result for h in status.history] == ["Failed", "Failed"]


def test_log_tail_is_clipped_keeping_the_end():
    """The log tail is clipped to LOG_TAIL_BYTES from the end, the last line kept."""
    log = "".join(f"line {i}\n" for i in range(2000)) + "FATAL: the end"
    view = running_job(retry={"maxAttempts": 1})
    _, decision = fail_attempt(view, 1, at(10), log_tail=log)
    tail = decision.status.last_failure.log_tail
    assert tail is not None
    assert len(tail.encode()) <= LOG_TAIL_BYTES
    assert tail.endswith("FATAL: the end")
    assert log.endswith(tail)


def test_log_tail_clipping_never_splits_a_character():
    """Clipping multi-byte text keeps valid text within the byte limit."""
    log = "é" * LOG_TAIL_BYTES + "!"
    view = running_job(retry={"maxAttempts": 1})
    _, decision = fail_attempt(view, 1, at(10), log_tail=log)
    tail = decision.status.last_failure.log_tail
    assert len(tail.encode()) <= LOG_TAIL_BYTES
    assert tail.endswith("é!")
    assert set(tail[:-1]) == {"é"}


def test_short_log_tail_is_kept_whole():
    """A log tail within the limit is stored unchanged."""
    view = running_job(retry={"maxAttempts": 1})
    _, decision = fail_attempt(view, 1, at(10), log_tail="a\nb\n")
    assert decision.status.last_failure.log_tail == "a\nb\n"


def test_non_retryable_exit_code_fails_at_once():
    """An exit code in nonRetryableExitCodes fails the job on the first attempt."""
    view = running_job(retry={"maxAttempts": 5, "nonRetryableExitCodes": [2]})
    _, decision = fail_attempt(view, 1, at(10), exit_code=2)
    assert decision.status.phase == "Failed"
    assert condition(decision, "Failed").reason == "NonRetryableExitCode"
    assert decision.status.attempts_summary == "1/5"
    assert decision.actions == []


def test_failed_condition_supports_kubectl_wait():
    """A failed job has condition Failed=True and no Succeeded condition."""
    view = running_job(retry={"maxAttempts": 1})
    _, decision = fail_attempt(view, 1, at(10))
    assert conditions.is_true(decision.status.conditions, "Failed")
    assert condition(decision, "Succeeded") is None


# ---------------------------------------------------------------- disruptions


def test_disruption_is_not_counted_and_retried_at_once():
    """An evicted pod leaves failures alone, adds a disruption, and the job is queued again now."""
    view = running_job(retry={"maxAttempts": 1})
    evicted = pod(1, "Failed", created_at=at(0), finished_at=at(5), reason="Evicted")
    view, decision = advance(view, around(view, at(6), pods={1: evicted}))
    status = decision.status
    assert status.failures == 0
    assert status.disruptions == 1
    assert status.phase == "Queued"
    assert decision.wants_admission is True
    assert status.next_attempt_at is None
    assert status.history[-1].result == "Disrupted"
    assert status.last_failure is None
    assert status.attempts_summary == "0/1"
    assert reasons(decision) == ["AttemptDisrupted"]

    decision = step(view, around(view, at(6), pods={1: evicted}, admit=True))
    assert decision.actions == [CreatePod(2)]


def test_deleted_pod_is_a_disruption():
    """A Running job whose pod vanished records PodDeleted and asks for admission."""
    view = running_job()
    decision = step(view, around(view, at(30), pods={}))
    assert decision.status.disruptions == 1
    assert decision.status.history[-1].reason == "PodDeleted"
    assert decision.status.phase == "Queued"


def test_disruption_admitted_in_the_same_reconcile_starts_the_next_attempt():
    """If the queue admits the job while the disruption is recorded, attempt 2 starts at once."""
    view = running_job()
    evicted = pod(1, "Failed", created_at=at(0), reason="Evicted")
    decision = step(view, around(view, at(6), pods={1: evicted}, admit=True))
    assert decision.actions == [CreatePod(2)]
    assert decision.status.attempts == 2


def test_too_many_disruptions():
    """One disruption more than maxDisruptions fails the job with TooManyDisruptions."""
    view = running_job(retry={"maxDisruptions": 1})
    for n in (1, 2):
        lost = pod(n, "Failed", created_at=at(n), reason="Preempting")
        view, decision = advance(view, around(view, at(n + 1), pods={n: lost}))
        if n == 1:
            assert decision.status.phase == "Queued"
            view, _ = advance(view, around(view, at(n + 1), admit=True))
    assert decision.status.phase == "Failed"
    assert decision.status.disruptions == 2
    assert condition(decision, "Failed").reason == "TooManyDisruptions"
    assert decision.status.failures == 0


# ---------------------------------------------------------------- start timeout


def test_start_timeout_deletes_the_pod_and_fails_the_attempt():
    """A pod unstarted past the timeout is deleted; the attempt fails with its waiting reason."""
    view = running_job(startTimeoutSeconds=60)
    stuck = pod(
        1,
        "Pending",
        created_at=at(0),
        waiting_reason="ImagePullBackOff",
        waiting_message="Back-off pulling image",
    )
    decision = step(view, around(view, at(60), pods={1: stuck}))
    assert decision.actions == [DeletePod(naming.pod_name(JOB, 1))]
    status = decision.status
    assert status.phase == "BackingOff"
    assert status.failures == 1
    assert status.last_failure.reason == "ImagePullBackOff"
    assert "Back-off pulling image" in status.last_failure.message
    assert status.history[-1].finished_at == at(60)
    assert status.next_attempt_at == at(61)


def test_start_timeout_not_yet():
    """Before the start timeout the stuck pod is left alone."""
    view = running_job(startTimeoutSeconds=60)
    stuck = pod(1, "Pending", created_at=at(0), waiting_reason="ImagePullBackOff")
    decision = step(view, around(view, at(59), pods={1: stuck}))
    assert decision.actions == []
    assert decision.wake_at == at(60)


# ---------------------------------------------------------------- restart safety


def test_adopts_a_pod_newer_than_status_attempts():
    """A pod created before a crash but never recorded is adopted, never created twice."""
    view = job()
    view, _ = advance(view, around(view, at(0)))
    assert view.status.attempts == 0
    unrecorded = pod(1, "Running", created_at=at(1))
    decision = step(view, around(view, at(5), pods={1: unrecorded}, admit=True))
    assert not any(isinstance(a, CreatePod) for a in decision.actions)
    assert decision.status.phase == "Running"
    assert decision.status.attempts == 1
    assert decision.status.pod_name == unrecorded.name
    assert decision.status.history[-1].attempt == 1
    assert decision.status.history[-1].start_time == at(1)
    assert conditions.is_true(decision.status.conditions, "Admitted")  # kubectl wait works


def test_adopts_a_newer_attempt_while_backing_off():
    """A BackingOff job whose next pod exists already follows that pod instead of waiting."""
    view = running_job()
    view, _ = fail_attempt(view, 1, at(10))
    assert view.status.phase == "BackingOff"
    done = pod(2, "Succeeded", created_at=at(11), finished_at=at(12))
    old = pod(1, "Failed", created_at=at(0), finished_at=at(10), exit_code=1)
    decision = step(view, around(view, at(13), pods={1: old, 2: done}, admit=True))
    assert decision.actions == []
    assert decision.status.phase == "Succeeded"
    assert decision.status.attempts == 2
    assert decision.status.failures == 1


def test_finished_attempt_is_not_counted_twice():
    """Reconciling again with the same failed pod does not add a second failure."""
    view = running_job()
    failed = pod(1, "Failed", created_at=at(0), finished_at=at(10), exit_code=1)
    view, first = advance(view, around(view, at(10), pods={1: failed}))
    second = step(view, around(view, at(10), pods={1: failed}))
    assert second.status.failures == first.status.failures == 1
    assert second.events == []


# ---------------------------------------------------------------- suspend


def test_suspend_and_resume():
    """Suspended: not admitted, Suspended condition, one event; resuming emits Resumed."""
    view = job(spec(suspend=True))
    view, first = advance(view, around(view, at(0), admit=True))
    assert first.actions == []
    assert first.wants_admission is False
    assert conditions.is_true(first.status.conditions, "Suspended")
    assert reasons(first) == ["Suspended"]

    view, again = advance(view, around(view, at(10), admit=True))
    assert again.events == []
    assert again.actions == []

    resumed_view = dataclasses.replace(view, spec=spec(suspend=False), generation=2)
    resumed_view, resumed = advance(resumed_view, around(resumed_view, at(20)))
    assert reasons(resumed) == ["Resumed"]
    assert resumed.status.phase == "Queued"
    assert resumed.wants_admission is True
    assert condition(resumed, "Suspended").status == "False"
    assert resumed.status.observed_generation == 2

    later = step(resumed_view, around(resumed_view, at(30)))
    assert later.events == []


def test_suspend_lets_the_running_attempt_finish():
    """Suspending a Running job does not stop or replace its running attempt."""
    view = running_job()
    view = dataclasses.replace(view, spec=spec(suspend=True))
    decision = step(view, around(view, at(5), pods={1: pod(1, "Running", created_at=at(0))}))
    assert decision.status.phase == "Running"
    assert decision.actions == []


# ---------------------------------------------------------------- delays


def test_delay_seconds():
    """delaySeconds keeps the job Delayed until created + delay, then it queues."""
    view = job(spec(delaySeconds=60), created_at=at(0))
    decision = step(view, around(view, at(10), admit=True))
    assert decision.status.phase == "Delayed"
    assert decision.wake_at == at(60)
    assert decision.status.next_attempt_at == at(60)
    assert decision.actions == []
    view = with_status(view, decision.status)
    assert step(view, around(view, at(60))).status.phase == "Queued"


def test_start_at():
    """startAt keeps the job Delayed until that time; then admission starts it."""
    view = job(spec(startAt="2026-03-01T13:00:00Z"))
    decision = step(view, around(view, at(0)))
    assert decision.status.phase == "Delayed"
    assert decision.wake_at == at(3600)
    view = with_status(view, decision.status)
    assert step(view, around(view, at(3600), admit=True)).actions == [CreatePod(1)]


def test_start_at_does_not_delay_retries():
    """A startAt in the future does not hold back the retries of a job that already ran."""
    view = job(spec(startAt="2026-03-01T13:00:00Z"))
    view = with_status(view, BackgroundJobStatus(phase="BackingOff", attempts=1, failures=1))
    decision = step(view, around(view, at(10)))
    assert decision.status.phase == "Queued"


# ---------------------------------------------------------------- dependencies


def deps_job():
    return job(spec(dependsOn=["charge", "reserve"]))


def test_waiting_for_dependencies_is_blocked():
    """Unfinished dependencies block the job, and the condition names them."""
    view = deps_job()
    decision = step(
        view, around(view, at(0), dependencies={"charge": "Running", "reserve": ""}, admit=True)
    )
    assert decision.status.phase == "Blocked"
    assert decision.actions == []
    assert decision.wants_admission is False
    blocked = condition(decision, "Blocked")
    assert (blocked.status, blocked.reason) == ("True", "WaitingForDependencies")
    assert "charge" in blocked.message
    assert "reserve" in blocked.message


def test_missing_dependency_is_blocked_not_found():
    """A dependency that does not exist blocks the job with 'not found'."""
    view = deps_job()
    decision = step(
        view, around(view, at(0), dependencies={"charge": None, "reserve": "Succeeded"})
    )
    assert decision.status.phase == "Blocked"
    message = condition(decision, "Blocked").message
    assert "charge" in message
    assert "not found" in message
    assert "reserve" not in message


def test_failed_dependency_fails_the_job():
    """A dependency that failed for good fails the job with DependencyFailed."""
    view = deps_job()
    decision = step(
        view, around(view, at(0), dependencies={"charge": "Failed", "reserve": "Running"})
    )
    assert decision.status.phase == "Failed"
    failed = condition(decision, "Failed")
    assert (failed.status, failed.reason) == ("True", "DependencyFailed")
    assert "charge" in failed.message
    assert decision.status.completion_time == at(0)


def test_failed_dependency_starts_the_ttl():
    """A job failed by its dependency is a finished job: its TTL runs from that moment."""
    view = job(spec(dependsOn=["charge"], ttlSecondsAfterFinished=30))
    decision = step(view, around(view, at(5), dependencies={"charge": "Failed"}))
    assert decision.status.phase == "Failed"
    assert decision.wake_at == at(35)
    view = job(spec(dependsOn=["charge"], ttlSecondsAfterFinished=0))
    decision = step(view, around(view, at(5), dependencies={"charge": "Failed"}))
    assert decision.actions == [DeleteJob()]


def test_dependency_cycle_is_blocked_with_a_warning():
    """A cycle in dependsOn blocks the job with DependencyCycle, naming the cycle, and warns."""
    view = deps_job()
    decision = step(
        view,
        around(view, at(0), dependencies={"charge": "Blocked"}, dependency_cycle=[JOB, "charge"]),
    )
    assert decision.status.phase == "Blocked"
    blocked = condition(decision, "Blocked")
    assert blocked.reason == "DependencyCycle"
    assert f"{JOB} → charge → {JOB}" in blocked.message
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "DependencyCycle")]


def test_dependency_cycle_found_after_waiting_still_warns():
    """A job first blocked waiting, then found in a cycle, still gets the cycle's Warning event."""
    view = deps_job()
    view, _ = advance(view, around(view, at(0), dependencies={"charge": None, "reserve": None}))
    _, decision = advance(
        view,
        around(
            view,
            at(1),
            dependencies={"charge": "Blocked", "reserve": "Succeeded"},
            dependency_cycle=[JOB, "charge"],
        ),
    )
    assert condition(decision, "Blocked").reason == "DependencyCycle"
    assert "DependencyCycle" in reasons(decision)


def test_dependencies_succeeded_unblock():
    """Once every dependency succeeded the job leaves Blocked and queues; Blocked turns False."""
    view = deps_job()
    view, _ = advance(view, around(view, at(0), dependencies={"charge": "Running"}))
    decision = step(
        view, around(view, at(5), dependencies={"charge": "Succeeded", "reserve": "Succeeded"})
    )
    assert decision.status.phase == "Queued"
    assert condition(decision, "Blocked").status == "False"


# ---------------------------------------------------------------- queue


def test_missing_queue_is_pending_with_a_condition_that_clears():
    """A missing queue: Pending, QueueNotFound naming it, one Warning; cleared once it exists."""
    view = job()
    view, first = advance(view, around(view, at(0), queue_exists=False))
    assert first.status.phase == "Pending"
    missing = condition(first, "QueueNotFound")
    assert missing.status == "True"
    assert QUEUE in missing.message
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "QueueNotFound")]
    assert first.wants_admission is False

    view, again = advance(view, around(view, at(10), queue_exists=False))
    assert again.events == []

    _, found = advance(view, around(view, at(20), queue_exists=True))
    assert found.status.phase == "Queued"
    assert condition(found, "QueueNotFound") is None


def test_job_without_queue_wants_admission_too():
    """A job that names no queue still goes through admission (the unlimited no-queue key)."""
    view = job(spec(queue=None))
    decision = step(view, around(view, at(0)))
    assert decision.status.phase == "Queued"
    assert decision.wants_admission is True


# ---------------------------------------------------------------- invalid spec


def test_invalid_spec_condition_and_one_warning():
    """A spec the operator cannot act on gets InvalidSpec and a Warning event, once."""
    view = job()
    view, first = advance(view, around(view, at(0), effective=None, invalid="bad template"))
    assert first.status.phase == "Pending"
    invalid = condition(first, "InvalidSpec")
    assert (invalid.status, invalid.message) == ("True", "bad template")
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "InvalidSpec")]
    assert first.actions == []
    assert first.wants_admission is False

    _, again = advance(view, around(view, at(10), effective=None, invalid="bad template"))
    assert again.events == []
    assert again.status == first.status


def test_fixed_spec_drops_invalid_spec():
    """When the spec becomes valid the InvalidSpec condition goes away and the job queues."""
    view = job()
    view, _ = advance(view, around(view, at(0), effective=None, invalid="bad"))
    decision = step(view, around(view, at(1)))
    assert condition(decision, "InvalidSpec") is None
    assert decision.status.phase == "Queued"


# ---------------------------------------------------------------- replay


def failed_job():
    view = running_job(retry={"maxAttempts": 1})
    view, decision = fail_attempt(view, 1, at(10))
    assert decision.status.phase == "Failed"
    return view


def test_replay_sends_a_failed_job_through_again_once():
    """A new replay value re-runs a Failed job, failures reset and history kept, once."""
    view = failed_job()
    history = list(view.status.history)
    view = dataclasses.replace(view, annotations={naming.ANNOTATION_REPLAY: "r1"})
    view, replayed = advance(view, around(view, at(100)))
    status = replayed.status
    assert status.phase == "Queued"
    assert status.failures == 0
    assert status.disruptions == 0
    assert status.completion_time is None
    assert status.replayed == "r1"
    assert status.history == history
    assert condition(replayed, "Failed") is None
    assert reasons(replayed) == ["Replayed"]

    view, started = advance(view, around(view, at(101), admit=True))
    assert started.actions == [CreatePod(2)]  # a new pod name: attempts keep counting

    view, _ = fail_attempt(view, 2, at(110))
    assert view.status.phase == "Failed"
    same = step(view, around(view, at(200)))
    assert same.status.phase == "Failed"
    assert same.events == []
    again = dataclasses.replace(view, annotations={naming.ANNOTATION_REPLAY: "r2"})
    assert step(again, around(again, at(200))).status.phase == "Queued"


def test_replay_on_a_job_that_did_not_fail_is_consumed_and_ignored():
    """The replay annotation on a Succeeded job changes nothing but the replayed marker."""
    view = running_job()
    view, _ = advance(view, around(view, at(5), pods={1: pod(1, "Succeeded", finished_at=at(5))}))
    view = dataclasses.replace(view, annotations={naming.ANNOTATION_REPLAY: "x"})
    decision = step(view, around(view, at(6)))
    assert decision.status.phase == "Succeeded"
    assert decision.status.replayed == "x"
    assert decision.events == []


# ---------------------------------------------------------------- TTL


def test_ttl_deletes_the_job_when_expired_and_wakes_otherwise():
    """A finished job with ttlSecondsAfterFinished wakes at completion + ttl and is deleted then."""
    view = running_job(ttlSecondsAfterFinished=60)
    done = pod(1, "Succeeded", created_at=at(0), finished_at=at(10))
    view, decision = advance(view, around(view, at(11), pods={1: done}))
    assert decision.wake_at == at(70)
    assert decision.actions == []
    assert step(view, around(view, at(69), pods={1: done})).actions == []
    assert step(view, around(view, at(70), pods={1: done})).actions == [DeleteJob()]


def test_no_ttl_never_deletes():
    """Without a TTL a finished job is kept forever and nothing is scheduled."""
    view = failed_job()
    decision = step(view, around(view, at(10**8)))
    assert decision.actions == []
    assert decision.wake_at is None


def test_ttl_from_queue_defaults():
    """The queue's default ttlSecondsAfterFinished applies when the job sets none."""
    view = failed_job()
    eff = effective(view.spec, JobDefaults(ttl_seconds_after_finished=5))
    assert step(
        view, around(view, at(10) + datetime.timedelta(seconds=5), effective=eff)
    ).actions == [DeleteJob()]


# ---------------------------------------------------------------- bounds and summary


def test_history_is_bounded():
    """However many attempts run, history keeps the latest HISTORY_LIMIT, oldest first."""
    view = running_job(retry={"maxDisruptions": 1000})
    total = HISTORY_LIMIT + 7
    for n in range(1, total + 1):
        lost = pod(n, "Failed", created_at=at(n), reason="Evicted")
        view, _ = advance(view, around(view, at(n), pods={n: lost}))
        view, _ = advance(view, around(view, at(n), admit=True))
    history = view.status.history
    assert len(history) == HISTORY_LIMIT
    assert [h.attempt for h in history] == list(range(total + 2 - HISTORY_LIMIT, total + 2))
    BackgroundJobStatus.model_validate(view.status.model_dump(by_alias=True))


@pytest.mark.parametrize(
    ("status", "summary"),
    [
        ({"phase": "Queued"}, "0/5"),
        (
            {
                "phase": "BackingOff",
                "attempts": 2,
                "failures": 2,
                "nextAttemptAt": "2030-01-01T00:00:00Z",
            },
            "2/5",
        ),
        ({"phase": "Queued", "attempts": 3, "failures": 1, "disruptions": 2}, "1/5"),
        ({"phase": "Failed", "attempts": 5, "failures": 5}, "5/5"),
    ],
)
def test_attempts_summary(status, summary):
    """attemptsSummary counts failures (plus the running or succeeded attempt) over maxAttempts."""
    view = job(status=status)
    assert step(view, around(view, at(0))).status.attempts_summary == summary


def test_attempts_summary_while_running_second_attempt():
    """Running attempt 2 after one failure shows 2/5."""
    view = running_job()
    view, _ = fail_attempt(view, 1, at(10))
    view, decision = advance(view, around(view, at(20), admit=True))
    assert decision.status.attempts_summary == "2/5"


def test_priority_orders_queue_order_key():
    """A Queued job's queueOrder sorts higher-priority jobs first."""
    high = job(spec(priority=10), name="b")
    low = job(spec(priority=1), name="a")
    key_high = step(high, around(high, at(0))).status.queue_order
    key_low = step(low, around(low, at(0))).status.queue_order
    assert key_high < key_low


def test_step_never_mutates_its_input():
    """step is pure: the job view it was given is unchanged."""
    view = running_job()
    before = view.status.model_copy(deep=True)
    step(view, around(view, at(10), pods={}))
    assert view.status == before


# ---------------------------------------------------------------- idempotence, as a property


@dataclasses.dataclass
class World:
    """A job, its pods and its surroundings; carries out the decided actions like the runtime."""

    view: decisions.JobView
    now: datetime.datetime
    pods: dict[int, object] = dataclasses.field(default_factory=dict)
    admit: bool = False
    queue_exists: bool = True
    deps: dict[str, str | None] = dataclasses.field(default_factory=dict)
    deleted: bool = False
    ever: set[int] = dataclasses.field(default_factory=set)
    """Every attempt that ever had a pod: none gets a second one."""

    def surroundings(self) -> decisions.Surroundings:
        return around(
            self.view,
            self.now,
            pods=self.pods,
            admit=self.admit,
            queue_exists=self.queue_exists,
            dependencies=dict(self.deps),
        )

    def carry_out(self, decision: decisions.Decision) -> None:
        self.view = with_status(self.view, decision.status)
        for action in decision.actions:
            if isinstance(action, CreatePod):
                assert action.attempt not in self.ever, "a second pod for one attempt"
                self.ever.add(action.attempt)
                assert action.attempt == decision.status.attempts
                self.pods[action.attempt] = pod(action.attempt, "Pending", created_at=self.now)
            elif isinstance(action, DeletePod):
                self.pods = {n: p for n, p in self.pods.items() if p.name != action.name}
            else:
                assert isinstance(action, DeleteJob)
                self.deleted = True

    def move(self, kind: str, value) -> None:
        current = self.pods.get(self.view.status.attempts)
        if kind == "wait":
            self.now += datetime.timedelta(seconds=value)
        elif kind == "admit":
            self.admit = value
        elif kind == "queue":
            self.queue_exists = value
        elif kind == "dep" and self.view.spec.depends_on:
            self.deps = {"dep": value}
        elif kind == "suspend" and value != self.view.spec.suspend:
            new_spec = self.view.spec.model_copy(update={"suspend": value})
            generation = (self.view.generation or 0) + 1
            self.view = dataclasses.replace(self.view, spec=new_spec, generation=generation)
        elif kind == "replay":
            self.view = dataclasses.replace(
                self.view, annotations={naming.ANNOTATION_REPLAY: value}
            )
        elif kind == "orphan" and self.view.status.phase not in ("Running", "Succeeded", "Failed"):
            # The operator created the next pod, then crashed before recording it.
            n = self.view.status.attempts + 1
            if n not in self.ever:
                self.ever.add(n)
                self.pods[n] = pod(n, "Pending", created_at=self.now)
        elif kind == "pod" and current is not None and not current.terminal:
            n = current.attempt
            end = {"finished_at": self.now}
            changes = {
                "start": {"phase": "Running"},
                "succeed": {"phase": "Succeeded", "exit_code": 0, **end},
                "fail": {"phase": "Failed", "exit_code": 1, "container_reason": "Error", **end},
                "give-up": {"phase": "Failed", "exit_code": 2, "container_reason": "Error", **end},
                "oom": {
                    "phase": "Failed",
                    "exit_code": 137,
                    "container_reason": "OOMKilled",
                    **end,
                },
                "evict": {"phase": "Failed", "reason": "Evicted", **end},
                "stuck": {"waiting_reason": "ImagePullBackOff"},
            }
            if value == "vanish":
                del self.pods[n]
            else:
                self.pods[n] = dataclasses.replace(current, **changes[value])


POD_MOVES = ["start", "succeed", "fail", "give-up", "oom", "evict", "stuck", "vanish"]
MOVES = [
    *[("wait", seconds) for seconds in (0, 0.5, 1, 3, 30, 61, 400, 4000)],
    *[("admit", True)] * 4,
    ("admit", False),
    ("queue", True),
    ("queue", False),
    *[("dep", phase) for phase in (None, "", "Running", "Failed")],
    *[("dep", "Succeeded")] * 3,
    ("suspend", True),
    *[("suspend", False)] * 2,
    ("replay", "r1"),
    ("replay", "r2"),
    ("orphan", None),
    *[("pod", kind) for kind in POD_MOVES] * 2,
]
moves = st.sampled_from(MOVES)  # repeated entries weigh the moves that make progress


@st.composite
def job_specs(draw: st.DrawFn):
    fields: dict = {
        "retry": {
            "maxAttempts": draw(st.integers(1, 4)),
            "maxDisruptions": draw(st.integers(0, 3)),
            "nonRetryableExitCodes": [2],
            "backoff": {"initialDelaySeconds": draw(st.sampled_from([0, 1, 5]))},
        },
        "startTimeoutSeconds": 60,
        "suspend": draw(st.sampled_from([False, False, False, True])),
    }
    if draw(st.booleans()):
        fields["dependsOn"] = ["dep"]
    delay = draw(st.sampled_from([None, 0, 10]))
    if delay is not None:
        fields["delaySeconds"] = delay
    ttl = draw(st.sampled_from([None, 0, 100]))
    if ttl is not None:
        fields["ttlSecondsAfterFinished"] = ttl
    return spec(**fields)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(job_specs(), st.booleans(), st.lists(moves, max_size=40))
def test_reconcile_is_idempotent_and_quiet(job_spec, admit, script):
    """On any history, step is idempotent (same status, no events) and keeps its invariants."""
    world = World(
        view=job(job_spec),
        now=T0,
        admit=admit,
        deps={"dep": "Running"} if job_spec.depends_on else {},
    )
    eff = effective(job_spec)
    for kind, value in [("wait", 0), *script]:
        world.move(kind, value)
        before = world.view.status
        first = step(world.view, world.surroundings())
        if first.status == before:
            assert first.events == [], "an event without a change"
        status = first.status
        assert len(status.history) <= HISTORY_LIMIT
        assert status.failures <= eff.max_attempts
        assert status.disruptions <= eff.max_disruptions + 1
        counted = status.failures + (1 if status.phase in ("Running", "Succeeded") else 0)
        assert status.attempts_summary == f"{counted}/{eff.max_attempts}"
        if status.phase in ("Succeeded", "Failed"):
            assert status.completion_time is not None
            assert first.wants_admission is False
            assert conditions.is_true(status.conditions, status.phase)
        if before.phase == "Succeeded":
            assert status.phase == "Succeeded", "success is final"
        if status.phase == "Running":
            assert status.pod_name == naming.pod_name(JOB, status.attempts)
            assert conditions.is_true(status.conditions, "Admitted")
        if status.phase == "BackingOff":
            assert status.next_attempt_at is not None
        assert (status.queue_order is not None) == (status.phase == "Queued")
        attempts = [record.attempt for record in status.history]
        assert attempts == sorted(set(attempts))
        assert not attempts or attempts[-1] <= status.attempts
        if first.wake_at is not None:
            assert first.wake_at > world.now
        if first.wants_admission:
            assert status.phase == "Queued"
        world.carry_out(first)
        if world.deleted:
            return
        second = step(world.view, world.surroundings())
        assert second.status == first.status
        assert second.events == []
        assert second.actions == []
        assert second.wants_admission == first.wants_admission
        if not first.actions:  # a created pod brings its own start deadline
            assert second.wake_at == first.wake_at
