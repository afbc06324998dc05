"""Actions taken once from annotations: promote, cancel (lifecycle.step) and run-now
(recurring.step). A new value acts (or is ignored with an event saying why) and is recorded in
status; a value already recorded changes nothing."""

from __future__ import annotations

import dataclasses
import datetime

from conveyor.core import actions, conditions, naming, recurring
from conveyor.core.decisions import CreatePod, DeletePod
from conveyor.core.lifecycle import step
from tests.unit.factories import T0, advance, around, at, job, pod, reasons, spec, with_status


def asking(view, annotation, value):
    return dataclasses.replace(view, annotations={**view.annotations, annotation: value})


def condition(decision, type_):
    return conditions.find(decision.status.conditions, type_)


def running(**fields):
    view = job(spec(**fields))
    view, _ = advance(view, around(view, at(0)))
    view, decision = advance(view, around(view, at(0), admit=True))
    assert decision.actions == [CreatePod(1)]
    return view


def backing_off():
    """Attempt 1 failed at 10 s; the next may start at 70 s (fixed 60 s backoff)."""
    view = running(retry={"backoff": {"strategy": "Fixed", "initialDelaySeconds": 60}})
    failed = pod(1, "Failed", finished_at=at(10), exit_code=1, container_reason="Error")
    view, decision = advance(view, around(view, at(10), pods={1: failed}))
    assert decision.status.phase == "BackingOff"
    assert decision.status.next_attempt_at == at(70)
    return view


# ---------------------------------------------------------------- promote


def test_promote_makes_a_backing_off_job_ready_now_and_its_queue_still_decides():
    """Promoted while backing off: it waits for its queue at once, not for its backoff."""
    view = asking(backing_off(), naming.ANNOTATION_PROMOTE, "p1")
    view, decision = advance(view, around(view, at(20)))
    assert decision.status.phase == "Queued"
    assert decision.wants_admission
    assert decision.actions == []  # not admitted: the queue's limits still apply
    assert decision.status.promoted == "p1"
    assert reasons(decision) == ["Promoted"]
    assert "instead of at" in decision.events[0].message
    _, started = advance(view, around(view, at(21), admit=True))
    assert started.actions == [CreatePod(2)]


def test_promote_waives_a_start_delay_for_good():
    """A Delayed job promoted goes to its queue; later looks do not delay it again."""
    view = job(spec(delaySeconds=3600))
    view, decision = advance(view, around(view, at(1)))
    assert decision.status.phase == "Delayed"
    view = asking(view, naming.ANNOTATION_PROMOTE, "p1")
    view, decision = advance(view, around(view, at(2)))
    assert decision.status.phase == "Queued"
    assert condition(decision, "Promoted").status == "True"
    view, decision = advance(view, around(view, at(3)))
    assert decision.status.phase == "Queued"
    assert decision.events == []
    _, started = advance(view, around(view, at(4), admit=True))
    assert started.actions == [CreatePod(1)]


def test_promote_of_a_job_that_neither_waits_for_time_is_ignored_with_an_event():
    """A Running job cannot be promoted: the value is taken, an event says why."""
    view = asking(running(), naming.ANNOTATION_PROMOTE, "p1")
    view, decision = advance(view, around(view, at(5), pods={1: pod(1, "Running")}))
    assert decision.status.phase == "Running"
    assert decision.status.promoted == "p1"
    assert reasons(decision) == ["PromoteIgnored"]
    again = step(view, around(view, at(6), pods={1: pod(1, "Running")}))
    assert again.events == []


def test_a_promote_value_already_taken_is_ignored_a_new_one_acts():
    """The same value twice is one promotion; a new value is a new one."""
    view = asking(backing_off(), naming.ANNOTATION_PROMOTE, "p1")
    view = with_status(view, view.status.model_copy(update={"promoted": "p1"}))
    decision = step(view, around(view, at(20)))
    assert decision.status.phase == "BackingOff"
    assert decision.events == []
    view = asking(view, naming.ANNOTATION_PROMOTE, "p2")
    assert step(view, around(view, at(20))).status.phase == "Queued"


# ---------------------------------------------------------------- cancel


def test_cancel_of_a_running_job_deletes_its_pod_and_fails_it_for_good():
    """Cancelled while attempt 1 runs: the pod is deleted, the attempt and the job failed with
    reason Cancelled, and no attempt follows even when the queue admits it."""
    view = asking(running(), naming.ANNOTATION_CANCEL, "c1")
    view, decision = advance(view, around(view, at(5), pods={1: pod(1, "Running")}))
    status = decision.status
    assert decision.actions == [DeletePod(naming.pod_name(view.name, 1))]
    assert status.phase == "Failed"
    assert status.cancelled == "c1"
    assert status.completion_time == at(5)
    assert condition(decision, "Failed").reason == "Cancelled"
    attempt = status.history[-1]
    assert (attempt.result, attempt.reason, attempt.finished_at) == ("Failed", "Cancelled", at(5))
    assert attempt.start_time == at(0)
    assert status.last_failure is not None and status.last_failure.reason == "Cancelled"
    assert reasons(decision) == ["Cancelled"]
    later = step(view, around(view, at(6), pods={}, admit=True))
    assert later.actions == [] and later.status.phase == "Failed" and later.events == []


def test_cancel_of_a_waiting_job_fails_it_without_a_pod():
    """A BackingOff job cancelled: Failed, Cancelled, nothing to delete."""
    view = asking(backing_off(), naming.ANNOTATION_CANCEL, "c1")
    _, decision = advance(view, around(view, at(20), admit=True))
    assert decision.actions == []
    assert decision.status.phase == "Failed"
    assert condition(decision, "Failed").reason == "Cancelled"
    assert not decision.wants_admission


def test_cancel_comes_too_late_for_an_attempt_that_succeeded():
    """The pod succeeded before the cancel was taken: the job keeps its success."""
    view = asking(running(), naming.ANNOTATION_CANCEL, "c1")
    done = pod(1, "Succeeded", finished_at=at(4), exit_code=0)
    _, decision = advance(view, around(view, at(5), pods={1: done}))
    assert decision.status.phase == "Succeeded"
    assert decision.status.cancelled == "c1"
    assert reasons(decision) == ["Succeeded", "CancelIgnored"]
    assert decision.actions == []


def test_a_cancelled_job_can_be_replayed_and_its_cancel_is_not_taken_again():
    """Replay after cancel runs it again; the old cancel value stays taken."""
    view = asking(running(), naming.ANNOTATION_CANCEL, "c1")
    view, _ = advance(view, around(view, at(5), pods={1: pod(1, "Running")}))
    view = asking(view, naming.ANNOTATION_REPLAY, "r1")
    view, decision = advance(view, around(view, at(6)))
    assert decision.status.phase == "Queued"
    _, started = advance(view, around(view, at(7), admit=True))
    assert started.actions == [CreatePod(2)]


def test_run_now_on_a_job_that_does_not_recur_is_ignored_with_an_event():
    view = asking(job(), naming.ANNOTATION_RUN_NOW, "n1")
    decision = step(view, around(view, at(0)))
    assert decision.status.ran_now == "n1"
    assert reasons(decision) == ["RunNowIgnored"]


# ---------------------------------------------------------------- run-now


NAME = "report"


def recurring_job(**annotations):
    return job(spec(every="1h"), name=NAME, created_at=T0, annotations=annotations)


def test_run_now_creates_a_manual_run_named_for_this_moment():
    """run-now at 12:00:30.5 creates report-<that second>, active at once, without moving the
    schedule's bookkeeping."""
    view = recurring_job(**{naming.ANNOTATION_RUN_NOW: "n1"})
    now = at(30.5)
    decision = recurring.step(view, [], now)
    assert decision.run_now == "n1"
    assert decision.create == []
    name = naming.run_name(NAME, now)
    assert name == f"{NAME}-{int(now.timestamp())}"
    assert decision.status.active == [name]
    assert decision.status.phase == "Running"
    assert decision.status.ran_now == "n1"
    assert decision.status.last_schedule_time is None
    assert decision.status.next_schedule_time == at(3600)
    assert [e.reason for e in decision.events] == ["RunNow"]
    body = recurring.render_run(
        view, uid="u", raw_spec={"every": "1h"}, scheduled_at=now, manual_request="n1"
    )
    assert body["metadata"]["name"] == name
    assert body["metadata"]["labels"][naming.LABEL_MANUAL] == "true"
    assert body["metadata"]["annotations"][naming.ANNOTATION_MANUAL_RUN] == "n1"
    assert naming.ANNOTATION_RUN_NOW not in body["metadata"]["annotations"]


def test_run_now_taken_once_and_a_created_manual_run_is_not_created_again():
    """The value recorded: nothing more. A manual run seen for the value whose status was never
    written (a failed write): recorded, not created twice."""
    view = recurring_job(**{naming.ANNOTATION_RUN_NOW: "n1"})
    taken = with_status(view, view.status.model_copy(update={"ran_now": "n1"}))
    assert recurring.step(taken, [], at(40)).run_now is None
    manual = recurring.Run(naming.run_name(NAME, at(30)), at(30), "Running", manual_request="n1")
    decision = recurring.step(view, [manual], at(40))
    assert decision.run_now is None
    assert decision.status.ran_now == "n1"
    assert decision.events == []


def test_a_manual_run_does_not_count_as_the_schedules_run():
    """A manual run newer than the last scheduled time does not stop the due run at 1 h."""
    view = recurring_job()
    manual = recurring.Run(
        naming.run_name(NAME, at(3500)), at(3500), "Succeeded", manual_request="n1"
    )
    decision = recurring.step(view, [manual], at(3600.2))
    assert decision.create == [at(3600)]


def test_promote_and_cancel_on_a_recurring_job_are_ignored_with_an_event():
    view = recurring_job(**{naming.ANNOTATION_PROMOTE: "p1", naming.ANNOTATION_CANCEL: "c1"})
    decision = recurring.step(view, [], at(1))
    assert (decision.status.promoted, decision.status.cancelled) == ("p1", "c1")
    assert sorted(e.reason for e in decision.events) == ["CancelIgnored", "PromoteIgnored"]


def test_action_values_and_patches():
    """Clients ask with a fresh token as a merge patch of the annotation."""
    moment = datetime.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)
    assert actions.token(moment) == "2026-03-01T12:00:00.123Z"
    assert actions.PROMOTE.patch("v") == {
        "metadata": {"annotations": {"conveyor.dev/promote": "v"}}
    }
    assert [a.annotation for a in actions.ALL] == [
        "conveyor.dev/replay",
        "conveyor.dev/promote",
        "conveyor.dev/cancel",
        "conveyor.dev/run-now",
    ]


def test_which_action_applies_to_which_job():
    """One rule, read by the operator's events and by clients before they ask."""
    refusal = actions.refusal
    assert refusal(actions.PROMOTE, "Delayed", recurring=False) is None
    assert refusal(actions.PROMOTE, "BackingOff", recurring=False) is None
    assert "this one is Running" in refusal(actions.PROMOTE, "Running", recurring=False)
    assert refusal(actions.CANCEL, "Queued", recurring=False) is None
    assert refusal(actions.CANCEL, "Running", recurring=False) is None
    assert "Succeeded already" in refusal(actions.CANCEL, "Succeeded", recurring=False)
    assert refusal(actions.REPLAY, "Failed", recurring=False) is None
    assert "only a Failed job" in refusal(actions.REPLAY, None, recurring=False)
    assert refusal(actions.RUN_NOW, "Pending", recurring=True) is None
    assert "only a recurring job" in refusal(actions.RUN_NOW, "Failed", recurring=False)
    assert "runs nothing itself" in refusal(actions.CANCEL, "Running", recurring=True)
