"""A BackgroundJob's status: its phase, its attempts and their history, as the operator saw them."""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import Field

from conveyor.api.v1alpha1.base import RESULT_BYTES, ApiModel
from conveyor.api.v1alpha1.condition import CONDITIONS_LIST_MAP, Condition

Phase = Literal[
    "Pending",
    "Blocked",
    "Delayed",
    "Queued",
    "Running",
    "BackingOff",
    "Succeeded",
    "Failed",
    "Scheduled",
]

AttemptResult = Literal["Succeeded", "Failed", "Disrupted"]


class AttemptRecord(ApiModel):
    """One attempt of the job: its pod, when it ran, and how it ended."""

    attempt: int = Field(
        examples=[2], description="The attempt's number, from 1; also the pod's name suffix."
    )
    pod_name: str | None = Field(
        None, examples=["send-confirmation-123-2"], description="The attempt's pod."
    )
    start_time: datetime.datetime | None = Field(
        None, examples=["2026-12-01T09:00:01Z"], description="When its pod was created."
    )
    finished_at: datetime.datetime | None = Field(
        None, examples=["2026-12-01T09:00:03Z"], description="When it ended."
    )
    result: AttemptResult | None = Field(
        None,
        examples=["Failed"],
        description=(
            "Succeeded; Failed (counts against maxAttempts); Disrupted (lost through no "
            "fault of the job: evicted, preempted, deleted, node lost; does not count)."
        ),
    )
    reason: str | None = Field(
        None,
        examples=["Error"],
        description="Error, OOMKilled, DeadlineExceeded, Evicted, ImagePullBackOff, ...",
    )
    exit_code: int | None = Field(
        None, examples=[1], description="The worker container's exit code."
    )
    message: str | None = Field(
        None,
        examples=["SMTP 421: try again later"],
        description="What the pod or container reported.",
    )
    log_tail: str | None = Field(
        None,
        examples=["connecting to smtp:25\nrefused"],
        description="The last lines of the worker container's log (failures only).",
    )
    output: str | None = Field(
        None,
        max_length=RESULT_BYTES,
        description=(
            "The worker container's termination message: what it wrote to "
            "/dev/termination-log (its terminationMessagePath), at most 4096 bytes as "
            "Kubernetes keeps it. The output of the attempt that succeeded is also the "
            "job's status.result."
        ),
    )


class BackgroundJobStatus(ApiModel):
    """What the operator observed and decided. Written by the operator only."""

    phase: Phase | None = Field(
        None,
        examples=["BackingOff"],
        description=(
            "Pending (not looked at yet, or its queue is missing), Blocked (waiting for "
            "dependsOn), Delayed (waiting for startAt), Queued (waiting for its queue), "
            "Running, BackingOff (waiting to retry), Succeeded, Failed. A recurring job is "
            "Scheduled between runs and Running while a run is active."
        ),
    )
    attempts: int = Field(
        0, examples=[2], ge=0, description="Attempts started so far, disrupted ones included."
    )
    failures: int = Field(
        0,
        examples=[2],
        ge=0,
        description="Failed attempts that count against maxAttempts (since the last replay).",
    )
    disruptions: int = Field(
        0,
        examples=[0],
        ge=0,
        description=(
            "Attempts lost through no fault of the job, not counted (since the last replay)."
        ),
    )
    attempts_summary: str | None = Field(
        None,
        examples=["2/5"],
        description="Counted attempts over maxAttempts, as shown by kubectl get: 2/5.",
    )
    pod_name: str | None = Field(
        None, examples=["send-confirmation-123-2"], description="The pod of the latest attempt."
    )
    start_time: datetime.datetime | None = Field(
        None,
        examples=["2026-12-01T09:00:00Z"],
        description=(
            "When the first attempt started (since the last replay); jobDeadlineSeconds "
            "counts from here."
        ),
    )
    completion_time: datetime.datetime | None = Field(
        None,
        examples=["2026-12-01T09:00:09Z"],
        description="When the job succeeded or failed for good.",
    )
    next_attempt_at: datetime.datetime | None = Field(
        None,
        examples=["2026-12-01T09:00:05Z"],
        description="When the next attempt may start (BackingOff, Delayed).",
    )
    last_failure: AttemptRecord | None = Field(
        None, description="The latest failed attempt, with its exit code and log tail."
    )
    result: str | None = Field(
        None,
        max_length=RESULT_BYTES,
        description=(
            "The job's result, like BullMQ's returnvalue: the termination message of the "
            "attempt that succeeded (what its worker wrote to /dev/termination-log, at most "
            "4096 bytes). Unset until the job succeeds, and when the worker wrote nothing."
        ),
    )
    history: list[AttemptRecord] = Field(
        default_factory=list,
        max_length=20,
        description="The latest attempts, oldest first, at most 20.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Succeeded and Failed (terminal), Admitted, Blocked, QueueNotFound, InvalidSpec, "
            "Suspended, Deprecated; one per type."
        ),
        json_schema_extra=CONDITIONS_LIST_MAP,
    )
    observed_generation: int | None = Field(
        None, examples=[1], description="The spec generation the operator last acted on."
    )
    replayed: str | None = Field(
        None,
        examples=["1764579600"],
        description=(
            "The value of the conveyor.dev/replay annotation last acted on: a failed job "
            "is sent through again once per new value."
        ),
    )
    promoted: str | None = Field(
        None,
        description=(
            "The value of the conveyor.dev/promote annotation last acted on: a Delayed or "
            "BackingOff job becomes ready to start at once (its queue's limits still apply), "
            "once per new value."
        ),
    )
    ran_now: str | None = Field(
        None,
        description=(
            "The value of the conveyor.dev/run-now annotation last acted on: a recurring job "
            "creates a run at once (labelled conveyor.dev/manual=true), once per new value."
        ),
    )
    cancelled: str | None = Field(
        None,
        description=(
            "The value of the conveyor.dev/cancel annotation last acted on: a waiting or "
            "running job fails with reason Cancelled (its running pod is deleted), once per "
            "new value."
        ),
    )
    queue_order: str | None = Field(
        None,
        examples=["-000000010.1764579600.send-confirmation-123"],
        description=(
            "While Queued: a key that sorts the queue's waiting line in start order "
            "(kubectl get bgj --sort-by=.status.queueOrder)."
        ),
    )
    last_schedule_time: datetime.datetime | None = Field(
        None,
        examples=["2026-12-01T09:00:00Z"],
        description="Recurring jobs: the scheduled time of the latest run created.",
    )
    next_schedule_time: datetime.datetime | None = Field(
        None,
        examples=["2026-12-02T09:00:00Z"],
        description="Recurring jobs: the next scheduled time.",
    )
    active: list[str] = Field(
        examples=[["nightly-report-1764579600"]],
        default_factory=list,
        max_length=1000,
        description="Recurring jobs: the runs not finished yet.",
    )
    active_count: int | None = Field(
        None,
        examples=[1],
        ge=0,
        description="Recurring jobs: how many runs are not finished yet (kubectl get's Active).",
    )
