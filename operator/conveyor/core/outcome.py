"""What an attempt's pod means for the job: still going, succeeded, failed, or lost.

The distinction that matters is *whose fault* a failure is. A container that
exits non-zero, is OOM-killed or runs past its deadline failed because of the
job, and that counts against `maxAttempts`. A pod that was evicted, preempted,
deleted by someone, rejected by the kubelet at admission or lost with its
node failed through no fault of the job: it is retried at once, counted in a
bound of its own (`maxDisruptions`), like the Job controller's
`podFailurePolicy` with `DisruptionTarget`.

A pod that never starts (its image cannot be pulled, no node fits it) would
otherwise wait forever; after the start timeout the attempt fails with the
reason the pod reported.

`PodView` is the few facts of a pod this needs, so the rules are tested
without Kubernetes objects; `conveyor.runtime.records` builds it from a pod.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

DISRUPTION_POD_REASONS = frozenset(
    {
        "Evicted",
        "Preempting",
        "NodeLost",
        "Terminated",
        "Shutdown",
        "NodeShutdown",
        "UnexpectedAdmissionError",
        "OutOfcpu",
        "OutOfmemory",
        "OutOfpods",
        "NodeAffinity",
        "NodeSelectorMismatching",
        "TaintToleration",
    }
)
"""`pod.status.reason` values set by the kubelet or the node lifecycle, not by the job."""

STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})


@dataclass(frozen=True, slots=True)
class PodView:
    """The facts of one attempt's pod that decide its outcome."""

    name: str
    attempt: int
    phase: str
    created_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    deleting: bool = False
    reason: str | None = None
    message: str | None = None
    exit_code: int | None = None
    container_reason: str | None = None
    container_message: str | None = None
    """The worker container's termination message (/dev/termination-log): its result."""
    waiting_reason: str | None = None
    waiting_message: str | None = None
    disruption_reason: str | None = None
    unschedulable_message: str | None = None
    log_tail: str | None = None
    gone: bool = False
    """Deleted, and this is its last state: the operator remembers it because the job's
    status had not recorded its attempt yet."""

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def live(self) -> bool:
        """Holds a slot of its queue: not finished (terminating pods still run)."""
        return not self.terminal and not self.gone


Kind = Literal["Running", "Succeeded", "Failed", "Disrupted"]


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    reason: str | None = None
    exit_code: int | None = None
    message: str | None = None
    final: bool = False
    """Failed and not to be retried (a non-retryable exit code)."""
    finished_at: datetime.datetime | None = None
    start_deadline: datetime.datetime | None = None
    """While Running but not started: when the attempt gives up waiting."""


def classify(
    pod: PodView | None,
    *,
    now: datetime.datetime,
    non_retryable_exit_codes: frozenset[int],
    start_timeout_seconds: int,
) -> Outcome:
    """The outcome of the current attempt, given its pod (None: the pod is gone)."""
    if pod is None or (pod.gone and not pod.terminal):
        return Outcome(
            "Disrupted",
            reason="PodDeleted",
            message="the attempt's pod was deleted before it finished",
            finished_at=now,
        )
    finished_at = pod.finished_at or now
    if pod.phase == "Succeeded":
        return Outcome("Succeeded", reason="Completed", exit_code=0, finished_at=finished_at)
    if pod.phase == "Failed":
        if pod.disruption_reason or pod.reason in DISRUPTION_POD_REASONS:
            return Outcome(
                "Disrupted",
                reason=pod.disruption_reason or pod.reason,
                message=pod.message,
                finished_at=finished_at,
            )
        if pod.reason == "DeadlineExceeded":
            return Outcome(
                "Failed",
                reason="DeadlineExceeded",
                exit_code=pod.exit_code,
                message=pod.message or "the attempt ran past attemptDeadlineSeconds",
                finished_at=finished_at,
            )
        final = pod.exit_code is not None and pod.exit_code in non_retryable_exit_codes
        return Outcome(
            "Failed",
            reason=pod.container_reason or pod.reason or "Error",
            exit_code=pod.exit_code,
            message=pod.container_message or pod.message,
            final=final,
            finished_at=finished_at,
        )
    started = pod.phase in {"Running", "Unknown"}
    if started or pod.deleting or pod.created_at is None:
        return Outcome("Running")
    deadline = pod.created_at + datetime.timedelta(seconds=start_timeout_seconds)
    if now < deadline:
        return Outcome("Running", start_deadline=deadline)
    if pod.waiting_reason and pod.waiting_reason not in STARTING_REASONS:
        reason, message = pod.waiting_reason, pod.waiting_message
    elif pod.unschedulable_message is not None:
        reason, message = "Unschedulable", pod.unschedulable_message
    else:
        reason, message = "StartTimeout", None
    return Outcome(
        "Failed",
        reason=reason,
        message=(
            f"the pod did not start within {start_timeout_seconds}s"
            + (f": {message}" if message else "")
        ),
        finished_at=now,
    )
