"""A BackgroundJob's spec: what to run, where to queue it, how to retry, delay, schedule, chain it.

Fields that a JobQueue's `defaults` may fill in carry no schema default of
their own (see the package's docstring); the rules between fields (exclusive
pairs, what a recurring job cannot have) are CEL rules on the spec.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from conveyor.api.v1alpha1.base import (
    CRON_SHAPE,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    DURATION_SHAPE,
    UNSTORED,
    ApiModel,
    cel,
    one_attempt_deadline,
)
from conveyor.api.v1alpha1.retry import RetryPolicy
from conveyor.api.v1alpha1.template import PodTemplate


class BackgroundJobSpec(ApiModel):
    """What to run, where to queue it, and how to retry, delay, schedule or chain it."""

    queue: str | None = Field(
        None,
        examples=["email"],
        max_length=63,
        pattern=DNS_LABEL,
        description=(
            "The JobQueue of this namespace that admits this job (its concurrency, rate "
            "limit, pause and defaults apply). Unset: the job runs at once, without limits."
        ),
    )
    priority: int | None = Field(
        None,
        examples=[10],
        ge=-1_000_000_000,
        le=1_000_000_000,
        description=(
            "Higher runs first within the queue. Unset: the value of priorityClassName's "
            "PriorityClass, else 0. Equal priorities run oldest first."
        ),
    )
    priority_class_name: str | None = Field(
        None,
        examples=["high"],
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description=(
            "PriorityClass given to each attempt's pod, so that the scheduler orders and "
            "preempts by it; also orders the queue when priority is unset."
        ),
    )
    template: PodTemplate = Field(description="The pod each attempt runs (a PodTemplateSpec).")
    retry: RetryPolicy | None = Field(None, description="Attempts, backoff and exit codes.")
    attempt_deadline_seconds: int | None = Field(
        None,
        examples=[600],
        ge=1,
        le=31_536_000,
        description=(
            "Per attempt: each attempt's pod is stopped after this many seconds running (it "
            "becomes the pod's own activeDeadlineSeconds) and the attempt fails as "
            "DeadlineExceeded, counted and retried like any failure. Unset: no limit."
        ),
    )
    job_deadline_seconds: int | None = Field(
        None,
        examples=[3600],
        ge=1,
        le=31_536_000,
        description=(
            "For the whole job, like batch/v1's activeDeadlineSeconds: at most this many "
            "seconds from the first attempt's start (status.startTime), retries and backoff "
            "included. When it runs out the running attempt's pod is deleted and the job fails "
            "with reason DeadlineExceeded, no further attempt. Unset: no limit."
        ),
    )
    active_deadline_seconds: int | None = Field(
        None,
        examples=[600],
        ge=1,
        le=31_536_000,
        description=(
            "Deprecated: use attemptDeadlineSeconds, which it means (per attempt, unlike "
            "batch/v1's job-wide field of this name; jobDeadlineSeconds is that one). Still "
            "honoured, with a Warning event and a Deprecated condition; removed in v1beta1."
        ),
    )
    start_timeout_seconds: int | None = Field(
        None,
        examples=[120],
        ge=1,
        le=86400,
        description=(
            "How long an attempt's pod may stay unstarted (unschedulable, image not pulled) "
            "before the attempt fails with that reason. Default 300."
        ),
    )
    start_at: datetime.datetime | None = Field(
        None,
        examples=["2026-12-01T09:00:00Z"],
        description="Do not start before this time (RFC 3339). Exclusive with delaySeconds.",
    )
    delay_seconds: int | None = Field(
        None,
        examples=[3600],
        ge=0,
        le=31_536_000,
        description="Do not start until this many seconds after the job was created.",
    )
    depends_on: list[Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN)]] | None = Field(
        None,
        examples=[["charge-payment-123"]],
        max_length=64,
        description=(
            "BackgroundJobs of this namespace that must succeed before this one starts. "
            "If one of them fails for good, this job fails with reason DependencyFailed."
        ),
    )
    ttl_seconds_after_finished: int | None = Field(
        None,
        examples=[86400],
        ge=0,
        le=31_536_000,
        description="Delete the job (and its pods) this many seconds after it finished.",
    )
    suspend: bool = Field(
        False,
        description="true: start no new attempt (a running one goes on); false again continues.",
    )
    schedule: str | None = Field(
        None,
        examples=["0 9 * * *"],
        max_length=128,
        pattern=CRON_SHAPE,
        description=(
            "Makes this a recurring job: a cron expression (five fields, or @hourly, "
            "@daily, ...). Each run is a child BackgroundJob named <job>-<unix time>."
        ),
    )
    every: str | None = Field(
        None,
        examples=["30s"],
        max_length=32,
        pattern=DURATION_SHAPE,
        description="Makes this a recurring job run at a fixed interval, such as 30s or 1h30m.",
    )
    time_zone: str | None = Field(
        None,
        examples=["Europe/Berlin"],
        max_length=64,
        pattern=r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$",
        description="IANA time zone of schedule, such as Europe/Berlin. Default UTC.",
    )
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = Field(
        "Allow",
        json_schema_extra=UNSTORED,
        description=(
            "For recurring jobs, when a run is due while the previous one is still active: "
            "Allow runs both, Forbid skips the new run, Replace deletes the active run."
        ),
    )
    starting_deadline_seconds: int | None = Field(
        None,
        examples=[300],
        ge=1,
        le=31_536_000,
        description=(
            "For recurring jobs: a run not created within this many seconds of its time is skipped."
        ),
    )
    missed_runs_policy: Literal["Skip", "RunLatest", "RunAll"] = Field(
        "RunLatest",
        json_schema_extra=UNSTORED,
        description=(
            "For recurring jobs, runs that fell due while the operator was down: Skip them, "
            "RunLatest (only the most recent), or RunAll (each, up to maxMissedRuns), "
            "always within startingDeadlineSeconds."
        ),
    )
    max_missed_runs: int = Field(
        10,
        json_schema_extra=UNSTORED,
        ge=1,
        le=100,
        description="For missedRunsPolicy RunAll: the most missed runs created at once.",
    )
    successful_runs_history_limit: int = Field(
        3,
        ge=0,
        le=1000,
        json_schema_extra=UNSTORED,
        description="For recurring jobs: succeeded runs kept.",
    )
    failed_runs_history_limit: int = Field(
        1,
        ge=0,
        le=1000,
        json_schema_extra=UNSTORED,
        description="For recurring jobs: failed runs kept.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.schedule) && has(self.every))",
                    "schedule and every are exclusive: give one of them",
                    ".every",
                ),
                one_attempt_deadline(),
                cel(
                    "!(has(self.startAt) && has(self.delaySeconds))",
                    "startAt and delaySeconds are exclusive: give one of them",
                    ".delaySeconds",
                ),
                cel(
                    "!((has(self.schedule) || has(self.every)) && has(self.startAt))",
                    "a recurring job (schedule or every) cannot also have startAt: each run "
                    "starts at its scheduled time",
                    ".startAt",
                ),
                cel(
                    "!((has(self.schedule) || has(self.every)) && has(self.delaySeconds))",
                    "a recurring job (schedule or every) cannot also have delaySeconds: each run "
                    "starts at its scheduled time",
                    ".delaySeconds",
                ),
                cel(
                    "!has(self.timeZone) || has(self.schedule)",
                    "timeZone applies to schedule only",
                    ".timeZone",
                ),
                cel(
                    "!has(self.every) || duration(self.every) >= duration('1s')",
                    "every must be at least 1s",
                    ".every",
                ),
            ]
        }
    )

    @property
    def is_recurring(self) -> bool:
        return self.schedule is not None or self.every is not None
