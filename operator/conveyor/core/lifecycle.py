"""The state machine of one BackgroundJob: from its spec, status and pods, the next status.

`step` is a pure function. It reads the job as last written, the pods of its
attempts and a few facts about its surroundings (does its queue exist, how
are its dependencies doing, may it start now), and returns the status to
write, the actions to take (create the next attempt's pod, delete a pod that
never started, delete the job when its TTL ran out), the events to post, and
when to look again. The runtime carries these out; nothing here waits, reads
a clock or talks to the API server.

Phases::

    Pending ─▶ Blocked ─▶ Delayed ─▶ Queued ─▶ Running ─▶ Succeeded
                 │                     ▲          │
                 ▼                     └─BackingOff◀┤ (failure, attempts left)
               Failed ◀────────────────────────────┘ (final failure)

Three rules keep a restart from running an attempt twice. Pods are named by
attempt, so a pod is created at most once. A pod newer than the status's
attempt count (created just before a crash, never recorded) is adopted, not
replaced. And an attempt is finished exactly once: its history record gets a
result, and only the pod of the latest unfinished attempt is looked at.

Events are emitted on transitions only (a condition flipping, an attempt
starting or ending), never on a reconcile that changes nothing.

A person steers a job with annotations taken once (`actions`): replay a
Failed job, promote a Delayed or BackingOff one, cancel a waiting or running
one. They are read after the pod's news, so an attempt that has just ended
on its own keeps its outcome.
"""

from __future__ import annotations

import dataclasses
import datetime
import random as random_module
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from conveyor.api.v1alpha1 import (
    RESULT_BYTES,
    AttemptRecord,
    BackgroundJobSpec,
    BackgroundJobStatus,
    Condition,
    Phase,
)
from conveyor.core import actions, admission, backoff, conditions, deprecation, naming, outcome
from conveyor.core.effective import Effective

HISTORY_LIMIT = 20
TERMINAL: frozenset[str] = frozenset({"Succeeded", "Failed"})

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class JobView:
    """The parts of a BackgroundJob object the lifecycle reads."""

    name: str
    namespace: str
    generation: int | None
    created_at: datetime.datetime
    spec: BackgroundJobSpec
    status: BackgroundJobStatus
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Surroundings:
    """What the job's neighbours look like, as the runtime last saw them."""

    now: datetime.datetime
    effective: Effective | None
    invalid: str | None = None
    """Why the operator cannot act on this spec, for the user to fix; None when valid."""
    queue_exists: bool = True
    dependencies: Mapping[str, str | None] = field(default_factory=dict)
    """dependsOn name → its phase ('' when it has none yet), None when it does not exist."""
    dependency_cycle: Sequence[str] | None = None
    pods: Mapping[int, outcome.PodView] = field(default_factory=dict)
    admit: bool = False
    """The queue admits this job now: start the next attempt if it is ready."""
    random: Callable[[], float] = random_module.random


@dataclass(frozen=True)
class CreatePod:
    attempt: int


@dataclass(frozen=True)
class DeletePod:
    name: str


@dataclass(frozen=True)
class DeleteJob:
    pass


Action = CreatePod | DeletePod | DeleteJob


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status: BackgroundJobStatus
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    wake_at: datetime.datetime | None = None
    wants_admission: bool = False


class _Draft:
    """The status being built, with the events its transitions produce."""

    def __init__(
        self, status: BackgroundJobStatus, generation: int | None, now: datetime.datetime
    ) -> None:
        self.generation = generation
        self.now = now
        self.values = status.model_dump()
        self.values["conditions"] = list(status.conditions)
        self.values["history"] = list(status.history)
        self.values["observed_generation"] = generation
        self.events: list[Event] = []
        self.actions: list[Action] = []

    @property
    def phase(self) -> str | None:
        phase: str | None = self.values["phase"]
        return phase

    def set(self, **values: object) -> None:
        self.values.update(values)

    def condition(
        self,
        type_: str,
        status: Literal["True", "False"],
        reason: str,
        message: str,
        *,
        event: EventType | None = None,
    ) -> None:
        current: list[Condition] = self.values["conditions"]
        old = conditions.find(current, type_)
        # A new reason is a new finding (Blocked: waiting, then a cycle): it gets its event too.
        already = old is not None and old.status == "True" and old.reason == reason
        if status == "False" and old is None:
            return
        self.values["conditions"] = conditions.set_condition(
            current,
            type_,
            status,
            reason=reason,
            message=message,
            now=self.now,
            generation=self.generation,
        )
        if event is not None and status == "True" and not already:
            self.emit(event, reason, message)

    def drop_condition(self, type_: str) -> None:
        self.values["conditions"] = conditions.remove(self.values["conditions"], type_)

    def emit(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def history(self) -> list[AttemptRecord]:
        records: list[AttemptRecord] = self.values["history"]
        return records

    def set_history(self, records: list[AttemptRecord]) -> None:
        self.values["history"] = records[-HISTORY_LIMIT:]

    def decide(
        self,
        effective: Effective | None,
        *,
        wake_at: datetime.datetime | None = None,
        wants_admission: bool = False,
    ) -> Decision:
        if effective is not None:
            counted = self.values["failures"] + (
                1 if self.values["phase"] in ("Running", "Succeeded") else 0
            )
            self.values["attempts_summary"] = f"{counted}/{effective.max_attempts}"
        if self.values["phase"] != "Queued":
            self.values["queue_order"] = None
        status = BackgroundJobStatus.model_validate(self.values)
        return Decision(status, self.actions, self.events, wake_at, wants_admission)


def step(job: JobView, around: Surroundings) -> Decision:
    """The next status of `job`, and what to do to get there."""
    if around.invalid is not None:
        return reject(job.status, generation=job.generation, message=around.invalid, now=around.now)
    draft = _Draft(job.status, job.generation, around.now)
    draft.drop_condition("InvalidSpec")
    effective = around.effective
    assert effective is not None, "a valid job has effective settings"

    _note_deprecations(draft, job.spec)
    _replay_if_asked(draft, job)

    wake_at = None
    if draft.phase not in TERMINAL:
        _adopt_unrecorded_pods(draft, job, effective, around)
        if draft.phase == "Running":
            wake_at = _follow_attempt(draft, job, effective, around)
    # After the pod's news: an attempt that ended on its own is not cancelled after the fact.
    _cancel_if_asked(draft, job, around)
    _promote_if_asked(draft, job, around)
    _ignore_run_now(draft, job)

    if draft.phase in TERMINAL:
        return _finished(draft, effective)
    deadline = _job_deadline(draft, effective)
    if deadline is not None and around.now >= deadline:
        _stop_at_job_deadline(draft, job, effective, around)
        return _finished(draft, effective)
    if draft.phase == "Running":
        return draft.decide(effective, wake_at=_earliest(wake_at, deadline))
    decision = _wait_or_start(draft, job, effective, around)
    if deadline is None or is_terminal(decision.status.phase):
        return decision
    return dataclasses.replace(decision, wake_at=_earliest(decision.wake_at, deadline))


def _earliest(*moments: datetime.datetime | None) -> datetime.datetime | None:
    return min((m for m in moments if m is not None), default=None)


def _note_deprecations(draft: _Draft, spec: BackgroundJobSpec) -> None:
    """A Deprecated condition while the spec uses a deprecated field (a Warning event when
    it appears); gone once the spec no longer does."""
    message = deprecation.in_job(spec)
    if message is None:
        draft.drop_condition(deprecation.CONDITION)
    else:
        draft.condition(deprecation.CONDITION, "True", deprecation.REASON, message, event="Warning")


def _job_deadline(draft: _Draft, effective: Effective) -> datetime.datetime | None:
    """When jobDeadlineSeconds runs out: counted from the first attempt's start."""
    started: datetime.datetime | None = draft.values["start_time"]
    if effective.job_deadline_seconds is None or started is None:
        return None
    return started + datetime.timedelta(seconds=effective.job_deadline_seconds)


def _stop_at_job_deadline(
    draft: _Draft, job: JobView, effective: Effective, around: Surroundings
) -> None:
    """The job ran out of jobDeadlineSeconds: its running attempt is stopped (its pod
    deleted, the attempt recorded as DeadlineExceeded) and the job fails, as batch/v1
    fails a Job past its activeDeadlineSeconds."""
    seconds = effective.job_deadline_seconds
    message = f"the job ran past jobDeadlineSeconds ({seconds}s since its first attempt started)"
    if draft.phase == "Running":
        attempt: int = draft.values["attempts"]
        pod = around.pods.get(attempt)
        if pod is not None and not pod.terminal:
            draft.actions.append(DeletePod(pod.name))
        history = draft.history()
        if history and history[-1].attempt == attempt and history[-1].result is None:
            stopped = history[-1].model_copy(
                update={
                    "finished_at": around.now,
                    "result": "Failed",
                    "reason": "DeadlineExceeded",
                    "message": message,
                }
            )
            draft.set_history([*history[:-1], stopped])
            draft.set(last_failure=stopped)
    _fail(draft, "DeadlineExceeded", message)


def reject(
    status: BackgroundJobStatus, *, generation: int | None, message: str, now: datetime.datetime
) -> Decision:
    """The status of a job the operator cannot act on (a spec it cannot read, a pod the API
    server refused): an InvalidSpec condition saying why, and nothing done."""
    draft = _Draft(status, generation, now)
    draft.condition("InvalidSpec", "True", "InvalidSpec", message, event="Warning")
    if draft.phase is None:
        draft.set(phase="Pending")
    return draft.decide(None)


def fail(
    job: JobView, effective: Effective, *, reason: str, message: str, now: datetime.datetime
) -> Decision:
    """The job fails for good before its attempt could start: its pod was refused by a
    policy of its namespace (PodSecurity, a webhook), which no retry would change. A replay
    sends it through again once the policy or the job is fixed."""
    draft = _Draft(job.status, job.generation, now)
    _fail(draft, reason, message)
    return _finished(draft, effective)


def _replay_if_asked(draft: _Draft, job: JobView) -> None:
    """A new value of the replay annotation sends a Failed job through once more."""
    asked = actions.REPLAY.asked(job.annotations, job.status)
    if asked is None:
        return
    draft.set(replayed=asked)
    if draft.phase != "Failed":
        return
    draft.set(
        phase="Pending",
        failures=0,
        disruptions=0,
        start_time=None,
        completion_time=None,
        next_attempt_at=None,
    )
    draft.drop_condition("Failed")
    draft.emit(
        "Normal",
        "Replayed",
        f"sent through again ({actions.REPLAY.how(asked)}); earlier attempts stay in history",
    )


def _cancel_if_asked(draft: _Draft, job: JobView, around: Surroundings) -> None:
    """A new value of the cancel annotation fails a waiting or running job for good: its
    running pod is deleted, and no attempt follows (until a replay)."""
    asked = actions.CANCEL.asked(job.annotations, job.status)
    if asked is None:
        return
    draft.set(cancelled=asked)
    how = actions.CANCEL.how(asked)
    refused = actions.refusal(actions.CANCEL, draft.phase, recurring=False)
    if refused is not None:
        draft.emit("Normal", "CancelIgnored", f"{how} ignored: {refused}")
        return
    message = f"cancelled ({how})"
    if draft.phase == "Running":
        attempt: int = draft.values["attempts"]
        pod = around.pods.get(attempt)
        name = pod.name if pod is not None else naming.pod_name(job.name, attempt)
        draft.actions.append(DeletePod(name))
        message += f": attempt {attempt}'s pod {name} deleted"
        record = _end_attempt(
            draft,
            attempt,
            pod_name=name,
            fallback_start=pod.created_at if pod else None,
            finished_at=around.now,
            result="Failed",
            reason="Cancelled",
            message=message,
        )
        draft.set(failures=draft.values["failures"] + 1, last_failure=record)
    draft.set(phase="Failed", completion_time=around.now, next_attempt_at=None)
    draft.condition("Failed", "True", "Cancelled", f"{message}; no more attempts")
    draft.emit("Normal", "Cancelled", f"{message}; no more attempts")


def _promote_if_asked(draft: _Draft, job: JobView, around: Surroundings) -> None:
    """A new value of the promote annotation makes a Delayed or BackingOff job ready to start
    now: it goes to its queue, whose limits still apply."""
    asked = actions.PROMOTE.asked(job.annotations, job.status)
    if asked is None:
        return
    draft.set(promoted=asked)
    how = actions.PROMOTE.how(asked)
    waited_for: datetime.datetime | None = draft.values["next_attempt_at"]
    refused = actions.refusal(actions.PROMOTE, draft.phase, recurring=False)
    if refused is not None:
        draft.emit("Normal", "PromoteIgnored", f"{how} ignored: {refused}")
        return
    instead = f" instead of at {naming.format_time(waited_for)}" if waited_for else ""
    message = f"ready to start now{instead} ({how}); its queue's limits still apply"
    # The condition is what waives a start delay (startAt, delaySeconds) from now on.
    draft.condition("Promoted", "True", "Promoted", message)
    draft.set(next_attempt_at=around.now)
    draft.emit("Normal", "Promoted", message)


def _ignore_run_now(draft: _Draft, job: JobView) -> None:
    asked = actions.RUN_NOW.asked(job.annotations, job.status)
    if asked is None:
        return
    draft.set(ran_now=asked)
    refused = actions.refusal(actions.RUN_NOW, draft.phase, recurring=False)
    draft.emit("Normal", "RunNowIgnored", f"{actions.RUN_NOW.how(asked)} ignored: {refused}")


def _end_attempt(
    draft: _Draft, attempt: int, *, fallback_start: datetime.datetime | None, **ended: object
) -> AttemptRecord:
    """Record how attempt `attempt` ended in the history (its start kept); returns the record."""
    history = draft.history()
    previous = history[-1] if history and history[-1].attempt == attempt else None
    record = AttemptRecord.model_validate(
        {
            "attempt": attempt,
            "start_time": previous.start_time if previous else fallback_start,
            **ended,
        }
    )
    draft.set_history([*history[:-1], record] if previous else [*history, record])
    return record


def _finished(draft: _Draft, effective: Effective) -> Decision:
    ttl = effective.ttl_seconds_after_finished
    completed: datetime.datetime | None = draft.values["completion_time"]
    if ttl is None or completed is None:
        return draft.decide(effective)
    expires = completed + datetime.timedelta(seconds=ttl)
    if draft.now >= expires:
        draft.actions.append(DeleteJob())
        return draft.decide(effective)
    return draft.decide(effective, wake_at=expires)


def _adopt_unrecorded_pods(
    draft: _Draft, job: JobView, effective: Effective, around: Surroundings
) -> None:
    """Pods of attempts the status never recorded: created just before a restart, or while
    the status could not be written (its RBAC revoked). Each is adopted in turn, and each
    but the newest is closed with its outcome (a pod deleted meanwhile: lost), so that the
    history has every attempt and none is run twice."""
    newest = max(around.pods, default=0)
    while draft.values["attempts"] < newest and draft.phase not in TERMINAL:
        if draft.phase == "Running":
            _follow_attempt(draft, job, effective, around)  # the one it recorded ended
            if draft.phase == "Running":
                return  # it runs still, beside a newer one: not ours to untangle
            continue
        attempt = draft.values["attempts"] + 1
        pod = around.pods.get(attempt)
        name = naming.pod_name(job.name, attempt)
        started = pod.created_at if pod is not None else None
        draft.set(
            attempts=attempt,
            phase="Running",
            pod_name=name,
            next_attempt_at=None,
            start_time=draft.values["start_time"] or started,
        )
        draft.set_history(
            [*draft.history(), AttemptRecord(attempt=attempt, pod_name=name, start_time=started)]
        )
        # Created before its status was written: write what admission would have.
        draft.condition("Admitted", "True", "Started", f"attempt {attempt} started as pod {name}")


def _follow_attempt(
    draft: _Draft, job: JobView, effective: Effective, around: Surroundings
) -> datetime.datetime | None:
    """Look at the running attempt's pod; record its end if it ended. Returns a wake-up time."""
    attempt: int = draft.values["attempts"]
    pod = around.pods.get(attempt)
    result = outcome.classify(
        pod,
        now=around.now,
        non_retryable_exit_codes=effective.non_retryable_exit_codes,
        start_timeout_seconds=effective.start_timeout_seconds,
    )
    if result.kind == "Running":
        return result.start_deadline
    if pod is not None and not pod.terminal:
        draft.actions.append(DeletePod(pod.name))  # it never started; free its slot

    record = _end_attempt(
        draft,
        attempt,
        pod_name=naming.pod_name(job.name, attempt),
        fallback_start=pod.created_at if pod else None,
        finished_at=result.finished_at,
        result=result.kind,
        reason=result.reason,
        exit_code=result.exit_code,
        message=_clip(result.message, 1024),
        output=_clip(pod.container_message if pod else None, RESULT_BYTES) or None,
    )
    finished_at = result.finished_at or around.now
    label = f"attempt {attempt}"

    if result.kind == "Succeeded":
        draft.set(
            phase="Succeeded",
            completion_time=finished_at,
            next_attempt_at=None,
            result=record.output,
        )
        draft.condition("Succeeded", "True", "Completed", f"{label} succeeded")
        draft.emit("Normal", "Succeeded", f"{label} succeeded (pod {record.pod_name})")
        return None

    if result.kind == "Disrupted":
        disruptions = draft.values["disruptions"] + 1
        draft.set(disruptions=disruptions, phase="Pending", next_attempt_at=None)
        why = f"{label} was lost ({result.reason}), not counted against maxAttempts"
        if disruptions > effective.max_disruptions:
            _fail(
                draft,
                "TooManyDisruptions",
                f"{why}; {disruptions} disruptions exceed maxDisruptions "
                f"{effective.max_disruptions}",
            )
        else:
            draft.emit("Warning", "AttemptDisrupted", f"{why}; retrying")
        return None

    failures = draft.values["failures"] + 1
    failure = record.model_copy(
        update={"log_tail": _clip(pod.log_tail if pod else None, LOG_TAIL_BYTES, tail=True)}
    )
    draft.set(failures=failures, last_failure=failure)
    why = _describe_failure(label, result)
    if result.final:
        _fail(draft, "NonRetryableExitCode", f"{why}; exit code {result.exit_code} is not retried")
    elif failures >= effective.max_attempts:
        _fail(
            draft,
            "AttemptsExhausted",
            f"{why}; {failures} of {effective.max_attempts} attempts used",
        )
    else:
        delay = backoff.delay_for(effective.backoff, failures, random=around.random)
        next_at = finished_at + datetime.timedelta(seconds=delay)
        draft.set(phase="BackingOff", next_attempt_at=next_at)
        draft.emit("Warning", "AttemptFailed", f"{why}; retrying in {delay:.1f}s")
    return None


LOG_TAIL_BYTES = 2048


def _describe_failure(label: str, result: outcome.Outcome) -> str:
    parts = [f"{label} failed: {result.reason}"]
    if result.exit_code is not None:
        parts.append(f"exit code {result.exit_code}")
    return ", ".join(parts)


def _fail(draft: _Draft, reason: str, message: str) -> None:
    draft.set(phase="Failed", completion_time=draft.now, next_attempt_at=None)
    draft.condition("Failed", "True", reason, message)
    draft.emit("Warning", "Failed", message)


def first_start_at(job: JobView) -> datetime.datetime | None:
    """When the job's first attempt may start, if its spec sets a time (startAt, delaySeconds)."""
    spec = job.spec
    if spec.start_at is not None:
        return spec.start_at
    if spec.delay_seconds is not None:
        return job.created_at + datetime.timedelta(seconds=spec.delay_seconds)
    return None


def _wait_or_start(
    draft: _Draft, job: JobView, effective: Effective, around: Surroundings
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


def _dependencies(draft: _Draft, around: Surroundings) -> Decision | None:
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
        _fail(draft, "DependencyFailed", f"dependency failed: {', '.join(failed)}")
        assert effective is not None, "a valid job has effective settings"
        return _finished(draft, effective)  # its TTL runs from now, like any finished job's
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


def _clip(text: str | None, limit: int, *, tail: bool = False) -> str | None:
    if text is None or len(text.encode()) <= limit:
        return text
    data = text.encode()
    clipped = data[-limit:] if tail else data[:limit]
    return clipped.decode(errors="ignore")


def is_terminal(phase: Phase | str | None) -> bool:
    return phase in TERMINAL
