"""The two kinds of conveyor.dev/v1alpha1, whole: BackgroundJob and JobQueue."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from conveyor.api.v1alpha1.base import API_VERSION, ApiModel
from conveyor.api.v1alpha1.job_spec import BackgroundJobSpec
from conveyor.api.v1alpha1.job_status import BackgroundJobStatus
from conveyor.api.v1alpha1.queue import JobQueueSpec, JobQueueStatus


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


class JobQueue(ApiModel):
    """A queue of BackgroundJobs: admits them by priority within a concurrency quota and a
    rate limit, and gives them defaults."""

    api_version: str = Field(API_VERSION, description="conveyor.dev/v1alpha1")
    kind: str = Field("JobQueue", description="JobQueue")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: JobQueueSpec = Field(default_factory=JobQueueSpec, description="Limits and defaults.")
    status: JobQueueStatus = Field(default_factory=JobQueueStatus, description="Counts by phase.")
