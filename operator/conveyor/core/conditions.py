"""Conditions in the Kubernetes convention: a list keyed by type.

`lastTransitionTime` changes only when a condition's status flips, so
rewriting the same condition is a no-op and a reconcile that changes nothing
writes nothing. Every condition is written through `set_condition`, which
always sets reason, message and lastTransitionTime: the CRD requires them
(the list is a list-map keyed by type, as metav1.Condition's users have it).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from conveyor.api.v1alpha1 import MAX_CONDITION_MESSAGE, Condition, ConditionStatus


def find(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.status == "True"


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    *,
    reason: str,
    message: str,
    now: datetime.datetime,
    generation: int | None,
) -> list[Condition]:
    """Return `conditions` with `type_` set; other conditions keep their order."""
    old = find(conditions, type_)
    transition = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:MAX_CONDITION_MESSAGE],
        last_transition_time=transition,
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == type_ else c for c in conditions]


def remove(conditions: Sequence[Condition], type_: str) -> list[Condition]:
    return [c for c in conditions if c.type != type_]
