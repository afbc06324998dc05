"""Conditions in the Kubernetes convention, as a job's and a queue's status both carry them."""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import Field
from pydantic.config import JsonDict

from conveyor.api.v1alpha1.base import ApiModel

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
