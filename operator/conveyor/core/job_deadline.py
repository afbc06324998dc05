"""jobDeadlineSeconds: a bound on the whole job, across all its attempts and the waits between.

The deadline runs from the first attempt's start. Once it has passed, the
running attempt is stopped (its pod deleted, the attempt recorded as
DeadlineExceeded) and the job fails, whatever attempts it has left; until
then, `lifecycle.step` wakes the job at it.
"""

from __future__ import annotations

import datetime

from conveyor.core.decisions import DeletePod, JobView, Surroundings
from conveyor.core.draft import Draft
from conveyor.core.effective import Effective


def expiry(draft: Draft, effective: Effective) -> datetime.datetime | None:
    """When jobDeadlineSeconds runs out: counted from the first attempt's start."""
    started: datetime.datetime | None = draft.values["start_time"]
    if effective.job_deadline_seconds is None or started is None:
        return None
    return started + datetime.timedelta(seconds=effective.job_deadline_seconds)


def stop(draft: Draft, job: JobView, effective: Effective, around: Surroundings) -> None:
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
    draft.fail("DeadlineExceeded", message)
