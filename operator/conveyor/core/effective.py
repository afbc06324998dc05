"""A job's effective settings: its own fields, else its queue's defaults, else ours.

Queue defaults fill each field the job leaves unset, one field at a time
(`retry.maxAttempts` from the job and `retry.backoff` from the queue is fine).
The built-in fallbacks follow the seed's advice: five attempts with
exponential backoff from one second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from conveyor.api.v1alpha1 import BackgroundJobSpec, Backoff, JobDefaults

T = TypeVar("T")

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_DISRUPTIONS = 10
DEFAULT_START_TIMEOUT_SECONDS = 300
DEFAULT_BACKOFF = Backoff(
    strategy="Exponential", initial_delay_seconds=1, multiplier=2, max_delay_seconds=3600, jitter=0
)


@dataclass(frozen=True)
class Effective:
    """Every setting the lifecycle needs, resolved."""

    max_attempts: int
    backoff: Backoff
    non_retryable_exit_codes: frozenset[int]
    max_disruptions: int
    attempt_deadline_seconds: int | None
    job_deadline_seconds: int | None
    start_timeout_seconds: int
    ttl_seconds_after_finished: int | None
    priority_class_name: str | None
    priority: int


def resolve(
    spec: BackgroundJobSpec,
    defaults: JobDefaults | None,
    priority_classes: Mapping[str, int],
) -> Effective:
    """`priority_classes` maps PriorityClass names to their values."""
    queue = defaults or JobDefaults()
    job_retry = spec.retry
    queue_retry = queue.retry

    priority_class = spec.priority_class_name or queue.priority_class_name
    if spec.priority is not None:
        priority = spec.priority
    elif priority_class is not None:
        priority = priority_classes.get(priority_class, 0)
    else:
        priority = 0
    return Effective(
        max_attempts=pick(
            job_retry.max_attempts if job_retry else None,
            queue_retry.max_attempts if queue_retry else None,
            DEFAULT_MAX_ATTEMPTS,
        ),
        backoff=pick(
            job_retry.backoff if job_retry else None,
            queue_retry.backoff if queue_retry else None,
            DEFAULT_BACKOFF,
        ),
        non_retryable_exit_codes=frozenset(
            pick(
                job_retry.non_retryable_exit_codes if job_retry else None,
                queue_retry.non_retryable_exit_codes if queue_retry else None,
                [],
            )
        ),
        max_disruptions=pick(
            job_retry.max_disruptions if job_retry else None,
            queue_retry.max_disruptions if queue_retry else None,
            DEFAULT_MAX_DISRUPTIONS,
        ),
        # activeDeadlineSeconds is attemptDeadlineSeconds' deprecated name (core.deprecation).
        attempt_deadline_seconds=pick(
            spec.attempt_deadline_seconds or spec.active_deadline_seconds,
            queue.attempt_deadline_seconds or queue.active_deadline_seconds,
            None,
        ),
        job_deadline_seconds=pick(spec.job_deadline_seconds, queue.job_deadline_seconds, None),
        start_timeout_seconds=pick(
            spec.start_timeout_seconds, queue.start_timeout_seconds, DEFAULT_START_TIMEOUT_SECONDS
        ),
        ttl_seconds_after_finished=pick(
            spec.ttl_seconds_after_finished, queue.ttl_seconds_after_finished, None
        ),
        priority_class_name=priority_class,
        priority=priority,
    )


def pick(job_value: T | None, queue_value: T | None, fallback: T) -> T:
    """The job's value, else the queue's, else the fallback."""
    if job_value is not None:
        return job_value
    if queue_value is not None:
        return queue_value
    return fallback
