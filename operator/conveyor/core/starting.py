"""The way from waiting to the next attempt's start, for a job that is neither running nor done.

In order: a suspended job waits; dependsOn blocks it (or fails it, when a
dependency failed; a cycle blocks it for good); startAt or delaySeconds
delays its first attempt (unless promoted); a backoff delays the next; a
queue that does not exist holds it Pending; then it is Queued until its
queue admits it, and the admitted job's next attempt starts: its pod is
created, named by attempt, so that it is created at most once.
"""

from __future__ import annotations

import datetime

from conveyor.api.v1alpha1 import AttemptRecord
from conveyor.core import admission, conditions, naming
from conveyor.core.decisions import CreatePod, Decision, JobView, Surroundings
from conveyor.core.draft import Draft
from conveyor.core.effective import Effective


def first_start_at(job: JobView) -> datetime.datetime | None:
    """When the job's first attempt may start, if its spec sets a time (startAt, delaySeconds)."""
    spec = job.spec
    if spec.start_at is not None:
        return spec.start_at
    if spec.delay_seconds is not None:
        return job.created_at + datetime.timedelta(seconds=spec.delay_seconds)
    return None


def wait_or_start(
    draft: Draft, job: JobView, effective: Effective, around: Surroundings
) -> Decision:
    spec = job.spec
    if draft.phase is None:
        draft.set(phase="Pending")

    if spec.suspend:
        draft.condition("Suspended", "True", "Suspended", "spec.suspend is true", event="Normal")
        return draft.decide(effective)
    if conditions.is_true(draft.values["conditions"], "Suspended"):
        draft.condition("Suspended", "False", "Resumed", "spec.suspend is false")
        draft.emit("Normal", "Resumed", "spec.suspend is false: continuing")

    blocked = _dependencies(draft, around)
    if blocked is not None:
        return blocked

    not_before = first_start_at(job)
    if (
        not_before is not None
        and draft.values["attempts"] == 0
        and around.now < not_before
        and not conditions.is_true(draft.values["conditions"], "Promoted")
    ):
        draft.set(phase="Delayed", next_attempt_at=not_before)
        return draft.decide(effective, wake_at=not_before)

    next_at: datetime.datetime | None = draft.values["next_attempt_at"]
    if draft.phase == "BackingOff" and next_at is not None and around.now < next_at:
        return draft.decide(effective, wake_at=next_at)

    if not around.queue_exists:
        draft.set(phase="Pending")
        draft.condition(
            "QueueNotFound",
            "True",
            "QueueNotFound",
            f"JobQueue {spec.queue!r} does not exist in namespace {job.namespace}; "
            "the job waits and starts once it exists",
            event="Warning",
        )
        return draft.decide(effective)
    draft.drop_condition("QueueNotFound")

    if not around.admit:
        draft.set(
            phase="Queued",
            next_attempt_at=None,
            queue_order=admission.queue_order_key(effective.priority, job.created_at, job.name),
        )
        return draft.decide(effective, wants_admission=True)

    attempt = draft.values["attempts"] + 1
    pod = naming.pod_name(job.name, attempt)
    draft.actions.append(CreatePod(attempt))
    draft.set(
        phase="Running",
        attempts=attempt,
        pod_name=pod,
        next_attempt_at=None,
        start_time=draft.values["start_time"] or around.now,
    )
    draft.set_history(
        [*draft.history(), AttemptRecord(attempt=attempt, pod_name=pod, start_time=around.now)]
    )
    counted = draft.values["failures"] + 1
    draft.condition("Admitted", "True", "Started", f"attempt {attempt} started as pod {pod}")
    draft.emit(
        "Normal",
        "Started",
        f"attempt {attempt} ({counted}/{effective.max_attempts}) started as pod {pod}",
    )
    return draft.decide(effective)


def _dependencies(draft: Draft, around: Surroundings) -> Decision | None:
    """Blocked or failed by dependsOn; None when every dependency succeeded."""
    effective = around.effective
    if around.dependency_cycle:
        cycle = " → ".join([*around.dependency_cycle, around.dependency_cycle[0]])
        draft.set(phase="Blocked")
        draft.condition(
            "Blocked",
            "True",
            "DependencyCycle",
            f"dependsOn forms a cycle: {cycle}",
            event="Warning",
        )
        return draft.decide(effective)
    deps = around.dependencies
    failed = sorted(name for name, phase in deps.items() if phase == "Failed")
    if failed:
        draft.fail("DependencyFailed", f"dependency failed: {', '.join(failed)}")
        assert effective is not None, "a valid job has effective settings"
        return draft.finished(effective)  # its TTL runs from now, like any finished job's
    missing = sorted(name for name, phase in deps.items() if phase is None)
    waiting = sorted(name for name, phase in deps.items() if phase not in (None, "Succeeded"))
    if missing or waiting:
        parts = []
        if waiting:
            parts.append(f"waiting for {', '.join(waiting)} to succeed")
        if missing:
            parts.append(f"{', '.join(missing)} not found (yet)")
        draft.set(phase="Blocked")
        draft.condition("Blocked", "True", "WaitingForDependencies", "; ".join(parts))
        return draft.decide(effective)
    if draft.phase == "Blocked":
        draft.set(phase="Pending")
    draft.condition("Blocked", "False", "DependenciesSucceeded", "every dependency succeeded")
    return None
