"""Names and labels derived from a job, so that every action is idempotent.

A pod for attempt N of job J is always named `J-N`: creating it a second time
(after a restart, or because the watch had not yet shown the first create)
is an `AlreadyExists` from the API server, never a second run. The labels let
the operator find a job's pods, and a queue's pods, with one selector.
"""

from __future__ import annotations

import datetime
from typing import Any

from conveyor.api.v1alpha1 import API_VERSION

LABEL_JOB = "conveyor.dev/job"
LABEL_QUEUE = "conveyor.dev/queue"
LABEL_ATTEMPT = "conveyor.dev/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "conveyor"
LABEL_PARENT = "conveyor.dev/recurring-job"
ANNOTATION_CREATED_AT = "conveyor.dev/created-at"
ANNOTATION_OPERATOR = "conveyor.dev/operator"
"""On each pod: the operator (its release) that created it; see `runtime.rivals`."""
ANNOTATION_REPLAY = "conveyor.dev/replay"
ANNOTATION_PROMOTE = "conveyor.dev/promote"
ANNOTATION_RUN_NOW = "conveyor.dev/run-now"
ANNOTATION_CANCEL = "conveyor.dev/cancel"
LABEL_MANUAL = "conveyor.dev/manual"
"""On a run created by conveyor.dev/run-now rather than by its schedule: "true"."""
ANNOTATION_MANUAL_RUN = "conveyor.dev/manual-run"
"""On such a run: the conveyor.dev/run-now value that created it."""
ANNOTATION_SCHEDULED_AT = "conveyor.dev/scheduled-at"
NO_QUEUE = ""
"""Queue key of jobs that name no queue: admitted at once, without limits."""


def pod_name(job_name: str, attempt: int) -> str:
    return f"{job_name}-{attempt}"


def run_name(recurring_job_name: str, scheduled_at: datetime.datetime) -> str:
    """The child BackgroundJob of a recurring job's run at `scheduled_at`."""
    return f"{recurring_job_name}-{int(scheduled_at.timestamp())}"


def format_time(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with milliseconds, the form written into status."""
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def owned_by_job(job_name: str, uid: str) -> dict[str, Any]:
    """The owner reference that makes a pod or a run belong to its BackgroundJob: the
    garbage collector deletes it with the job."""
    return {
        "apiVersion": API_VERSION,
        "kind": "BackgroundJob",
        "name": job_name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
