"""Deprecated fields: still honoured, and said so, until the version that removes them.

A field renamed in the API keeps working under its old name for the rest of
`v1alpha1`, so no manifest breaks on an upgrade; an object that uses it gets
a `Deprecated` condition naming the new field (and, on a job, a Warning
event when the condition appears). `docs/api-versions.md` lists what
`v1beta1` drops.

`spec.activeDeadlineSeconds` is the first: it was always per attempt, where
batch/v1's field of that name is job-wide, so it became
`attemptDeadlineSeconds` beside the job-wide `jobDeadlineSeconds`.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from conveyor.api.v1alpha1 import BackgroundJobSpec, Condition, JobDefaults
from conveyor.core import conditions

CONDITION = "Deprecated"
REASON = "DeprecatedField"


def in_job(spec: BackgroundJobSpec) -> str | None:
    """What a job's spec uses that is deprecated, as a message; None when nothing."""
    if spec.active_deadline_seconds is None:
        return None
    return _message("spec.")


def in_defaults(defaults: JobDefaults | None) -> str | None:
    """The same for a JobQueue's spec.defaults."""
    if defaults is None or defaults.active_deadline_seconds is None:
        return None
    return _message("spec.defaults.")


def _message(prefix: str) -> str:
    return (
        f"{prefix}activeDeadlineSeconds is deprecated and will be removed in v1beta1: it is per "
        f"attempt (unlike batch/v1's job-wide field of that name); use "
        f"{prefix}attemptDeadlineSeconds, which means the same (jobDeadlineSeconds bounds "
        "the whole job)"
    )


def with_condition(
    conds: Sequence[Condition],
    message: str | None,
    *,
    now: datetime.datetime,
    generation: int | None,
) -> list[Condition]:
    """`conds` with the Deprecated condition set to `message`, or without it (None)."""
    if message is None:
        return conditions.remove(conds, CONDITION)
    return conditions.set_condition(
        conds, CONDITION, "True", reason=REASON, message=message, now=now, generation=generation
    )
