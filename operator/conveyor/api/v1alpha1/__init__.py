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

The version is this package, and everything of it is imported from here
(`from conveyor.api.v1alpha1 import BackgroundJobStatus`); its modules hold
the parts, one each: `base` (group, version, shared limits and patterns, the
models' base), `retry`, `template` (the pod template), `job_spec`,
`condition`, `job_status`, `queue` (a JobQueue's spec and status) and
`kinds` (the two kinds, whole).
"""

from __future__ import annotations

from conveyor.api.v1alpha1.base import (
    API_VERSION,
    CRON_SHAPE,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    DURATION_SHAPE,
    GROUP,
    MAX_JOB_NAME_LENGTH,
    RESULT_BYTES,
    VERSION,
    ApiModel,
)
from conveyor.api.v1alpha1.condition import (
    CONDITION_REASON,
    CONDITION_TYPE,
    CONDITIONS_LIST_MAP,
    MAX_CONDITION_MESSAGE,
    Condition,
    ConditionStatus,
)
from conveyor.api.v1alpha1.job_spec import BackgroundJobSpec
from conveyor.api.v1alpha1.job_status import (
    AttemptRecord,
    AttemptResult,
    BackgroundJobStatus,
    Phase,
)
from conveyor.api.v1alpha1.kinds import BackgroundJob, JobQueue
from conveyor.api.v1alpha1.queue import JobDefaults, JobQueueSpec, JobQueueStatus, RateLimit
from conveyor.api.v1alpha1.retry import Backoff, RetryPolicy
from conveyor.api.v1alpha1.template import ContainerShape, PodSpecShape, PodTemplate

__all__ = [
    "API_VERSION",
    "CONDITIONS_LIST_MAP",
    "CONDITION_REASON",
    "CONDITION_TYPE",
    "CRON_SHAPE",
    "DNS_LABEL",
    "DNS_SUBDOMAIN",
    "DURATION_SHAPE",
    "GROUP",
    "MAX_CONDITION_MESSAGE",
    "MAX_JOB_NAME_LENGTH",
    "RESULT_BYTES",
    "VERSION",
    "ApiModel",
    "AttemptRecord",
    "AttemptResult",
    "BackgroundJob",
    "BackgroundJobSpec",
    "BackgroundJobStatus",
    "Backoff",
    "Condition",
    "ConditionStatus",
    "ContainerShape",
    "JobDefaults",
    "JobQueue",
    "JobQueueSpec",
    "JobQueueStatus",
    "Phase",
    "PodSpecShape",
    "PodTemplate",
    "RateLimit",
    "RetryPolicy",
]
