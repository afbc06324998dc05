"""A person steers a job: the state machine's side of the actions asked by annotation.

`actions` says what each action is (its annotation, the status field that
records the value taken, when it applies); this module is what a job does
when asked: a replay sends a Failed job through again, a cancel fails a
waiting or running job for good (its running pod deleted), a promote makes a
Delayed or BackingOff job ready to start now, and run-now, a recurring job's
action, is ignored with an event. Each value is taken once, and recorded
whether it was acted on or ignored.
"""

from __future__ import annotations

import datetime

from conveyor.core import actions, naming
from conveyor.core.decisions import DeletePod, JobView, Surroundings
from conveyor.core.draft import Draft


def replay_if_asked(draft: Draft, job: JobView) -> None:
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


def cancel_if_asked(draft: Draft, job: JobView, around: Surroundings) -> None:
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
        record = draft.end_attempt(
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


def promote_if_asked(draft: Draft, job: JobView, around: Surroundings) -> None:
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


def ignore_run_now(draft: Draft, job: JobView) -> None:
    asked = actions.RUN_NOW.asked(job.annotations, job.status)
    if asked is None:
        return
    draft.set(ran_now=asked)
    refused = actions.refusal(actions.RUN_NOW, draft.phase, recurring=False)
    draft.emit("Normal", "RunNowIgnored", f"{actions.RUN_NOW.how(asked)} ignored: {refused}")
