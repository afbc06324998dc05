"""The pod template of a job: the pod each attempt runs, checked only where Conveyor cares.

Any field of a Kubernetes PodSpec or container is allowed and kept
(x-kubernetes-preserve-unknown-fields); the API server checks the pod when
it is created. Only what Conveyor relies on is described: at least one
container, and a restartPolicy of Never.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from conveyor.api.v1alpha1.base import ApiModel, cel


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
                cel(
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
