"""The public API, `conveyor.dev/v1alpha1`: BackgroundJob and JobQueue.

These pydantic models are the single source of every field: its name, type,
bounds, default and description. `conveyor.api.crd` renders the CRD YAML in
`crds/` from them (`make crds`), and a unit test fails when the committed YAML
drifts from what these models render. The operator parses objects it reads
from the API server with the same models, so what `kubectl explain` shows is
what the code reads.

Fields that a JobQueue's `defaults` may fill in carry no schema default of
their own: an unset field has to stay distinguishable from one set to the
default's value. The built-in fallbacks for them live in
`conveyor.core.effective`.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "conveyor.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

MAX_JOB_NAME_LENGTH = 52
"""Pods are named `<job>-<attempt>` and scheduled runs `<job>-<unix seconds>`;
52 characters leave room for both within the 63 of a label value."""

RESULT_BYTES = 4096
"""A container's termination message, as the kubelet bounds it (and so the operator)."""

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
CRON_SHAPE = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|\S+[ \t]+\S+[ \t]+\S+[ \t]+\S+[ \t]+\S+)$"
)
DURATION_SHAPE = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


def _cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    validation: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        validation["fieldPath"] = field_path
    return validation


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        use_attribute_docstrings=False,
    )


# ---------------------------------------------------------------- retry


class Backoff(ApiModel):
    """How long to wait before the next attempt after a failed one."""

    strategy: Literal["Exponential", "Fixed"] = Field(
        "Exponential",
        description=(
            "Exponential: initialDelaySeconds * multiplier^(n-1) after the n-th failure, "
            "capped at maxDelaySeconds. Fixed: initialDelaySeconds after every failure."
        ),
    )
    initial_delay_seconds: float = Field(
        1,
        ge=0,
        le=86400,
        description="The delay after the first failure, in seconds.",
    )
    multiplier: float = Field(
        2,
        ge=1,
        le=100,
        description="Growth factor of each further delay (Exponential only).",
    )
    max_delay_seconds: float = Field(
        3600,
        ge=0,
        le=604800,
        description="The longest delay, in seconds; must not be less than initialDelaySeconds.",
    )
    jitter: float = Field(
        0,
        ge=0,
        le=1,
        description=(
            "Random spread of each delay, as a fraction: 0.1 makes a 10s delay anything "
            "from 9s to 11s, so that many jobs failing together do not retry together."
        ),
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.maxDelaySeconds >= self.initialDelaySeconds",
                    "maxDelaySeconds must be greater than or equal to initialDelaySeconds",
                    ".maxDelaySeconds",
                )
            ]
        }
    )


class RetryPolicy(ApiModel):
    """When and how a failed attempt is tried again. Unset fields come from the
    queue's defaults, else from the built-in ones (5 attempts, exponential from 1s)."""

    max_attempts: int | None = Field(
        None,
        examples=[5],
        ge=1,
        le=1000,
        description=(
            "Attempts in all, the first included. Failures that are not the job's fault "
            "(pod evicted, preempted, deleted, node lost) do not count."
        ),
    )
    backoff: Backoff | None = Field(None, description="The delay between attempts.")
    non_retryable_exit_codes: list[Annotated[int, Field(ge=1, le=255)]] | None = Field(
        None,
        examples=[[2]],
        max_length=64,
        description=(
            "Exit codes that mean the job itself decided to fail: the job fails at once, "
            "with no further attempt."
        ),
    )
    max_disruptions: int | None = Field(
        None,
        examples=[10],
        ge=0,
        le=1000,
        description=(
            "How many times an attempt may be lost to causes that are not the job's fault "
            "(eviction, preemption, deletion, node loss) before the job fails anyway. "
            "Default 10."
        ),
    )


# ---------------------------------------------------------------- template


class ContainerShape(ApiModel):
    """A container of the pod template; every field of a Kubernetes container is allowed."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )

    name: str = Field(examples=["worker"], description="The container's name.", max_length=63)
    image: str | None = Field(
        None,
        examples=["busybox:1.36"],
        description="The container image. Use an explicit tag: `:latest` implies pulling always.",
    )


class PodSpecShape(ApiModel):
    """The pod spec each attempt runs: any Kubernetes PodSpec. Conveyor sets
    restartPolicy to Never, since an attempt that failed is retried as a new pod."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.restartPolicy) || self.restartPolicy == 'Never'",
                    "restartPolicy must be Never (or left unset): Conveyor retries a failed "
                    "attempt as a new pod, with backoff",
                    ".restartPolicy",
                )
            ],
        },
    )

    containers: list[ContainerShape] = Field(
        min_length=1,
        max_length=32,
        description="The containers of the pod; at least one.",
    )
    restart_policy: str | None = Field(
        None,
        examples=["Never"],
        description="Must be Never or unset: Conveyor retries with new pods.",
    )
    priority_class_name: str | None = Field(
        None, examples=["high"], description="Prefer spec.priorityClassName of the BackgroundJob."
    )


class PodTemplate(ApiModel):
    """A PodTemplateSpec: the labels, annotations and spec of every attempt's pod."""

    metadata: dict[str, Any] | None = Field(
        None,
        examples=[{"labels": {"app": "mailer"}}],
        description="Labels and annotations given to each attempt's pod.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    spec: PodSpecShape = Field(description="The pod spec each attempt runs.")


# ---------------------------------------------------------------- BackgroundJob


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
        description=(
            "For recurring jobs, runs that fell due while the operator was down: Skip them, "
            "RunLatest (only the most recent), or RunAll (each, up to maxMissedRuns), "
            "always within startingDeadlineSeconds."
        ),
    )
    max_missed_runs: int = Field(
        10,
        ge=1,
        le=100,
        description="For missedRunsPolicy RunAll: the most missed runs created at once.",
    )
    successful_runs_history_limit: int = Field(
        3, ge=0, le=1000, description="For recurring jobs: succeeded runs kept."
    )
    failed_runs_history_limit: int = Field(
        1, ge=0, le=1000, description="For recurring jobs: failed runs kept."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!(has(self.schedule) && has(self.every))",
                    "schedule and every are exclusive: give one of them",
                    ".every",
                ),
                _cel(
                    "!(has(self.attemptDeadlineSeconds) && has(self.activeDeadlineSeconds))",
                    "activeDeadlineSeconds is the deprecated name of attemptDeadlineSeconds: "
                    "give only attemptDeadlineSeconds",
                    ".activeDeadlineSeconds",
                ),
                _cel(
                    "!(has(self.startAt) && has(self.delaySeconds))",
                    "startAt and delaySeconds are exclusive: give one of them",
                    ".delaySeconds",
                ),
                _cel(
                    "!((has(self.schedule) || has(self.every)) && has(self.startAt))",
                    "a recurring job (schedule or every) cannot also have startAt: each run "
                    "starts at its scheduled time",
                    ".startAt",
                ),
                _cel(
                    "!((has(self.schedule) || has(self.every)) && has(self.delaySeconds))",
                    "a recurring job (schedule or every) cannot also have delaySeconds: each run "
                    "starts at its scheduled time",
                    ".delaySeconds",
                ),
                _cel(
                    "!has(self.timeZone) || has(self.schedule)",
                    "timeZone applies to schedule only",
                    ".timeZone",
                ),
                _cel(
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
ConditionStatus = Literal["True", "False", "Unknown"]


CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
MAX_CONDITION_MESSAGE = 32768


class Condition(ApiModel):
    """A condition in the Kubernetes convention (metav1.Condition): one per type, in a list
    keyed by type; reason, message and lastTransitionTime always set."""

    type: str = Field(
        examples=["Succeeded"],
        max_length=316,
        pattern=CONDITION_TYPE,
        description="Succeeded, Failed, Admitted, Blocked, InvalidSpec, ...",
    )
    status: ConditionStatus = Field(examples=["True"], description="True, False or Unknown.")
    reason: str = Field(
        examples=["Completed"],
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON,
        description="Why, in one CamelCase word, for programs.",
    )
    message: str = Field(
        examples=["attempt 1 succeeded"],
        max_length=MAX_CONDITION_MESSAGE,
        description="Why, for a person.",
    )
    last_transition_time: datetime.datetime = Field(
        examples=["2026-12-01T09:00:05Z"], description="When status last changed (RFC 3339)."
    )
    observed_generation: int | None = Field(
        None,
        examples=[1],
        ge=0,
        description="The spec generation this condition was computed from.",
    )


CONDITIONS_LIST_MAP: JsonDict = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}
"""Conditions as a list-map keyed by type, as the API conventions (and Kueue) have them:
one entry per type, merged by type under server-side apply."""


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


class BackgroundJob(ApiModel):
    """A background job: runs its pod template until it succeeds, one pod per attempt,
    retrying failures with backoff, admitted by its JobQueue."""

    api_version: str = Field(API_VERSION, description="conveyor.dev/v1alpha1")
    kind: str = Field("BackgroundJob", description="BackgroundJob")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: BackgroundJobSpec = Field(description="What to run and how.")
    status: BackgroundJobStatus = Field(
        default_factory=BackgroundJobStatus, description="What the operator observed."
    )


# ---------------------------------------------------------------- JobQueue


class RateLimit(ApiModel):
    """At most `max` pod starts in any window of `periodSeconds`."""

    max: int = Field(examples=[10], ge=1, le=100_000, description="Pod starts allowed per period.")
    period_seconds: int = Field(1, ge=1, le=86400, description="The window, in seconds.")


class JobDefaults(ApiModel):
    """Values given to the queue's jobs that leave them unset."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!(has(self.attemptDeadlineSeconds) && has(self.activeDeadlineSeconds))",
                    "activeDeadlineSeconds is the deprecated name of attemptDeadlineSeconds: "
                    "give only attemptDeadlineSeconds",
                    ".activeDeadlineSeconds",
                )
            ]
        }
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


class JobQueue(ApiModel):
    """A queue of BackgroundJobs: admits them by priority within a concurrency quota and a
    rate limit, and gives them defaults."""

    api_version: str = Field(API_VERSION, description="conveyor.dev/v1alpha1")
    kind: str = Field("JobQueue", description="JobQueue")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: JobQueueSpec = Field(default_factory=JobQueueSpec, description="Limits and defaults.")
    status: JobQueueStatus = Field(default_factory=JobQueueStatus, description="Counts by phase.")
