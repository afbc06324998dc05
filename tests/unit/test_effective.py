"""effective.resolve: the job's value, else its queue's default, else the built-in, per field."""

from __future__ import annotations

import pytest

from conveyor.api.v1alpha1 import JobDefaults
from conveyor.core import effective as eff
from tests.unit.factories import spec

QUEUE_DEFAULTS = JobDefaults.model_validate(
    {
        "retry": {
            "maxAttempts": 7,
            "backoff": {"strategy": "Fixed", "initialDelaySeconds": 9},
            "nonRetryableExitCodes": [3],
            "maxDisruptions": 4,
        },
        "activeDeadlineSeconds": 600,
        "startTimeoutSeconds": 120,
        "ttlSecondsAfterFinished": 86400,
        "priorityClassName": "normal",
    }
)
CLASSES = {"normal": 100, "high": 1000}


def test_builtin_fallbacks():
    """With nothing set anywhere: 5 attempts, exponential from 1s, 10 disruptions, 300s start."""
    result = eff.resolve(spec(), None, {})
    assert result.max_attempts == eff.DEFAULT_MAX_ATTEMPTS == 5
    assert result.backoff == eff.DEFAULT_BACKOFF
    assert result.backoff.strategy == "Exponential"
    assert result.backoff.initial_delay_seconds == 1
    assert result.non_retryable_exit_codes == frozenset()
    assert result.max_disruptions == eff.DEFAULT_MAX_DISRUPTIONS == 10
    assert result.attempt_deadline_seconds is None
    assert result.job_deadline_seconds is None
    assert result.start_timeout_seconds == eff.DEFAULT_START_TIMEOUT_SECONDS == 300
    assert result.ttl_seconds_after_finished is None
    assert result.priority_class_name is None
    assert result.priority == 0


def test_queue_defaults_fill_unset_fields():
    """A job that sets nothing takes every value from its queue's defaults."""
    result = eff.resolve(spec(), QUEUE_DEFAULTS, CLASSES)
    assert result.max_attempts == 7
    assert result.backoff.strategy == "Fixed"
    assert result.backoff.initial_delay_seconds == 9
    assert result.non_retryable_exit_codes == frozenset({3})
    assert result.max_disruptions == 4
    assert result.attempt_deadline_seconds == 600  # from the deprecated name
    assert result.start_timeout_seconds == 120
    assert result.ttl_seconds_after_finished == 86400
    assert result.priority_class_name == "normal"
    assert result.priority == 100  # from the queue's PriorityClass


def test_job_values_win_over_queue_defaults():
    """Every field the job sets wins over the queue's default."""
    job_spec = spec(
        retry={
            "maxAttempts": 2,
            "backoff": {"initialDelaySeconds": 3},
            "nonRetryableExitCodes": [5, 6],
            "maxDisruptions": 0,
        },
        activeDeadlineSeconds=30,
        startTimeoutSeconds=10,
        ttlSecondsAfterFinished=0,
        priorityClassName="high",
    )
    result = eff.resolve(job_spec, QUEUE_DEFAULTS, CLASSES)
    assert result.max_attempts == 2
    assert result.backoff.strategy == "Exponential"
    assert result.backoff.initial_delay_seconds == 3
    assert result.non_retryable_exit_codes == frozenset({5, 6})
    assert result.max_disruptions == 0  # zero is a value, not "unset"
    assert result.attempt_deadline_seconds == 30
    assert result.start_timeout_seconds == 10
    assert result.ttl_seconds_after_finished == 0
    assert result.priority_class_name == "high"
    assert result.priority == 1000


@pytest.mark.parametrize(
    ("job_retry", "field", "expected"),
    [
        ({"maxAttempts": 2}, "max_attempts", 2),
        ({"maxAttempts": 2}, "max_disruptions", 4),
        ({"maxAttempts": 2}, "non_retryable_exit_codes", frozenset({3})),
        ({"nonRetryableExitCodes": []}, "non_retryable_exit_codes", frozenset()),
        ({"maxDisruptions": 1}, "max_attempts", 7),
    ],
)
def test_retry_is_merged_field_by_field(job_retry, field, expected):
    """A job's partial retry policy takes the missing fields from the queue, one at a time."""
    result = eff.resolve(spec(retry=job_retry), QUEUE_DEFAULTS, CLASSES)
    assert getattr(result, field) == expected


def test_job_backoff_replaces_queue_backoff_whole():
    """backoff is one value: a job's backoff is not merged with the queue's."""
    result = eff.resolve(spec(retry={"backoff": {"multiplier": 3}}), QUEUE_DEFAULTS, CLASSES)
    assert result.backoff.strategy == "Exponential"
    assert result.backoff.initial_delay_seconds == 1
    assert result.backoff.multiplier == 3
    assert result.max_attempts == 7


@pytest.mark.parametrize(
    ("fields", "defaults", "expected"),
    [
        ({"priority": 5, "priorityClassName": "high"}, None, 5),  # explicit priority wins
        ({"priority": 0, "priorityClassName": "high"}, None, 0),  # even 0
        ({"priorityClassName": "high"}, None, 1000),  # from its PriorityClass
        ({"priorityClassName": "unknown"}, None, 0),  # a class that does not exist
        ({}, QUEUE_DEFAULTS, 100),  # the queue's default PriorityClass
        ({"priority": -3}, QUEUE_DEFAULTS, -3),
        ({}, None, 0),
    ],
)
def test_priority(fields, defaults, expected):
    """priority, else the value of the (job's or queue's) PriorityClass, else 0."""
    assert eff.resolve(spec(**fields), defaults, CLASSES).priority == expected


def test_pick():
    """pick takes the job's value, else the queue's, else the fallback; falsy values count."""
    assert eff.pick(0, 5, 9) == 0
    assert eff.pick(None, 0, 9) == 0
    assert eff.pick(None, None, 9) == 9
    assert eff.pick([], [1], [2]) == []


def test_deadlines_by_their_names():
    """attemptDeadlineSeconds (or its deprecated name activeDeadlineSeconds) bounds each
    attempt, jobDeadlineSeconds the whole job; each the job's, else the queue's."""
    queue = JobDefaults.model_validate({"attemptDeadlineSeconds": 60, "jobDeadlineSeconds": 3600})
    result = eff.resolve(spec(), queue, {})
    assert (result.attempt_deadline_seconds, result.job_deadline_seconds) == (60, 3600)
    result = eff.resolve(spec(attemptDeadlineSeconds=5, jobDeadlineSeconds=50), queue, {})
    assert (result.attempt_deadline_seconds, result.job_deadline_seconds) == (5, 50)
    result = eff.resolve(spec(activeDeadlineSeconds=7), queue, {})
    assert result.attempt_deadline_seconds == 7
