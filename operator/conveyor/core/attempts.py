"""Following a job's attempts: adopting pods never recorded, and recording how each ended.

Only the pod of the latest unfinished attempt is looked at (`outcome`
classifies it), and each attempt is finished exactly once: its history
record gets a result, with the container's message, its output and, for a
failure, the log tail, clipped to what a status may hold. A success finishes
the job; a disruption is retried without counting against maxAttempts (up to
maxDisruptions); a failure backs off, or fails the job for good when its exit
code is not retried or its attempts are used up. A pod newer than the
status's attempt count (created just before a restart, or while the status
could not be written) is adopted, not replaced, so no attempt runs twice.
"""

from __future__ import annotations

import datetime

from conveyor.api.v1alpha1 import RESULT_BYTES, AttemptRecord
from conveyor.core import backoff, naming, outcome
from conveyor.core.decisions import TERMINAL, DeletePod, JobView, Surroundings
from conveyor.core.draft import Draft
from conveyor.core.effective import Effective


def adopt_unrecorded_pods(
    draft: Draft, job: JobView, effective: Effective, around: Surroundings
) -> None:
    """Pods of attempts the status never recorded: created just before a restart, or while
    the status could not be written (its RBAC revoked). Each is adopted in turn, and each
    but the newest is closed with its outcome (a pod deleted meanwhile: lost), so that the
    history has every attempt and none is run twice."""
    newest = max(around.pods, default=0)
    while draft.values["attempts"] < newest and draft.phase not in TERMINAL:
        if draft.phase == "Running":
            follow_attempt(draft, job, effective, around)  # the one it recorded ended
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


def follow_attempt(
    draft: Draft, job: JobView, effective: Effective, around: Surroundings
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

    record = draft.end_attempt(
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
            draft.fail(
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
        draft.fail("NonRetryableExitCode", f"{why}; exit code {result.exit_code} is not retried")
    elif failures >= effective.max_attempts:
        draft.fail(
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


def _clip(text: str | None, limit: int, *, tail: bool = False) -> str | None:
    if text is None or len(text.encode()) <= limit:
        return text
    data = text.encode()
    clipped = data[-limit:] if tail else data[:limit]
    return clipped.decode(errors="ignore")
