"""recurring.step and recurring.render_run: a recurring job's runs, driven with explicit times.

The job is `report`, created at `T0` with `every: 10s` unless a test says otherwise, so
its runs are due at `at(10)`, `at(20)`, ... Each test hands `step` the runs as the
runtime would have seen them and checks what it decides: which runs to create and
delete, which events to post, and the status to write.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

import pytest

from conveyor.api.v1alpha1 import API_VERSION, BackgroundJobSpec, BackgroundJobStatus
from conveyor.core import conditions, naming, recurring
from conveyor.core.decisions import JobView
from conveyor.core.recurring import RECURRING_ONLY_FIELDS, RecurringDecision, Run, step
from tests.unit.factories import NAMESPACE, QUEUE, T0, at, job, spec, with_status

NAME = "report"


def recurring_job(
    status: BackgroundJobStatus | dict[str, Any] | None = None, **fields: Any
) -> JobView:
    """`report`, created at T0, with `every: 10s` unless `fields` give a schedule."""
    if "schedule" not in fields:
        fields.setdefault("every", "10s")
    return job(spec(**fields), status, name=NAME, created_at=T0)


def run_name(seconds: float) -> str:
    return naming.run_name(NAME, at(seconds))


def run(seconds: float, phase: str | None = None) -> Run:
    """The run scheduled at `at(seconds)`, in `phase` (None: created, no status yet)."""
    return Run(name=run_name(seconds), scheduled_at=at(seconds), phase=phase)


def reasons(decision: RecurringDecision) -> list[str]:
    return [event.reason for event in decision.events]


def messages(decision: RecurringDecision, reason: str) -> list[str]:
    return [event.message for event in decision.events if event.reason == reason]


def advance(
    view: JobView, runs: Sequence[Run], now: datetime.datetime
) -> tuple[JobView, list[Run], RecurringDecision]:
    """One reconcile, carried out: the status written, runs deleted, new runs created."""
    decision = step(view, runs, now)
    kept = [r for r in runs if r.name not in decision.delete]
    created = [Run(naming.run_name(NAME, t), t, None) for t in decision.create]
    return with_status(view, decision.status), kept + created, decision


# ---------------------------------------------------------------- on time


def test_nothing_is_due_before_the_first_run() -> None:
    """Before its first time a recurring job creates nothing, is Scheduled (as between runs:
    not Pending, which would read as stuck) and wakes at that time."""
    decision = step(recurring_job(), [], at(5))
    assert decision.create == [] and decision.delete == [] and decision.events == []
    assert decision.status.phase == "Scheduled"
    assert decision.status.active_count == 0
    assert decision.status.next_schedule_time == at(10)
    assert decision.wake_at == at(10)


def test_a_due_run_is_created_with_its_deterministic_name() -> None:
    """At its time the run is created, named `<job>-<unix seconds>`, and recorded in status."""
    decision = step(recurring_job(), [], at(10.3))
    assert decision.create == [at(10)]
    assert messages(decision, "RunCreated") == [f"created {NAME}-{int(at(10).timestamp())}"]
    assert decision.status.phase == "Running"
    assert decision.status.active == [run_name(10)]
    assert decision.status.last_schedule_time == at(10)
    assert decision.status.next_schedule_time == at(20)
    assert decision.wake_at == at(20)


# ---------------------------------------------------------------- concurrencyPolicy


def test_allow_creates_a_due_run_while_another_is_active() -> None:
    """concurrencyPolicy Allow: the run at 20 is created although the run at 10 still runs."""
    view = recurring_job({"lastScheduleTime": at(10)}, concurrencyPolicy="Allow")
    decision = step(view, [run(10, "Running")], at(20))
    assert decision.create == [at(20)]
    assert decision.delete == []
    assert reasons(decision) == ["RunCreated"]
    assert decision.status.active == [run_name(10), run_name(20)]


def test_forbid_skips_a_due_run_while_another_is_active() -> None:
    """concurrencyPolicy Forbid: the run at 20 is not created, a RunSkipped event names the
    active run, and lastScheduleTime moves to 20 so that run is never reconsidered, not even
    once the active run has finished."""
    view = recurring_job({"lastScheduleTime": at(10)}, concurrencyPolicy="Forbid")
    view, runs, decision = advance(view, [run(10, "Running")], at(20))
    assert decision.create == [] and decision.delete == []
    assert reasons(decision) == ["RunSkipped"]
    (message,) = messages(decision, "RunSkipped")
    assert run_name(10) in message and "Forbid" in message
    assert decision.status.last_schedule_time == at(20)
    assert decision.status.next_schedule_time == at(30)
    assert decision.status.active == [run_name(10)]

    runs = [run(10, "Succeeded")]
    view, runs, decision = advance(view, runs, at(22))
    assert decision.create == [] and decision.events == []
    assert decision.status.active == []

    view, runs, decision = advance(view, runs, at(30))
    assert decision.create == [at(30)]


def test_forbid_creates_a_due_run_when_nothing_is_active() -> None:
    """concurrencyPolicy Forbid lets a run through when the previous one has finished."""
    view = recurring_job({"lastScheduleTime": at(10)}, concurrencyPolicy="Forbid")
    decision = step(view, [run(10, "Failed")], at(20))
    assert decision.create == [at(20)]
    assert reasons(decision) == ["RunCreated"]


def test_replace_deletes_the_active_runs_and_creates_the_new_one() -> None:
    """concurrencyPolicy Replace: every active run is deleted, the due run created, and a
    RunReplaced event names what was deleted; finished runs are left alone."""
    view = recurring_job({"lastScheduleTime": at(30)}, concurrencyPolicy="Replace")
    runs = [run(10, "Succeeded"), run(20, "Running"), run(30, "Queued")]
    decision = step(view, runs, at(40))
    assert decision.create == [at(40)]
    assert decision.delete == sorted([run_name(20), run_name(30)])
    assert reasons(decision) == ["RunReplaced", "RunCreated"]
    (message,) = messages(decision, "RunReplaced")
    assert run_name(20) in message and run_name(30) in message
    assert decision.status.active == [run_name(40)]


def test_replace_with_nothing_active_deletes_nothing() -> None:
    """concurrencyPolicy Replace does not delete finished runs nor post RunReplaced."""
    view = recurring_job({"lastScheduleTime": at(10)}, concurrencyPolicy="Replace")
    decision = step(view, [run(10, "Succeeded")], at(20))
    assert decision.create == [at(20)]
    assert decision.delete == []
    assert reasons(decision) == ["RunCreated"]


# ---------------------------------------------------------------- history


def test_history_limits_keep_the_newest_finished_runs_and_never_prune_active_ones() -> None:
    """successfulRunsHistoryLimit 2 and failedRunsHistoryLimit 1: the two newest succeeded
    runs and the newest failed one stay, the older ones are deleted, and the active runs stay
    whatever their age (the oldest run of all is still running)."""
    view = recurring_job(
        {"lastScheduleTime": at(100)},
        successfulRunsHistoryLimit=2,
        failedRunsHistoryLimit=1,
    )
    runs = [
        run(10, "Running"),
        run(20, "Succeeded"),
        run(30, "Failed"),
        run(40, "Succeeded"),
        run(50, "Succeeded"),
        run(60, "Failed"),
        run(70, "Succeeded"),
        run(80, "Failed"),
        run(90, "Succeeded"),
        run(100, None),
    ]
    decision = step(view, runs, at(105))
    assert decision.create == []
    assert decision.delete == sorted(run_name(s) for s in (20, 40, 50, 30, 60))
    assert decision.status.active == [run_name(10), run_name(100)]


@pytest.mark.parametrize(
    ("phase", "limit"),
    [("Succeeded", "successfulRunsHistoryLimit"), ("Failed", "failedRunsHistoryLimit")],
)
def test_a_history_limit_of_zero_prunes_every_finished_run_of_its_phase(
    phase: str, limit: str
) -> None:
    """A limit of 0 keeps no run of its phase; the other phase's (default) limit still holds."""
    view = recurring_job({"lastScheduleTime": at(30)}, **{limit: 0})
    other = "Failed" if phase == "Succeeded" else "Succeeded"
    runs = [run(10, phase), run(20, phase), run(30, other)]
    decision = step(view, runs, at(35))
    assert decision.delete == sorted([run_name(10), run_name(20)])


def test_pruning_orders_by_scheduled_time_not_by_the_order_runs_are_listed() -> None:
    """The runs come in any order (an index has none); the newest by scheduled time stay."""
    view = recurring_job({"lastScheduleTime": at(40)}, successfulRunsHistoryLimit=2)
    runs = [run(30, "Succeeded"), run(10, "Succeeded"), run(40, "Succeeded"), run(20, "Succeeded")]
    decision = step(view, runs, at(45))
    assert decision.delete == sorted([run_name(10), run_name(20)])


# ---------------------------------------------------------------- suspend


def test_suspend_creates_nothing_and_says_so_once_then_resume_says_so() -> None:
    """suspend: no run is created although one is due, a Suspended event and condition
    appear (the event once, not on every reconcile), nothing wakes the job; suspend false
    again: a Resumed event, the condition is removed, and the due run is created."""
    view = recurring_job({"lastScheduleTime": at(10)}, suspend=True)
    view, runs, decision = advance(view, [run(10, "Succeeded")], at(25))
    assert decision.create == []
    assert reasons(decision) == ["Suspended"]
    assert conditions.is_true(decision.status.conditions, "Suspended")
    assert decision.wake_at is None

    view, runs, decision = advance(view, runs, at(26))
    assert decision.create == [] and decision.events == []

    view = dataclasses.replace(view, spec=spec(every="10s", suspend=False), generation=2)
    decision = step(view, runs, at(30.5))
    assert reasons(decision)[0] == "Resumed"
    assert conditions.find(decision.status.conditions, "Suspended") is None
    assert decision.create == [at(30)]
    assert decision.wake_at == at(40)


# ---------------------------------------------------------------- invalid schedules


@pytest.mark.parametrize(
    ("fields", "word"),
    [
        ({"schedule": "61 * * * *"}, "61"),
        ({"schedule": "0 9 * * *", "timeZone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"schedule": "0 0 30 2 *"}, "never runs"),
    ],
)
def test_an_invalid_schedule_is_an_invalid_spec_condition_with_one_event(
    fields: dict[str, Any], word: str
) -> None:
    """A schedule cron or the zone database refuses: InvalidSpec=True naming the culprit, one
    Warning event, nothing created; the next reconcile posts no second event and keeps the
    condition's transition time; fixing the schedule removes the condition."""
    view = recurring_job(**fields)
    view, runs, decision = advance(view, [], at(3600))
    assert decision.create == [] and decision.delete == []
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "InvalidSpec")]
    invalid = conditions.find(decision.status.conditions, "InvalidSpec")
    assert invalid is not None and invalid.status == "True"
    assert invalid.reason == "InvalidSchedule" and word in invalid.message
    assert invalid.last_transition_time == at(3600)
    assert decision.status.phase == "Pending"
    assert decision.wake_at is None

    view, runs, decision = advance(view, runs, at(3700))
    assert decision.events == []
    again = conditions.find(decision.status.conditions, "InvalidSpec")
    assert again is not None and again.last_transition_time == at(3600)

    fixed = dataclasses.replace(view, spec=spec(every="10s"), generation=2)
    decision = step(fixed, runs, at(3705))
    assert conditions.find(decision.status.conditions, "InvalidSpec") is None
    assert decision.create == [at(3700)]


# ---------------------------------------------------------------- missed runs


def outage(**fields: Any) -> RecurringDecision:
    """The run at 10 succeeded, then the operator was away until 45: 20, 30 and 40 missed."""
    view = recurring_job({"lastScheduleTime": at(10)}, **fields)
    return step(view, [run(10, "Succeeded")], at(45))


def test_run_all_creates_every_missed_run_oldest_first() -> None:
    """missedRunsPolicy RunAll: the runs of 20, 30 and 40, each under its own name."""
    decision = outage(missedRunsPolicy="RunAll", maxMissedRuns=10)
    assert decision.create == [at(20), at(30), at(40)]
    assert messages(decision, "RunCreated") == [f"created {run_name(s)}" for s in (20, 30, 40)]
    assert decision.status.last_schedule_time == at(40)
    assert decision.status.next_schedule_time == at(50)
    assert decision.status.active == [run_name(s) for s in (20, 30, 40)]


def test_run_all_creates_at_most_max_missed_runs_the_newest() -> None:
    """missedRunsPolicy RunAll with maxMissedRuns 2: 30 and 40; 20 is skipped, with a reason."""
    decision = outage(missedRunsPolicy="RunAll", maxMissedRuns=2)
    assert decision.create == [at(30), at(40)]
    (message,) = messages(decision, "MissedRuns")
    assert "1 run" in message and "maxMissedRuns 2" in message


def test_run_latest_creates_only_the_newest_missed_run() -> None:
    """missedRunsPolicy RunLatest: only 40; 20 and 30 are skipped, with a MissedRuns warning."""
    decision = outage(missedRunsPolicy="RunLatest")
    assert decision.create == [at(40)]
    assert messages(decision, "RunCreated") == [f"created {run_name(40)}"]
    (message,) = messages(decision, "MissedRuns")
    assert "2 runs" in message and "RunLatest" in message
    assert decision.status.last_schedule_time == at(40)


def test_skip_creates_no_missed_run_and_does_not_reconsider_them() -> None:
    """missedRunsPolicy Skip: none of 20, 30, 40 (all more than the grace late);
    lastScheduleTime moves to 40 so a later reconcile skips them silently; the next on-time
    run is created."""
    view = recurring_job({"lastScheduleTime": at(10)}, missedRunsPolicy="Skip")
    view, runs, decision = advance(view, [run(10, "Succeeded")], at(45))
    assert decision.create == []
    assert reasons(decision) == ["MissedRuns"]
    assert "3 missed runs" in messages(decision, "MissedRuns")[0]
    assert decision.status.last_schedule_time == at(40)
    assert decision.status.next_schedule_time == at(50)
    assert decision.wake_at == at(50)

    view, runs, decision = advance(view, runs, at(46))
    assert decision.create == [] and decision.events == []

    view, runs, decision = advance(view, runs, at(50.5))
    assert decision.create == [at(50)]


def test_skip_still_creates_the_run_that_is_due_now() -> None:
    """missedRunsPolicy Skip skips missed runs, not the current one: at 41 (within the grace)
    the run of 40 is created and the older two are skipped."""
    view = recurring_job({"lastScheduleTime": at(10)}, missedRunsPolicy="Skip")
    decision = step(view, [run(10, "Succeeded")], at(40 + recurring.ON_TIME_GRACE_SECONDS))
    assert decision.create == [at(40)]
    assert "2 missed runs" in messages(decision, "MissedRuns")[0]


def test_a_run_created_just_before_a_restart_but_never_recorded_counts() -> None:
    """The operator created the run of 20 and died before writing lastScheduleTime (still 10):
    the run is taken as the latest, not created again, and lastScheduleTime catches up. With
    RunAll an ignored run would be created a second time (a RunCreated event), and with
    Forbid it would not block the run of 30."""
    view = recurring_job({"lastScheduleTime": at(10)}, missedRunsPolicy="RunAll")
    decision = step(view, [run(10, "Succeeded"), run(20, None)], at(25))
    assert decision.create == [] and decision.events == []
    assert decision.status.last_schedule_time == at(20)
    assert decision.status.active == [run_name(20)]

    view = recurring_job({"lastScheduleTime": at(10)}, concurrencyPolicy="Forbid")
    decision = step(view, [run(10, "Succeeded"), run(20, "Running")], at(30))
    assert decision.create == []
    assert reasons(decision) == ["RunSkipped"]


def test_the_first_run_after_an_outage_counts_from_the_creation() -> None:
    """A job that never ran and whose operator was away: with no lastScheduleTime the missed
    runs are those after its creation (10, 20), RunAll creates both, never one before T0."""
    view = recurring_job(missedRunsPolicy="RunAll")
    decision = step(view, [], at(25))
    assert decision.create == [at(10), at(20)]


# ---------------------------------------------------------------- the child object


def test_render_run_keeps_what_a_run_needs_and_drops_what_makes_it_recur() -> None:
    """The child: named after its time, in the job's namespace, labelled with the parent,
    annotated with the scheduled time, owned by the parent (controller, blocking deletion);
    its spec is the parent's minus every recurring-only field, and a valid one-off job."""
    raw_spec: dict[str, Any] = {
        "queue": QUEUE,
        "priority": 7,
        "retry": {"maxAttempts": 2},
        "activeDeadlineSeconds": 60,
        "dependsOn": ["warmup"],
        "template": {"spec": {"containers": [{"name": "worker", "image": "busybox:1.36"}]}},
        "every": "10s",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 30,
        "missedRunsPolicy": "RunAll",
        "maxMissedRuns": 3,
        "successfulRunsHistoryLimit": 4,
        "failedRunsHistoryLimit": 2,
        "suspend": False,
    }
    snapshot = {**raw_spec}
    view = recurring_job()
    body = recurring.render_run(view, uid="uid-123", raw_spec=raw_spec, scheduled_at=at(20))
    assert raw_spec == snapshot, "render_run changed its argument"
    assert body["apiVersion"] == API_VERSION and body["kind"] == "BackgroundJob"
    meta = body["metadata"]
    assert meta["name"] == f"{NAME}-{int(at(20).timestamp())}"
    assert meta["namespace"] == NAMESPACE
    assert meta["labels"] == {naming.LABEL_PARENT: NAME}
    assert meta["annotations"] == {naming.ANNOTATION_SCHEDULED_AT: "2026-03-01T12:00:20.000Z"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": API_VERSION,
            "kind": "BackgroundJob",
            "name": NAME,
            "uid": "uid-123",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert body["spec"] == {
        "queue": QUEUE,
        "priority": 7,
        "retry": {"maxAttempts": 2},
        "activeDeadlineSeconds": 60,
        "dependsOn": ["warmup"],
        "template": raw_spec["template"],
    }
    assert not BackgroundJobSpec.model_validate(body["spec"]).is_recurring


def test_recurring_only_fields_are_real_spec_fields() -> None:
    """Every name render_run drops is a field of the spec as written (camelCase), so a typo
    cannot leave a recurring field in the runs; and schedule and timeZone are dropped too."""
    wire_names = {f.alias or name for name, f in BackgroundJobSpec.model_fields.items()}
    assert wire_names >= RECURRING_ONLY_FIELDS
    body = recurring.render_run(
        recurring_job(schedule="*/5 * * * *"),
        uid="u",
        raw_spec={"schedule": "*/5 * * * *", "timeZone": "Europe/Berlin", "queue": QUEUE},
        scheduled_at=at(300),
    )
    assert body["spec"] == {"queue": QUEUE}
