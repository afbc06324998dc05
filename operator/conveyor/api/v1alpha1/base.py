"""What every model of conveyor.dev/v1alpha1 shares: the group and version, limits, patterns.

`ApiModel` is the base of every model (camelCase on the wire, snake_case in
Python, frozen); `cel` writes an x-kubernetes-validations rule; the patterns
and limits are the ones more than one field is checked against.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
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


UNSTORED_DEFAULT = "x-conveyor-unstored-default"
"""Marks a field whose default the operator applies when it reads the job (the model's
default), and the CRD leaves out of its schema: a schema default is stored in every object
and its managed fields, and costs the API server on every later write of it. Its
description says the default instead (`crd`)."""

UNSTORED: JsonDict = {UNSTORED_DEFAULT: True}


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    validation: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        validation["fieldPath"] = field_path
    return validation


def one_attempt_deadline() -> JsonDict:
    """The rule for a spec that takes the per-attempt deadline under both its names (the job's
    and the queue's defaults): activeDeadlineSeconds is the deprecated one."""
    return cel(
        "!(has(self.attemptDeadlineSeconds) && has(self.activeDeadlineSeconds))",
        "activeDeadlineSeconds is the deprecated name of attemptDeadlineSeconds: "
        "give only attemptDeadlineSeconds",
        ".activeDeadlineSeconds",
    )


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        use_attribute_docstrings=False,
    )
