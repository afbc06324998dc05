"""The state machine of one BackgroundJob: from its spec, status and pods, the next status.

`step` is a pure function. It reads the job as last written, the pods of its
attempts and a few facts about its surroundings (does its queue exist, how
are its dependencies doing, may it start now), and returns the status to
write, the actions to take (create the next attempt's pod, delete a pod that
never started, delete the job when its TTL ran out), the events to post, and
when to look again (`decisions`). The runtime carries these out; nothing here
waits, reads a clock or talks to the API server.

Phases::

    Pending ─▶ Blocked ─▶ Delayed ─▶ Queued ─▶ Running ─▶ Succeeded
                 │                     ▲          │
                 ▼                     └─BackingOff◀┤ (failure, attempts left)
               Failed ◀────────────────────────────┘ (final failure)

This module keeps the order in which a step looks at things, and the two
other ways a job's status is decided (`reject`, `fail`); each part lives in
a module of its own, all writing into one `draft.Draft`:

- `attempts`: pods the status never recorded are adopted, the running
  attempt's pod is followed and its end recorded (success, retry with
  backoff, final failure, disruption).
- `steering`: the person's requests by annotation, taken once: replay a
  Failed job, promote a Delayed or BackingOff one, cancel a waiting or
  running one. They are read after the pod's news, so an attempt that has
  just ended on its own keeps its outcome.
- `job_deadline`: jobDeadlineSeconds, which stops the job whatever it is
  doing.
- `starting`: the way from waiting (suspended, blocked, delayed, backing
  off, queued) to the next attempt's start.

Three rules keep a restart from running an attempt twice. Pods are named by
attempt, so a pod is created at most once. A pod newer than the status's
attempt count (created just before a crash, never recorded) is adopted, not
replaced. And an attempt is finished exactly once: its history record gets a
result, and only the pod of the latest unfinished attempt is looked at.

Events are emitted on transitions only (a condition flipping, an attempt
starting or ending), never on a reconcile that changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime

from conveyor.api.v1alpha1 import BackgroundJobSpec, BackgroundJobStatus
from conveyor.core import attempts, decisions, deprecation, job_deadline, starting, steering
from conveyor.core.decisions import Decision, JobView, Surroundings
from conveyor.core.draft import Draft
from conveyor.core.effective import Effective


def step(job: JobView, around: Surroundings) -> Decision:
    """The next status of `job`, and what to do to get there."""
    if around.invalid is not None:
        return reject(job.status, generation=job.generation, message=around.invalid, now=around.now)
    draft = Draft(job.status, job.generation, around.now)
    draft.drop_condition("InvalidSpec")
    effective = around.effective
    assert effective is not None, "a valid job has effective settings"

    _note_deprecations(draft, job.spec)
    steering.replay_if_asked(draft, job)

    wake_at = None
    if draft.phase not in decisions.TERMINAL:
        attempts.adopt_unrecorded_pods(draft, job, effective, around)
        if draft.phase == "Running":
            wake_at = attempts.follow_attempt(draft, job, effective, around)
    # After the pod's news: an attempt that ended on its own is not cancelled after the fact.
    steering.cancel_if_asked(draft, job, around)
    steering.promote_if_asked(draft, job, around)
    steering.ignore_run_now(draft, job)

    if draft.phase in decisions.TERMINAL:
        return draft.finished(effective)
    deadline = job_deadline.expiry(draft, effective)
    if deadline is not None and around.now >= deadline:
        job_deadline.stop(draft, job, effective, around)
        return draft.finished(effective)
    if draft.phase == "Running":
        return draft.decide(effective, wake_at=_earliest(wake_at, deadline))
    decision = starting.wait_or_start(draft, job, effective, around)
    if deadline is None or decisions.is_terminal(decision.status.phase):
        return decision
    return dataclasses.replace(decision, wake_at=_earliest(decision.wake_at, deadline))


def _earliest(*moments: datetime.datetime | None) -> datetime.datetime | None:
    return min((m for m in moments if m is not None), default=None)


def _note_deprecations(draft: Draft, spec: BackgroundJobSpec) -> None:
    """A Deprecated condition while the spec uses a deprecated field (a Warning event when
    it appears); gone once the spec no longer does."""
    message = deprecation.in_job(spec)
    if message is None:
        draft.drop_condition(deprecation.CONDITION)
    else:
        draft.condition(deprecation.CONDITION, "True", deprecation.REASON, message, event="Warning")


def reject(
    status: BackgroundJobStatus, *, generation: int | None, message: str, now: datetime.datetime
) -> Decision:
    """The status of a job the operator cannot act on (a spec it cannot read, a pod the API
    server refused): an InvalidSpec condition saying why, and nothing done."""
    draft = Draft(status, generation, now)
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
    draft = Draft(job.status, job.generation, now)
    draft.fail(reason, message)
    return draft.finished(effective)
