"""The summaries as JSON: what `kubectl conveyor -o json` prints and the dashboard's API serves.

One shape for both, camelCase as the API's own fields, times in RFC 3339.
"""

from __future__ import annotations

import datetime
from typing import Any

from conveyor.core import naming
from conveyor.core.summary import Attempt, JobRow, QueueRow
from conveyor.core.throughput import Bucket


def _stamp(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else naming.format_time(moment)


def queue_json(row: QueueRow) -> dict[str, Any]:
    """A queue's summary as JSON (`-o json`, the dashboard's API)."""
    return {
        "namespace": row.namespace,
        "name": row.name,
        "exists": row.exists,
        "paused": row.paused,
        "concurrency": row.concurrency,
        "rateLimit": row.rate_limit,
        "waiting": row.waiting,
        "delayed": row.delayed,
        "blocked": row.blocked,
        "running": row.running,
        "succeeded": row.succeeded,
        "failed": row.failed,
        "ratePerMinute": round(row.rate_per_minute, 3),
        "failuresPerMinute": round(row.failures_per_minute, 3),
        "oldestWaitingSeconds": row.oldest_waiting_seconds,
    }


def job_json(row: JobRow) -> dict[str, Any]:
    return {
        "namespace": row.namespace,
        "name": row.name,
        "queue": row.queue,
        "phase": row.phase,
        "attempts": row.attempts,
        "attemptsSummary": row.attempts_summary,
        "priority": row.priority,
        "created": _stamp(row.created),
        "started": _stamp(row.started),
        "completed": _stamp(row.completed),
        "nextAttemptAt": _stamp(row.next_attempt_at),
        "lastFailure": row.last_failure,
        "lastExitCode": row.last_exit_code,
        "result": row.result,
        "schedule": row.schedule,
        "parent": row.parent,
        "manual": row.manual,
        "dependsOn": list(row.depends_on),
        "suspended": row.suspended,
    }


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "pod": attempt.pod,
        "started": _stamp(attempt.started),
        "finished": _stamp(attempt.finished),
        "durationSeconds": attempt.duration_seconds,
        "result": attempt.result,
        "reason": attempt.reason,
        "exitCode": attempt.exit_code,
        "message": attempt.message,
        "output": attempt.output,
        "logTail": attempt.log_tail,
    }


def bucket_json(bucket: Bucket) -> dict[str, Any]:
    return {
        "start": _stamp(bucket.start),
        "succeeded": bucket.succeeded,
        "failed": bucket.failed,
        "disrupted": bucket.disrupted,
    }
