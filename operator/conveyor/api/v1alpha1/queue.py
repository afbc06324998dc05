"""A JobQueue's spec and status: the gate its jobs pass, the defaults it gives them, its counts."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from conveyor.api.v1alpha1.base import DNS_SUBDOMAIN, ApiModel, one_attempt_deadline
from conveyor.api.v1alpha1.condition import CONDITIONS_LIST_MAP, Condition
from conveyor.api.v1alpha1.retry import RetryPolicy


class RateLimit(ApiModel):
    """At most `max` pod starts in any window of `periodSeconds`."""

    max: int = Field(examples=[10], ge=1, le=100_000, description="Pod starts allowed per period.")
    period_seconds: int = Field(1, ge=1, le=86400, description="The window, in seconds.")


class JobDefaults(ApiModel):
    """Values given to the queue's jobs that leave them unset."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [one_attempt_deadline()]}
    )

    retry: RetryPolicy | None = Field(None, description="Attempts, backoff and exit codes.")
    attempt_deadline_seconds: int | None = Field(
        None,
        examples=[600],
        ge=1,
        le=31_536_000,
        description="Per attempt: the jobs' attemptDeadlineSeconds.",
    )
    job_deadline_seconds: int | None = Field(
        None,
        examples=[3600],
        ge=1,
        le=31_536_000,
        description="For the whole job: the jobs' jobDeadlineSeconds.",
    )
    active_deadline_seconds: int | None = Field(
        None,
        examples=[600],
        ge=1,
        le=31_536_000,
        description=(
            "Deprecated: use attemptDeadlineSeconds, which it means (per attempt); the queue "
            "shows a Deprecated condition while it is set; removed in v1beta1."
        ),
    )
    start_timeout_seconds: int | None = Field(
        None, examples=[120], ge=1, le=86400, description="How long a pod may stay unstarted."
    )
    ttl_seconds_after_finished: int | None = Field(
        None,
        examples=[86400],
        ge=0,
        le=31_536_000,
        description="Delete finished jobs after this many seconds.",
    )
    priority_class_name: str | None = Field(
        None,
        examples=["normal"],
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="PriorityClass for the pods.",
    )


class JobQueueSpec(ApiModel):
    """The gate a queue's jobs pass through: how many run at once, how fast they start."""

    concurrency: int | None = Field(
        None,
        examples=[5],
        ge=1,
        le=1_000_000,
        description=(
            "At most this many of the queue's jobs have a live pod at once. Unset: no limit."
        ),
    )
    rate_limit: RateLimit | None = Field(None, description="At most max pod starts per period.")
    paused: bool = Field(
        False, description="true: admit nothing new; running jobs finish. false: resume."
    )
    defaults: JobDefaults | None = Field(
        None, description="Given to its jobs that leave them unset."
    )


class JobQueueStatus(ApiModel):
    """Counts of the queue's jobs by phase, as last observed."""

    pending: int = Field(
        0, examples=[12], description="Jobs waiting for admission (Queued or Pending)."
    )
    delayed: int = Field(
        0, examples=[3], description="Jobs waiting for a time (Delayed, BackingOff)."
    )
    blocked: int = Field(0, examples=[1], description="Jobs waiting for their dependencies.")
    running: int = Field(0, examples=[5], description="Jobs with a live pod.")
    succeeded: int = Field(0, examples=[140], description="Jobs that succeeded (and still exist).")
    failed: int = Field(0, examples=[2], description="Jobs that failed for good (and still exist).")
    oldest_pending_seconds: int | None = Field(
        None, examples=[42], description="How long the oldest waiting job has waited, in seconds."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Ready: the queue admits jobs; Deprecated: its spec uses a deprecated field.",
        json_schema_extra=CONDITIONS_LIST_MAP,
    )
    observed_generation: int | None = Field(
        None, examples=[1], description="The spec generation last seen."
    )
