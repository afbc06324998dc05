"""Actions a person asks for with kubectl alone: an annotation the operator takes once.

    kubectl annotate bgj NAME conveyor.dev/promote="$(date +%s)" --overwrite

Each action has its annotation and a status field holding the annotation's
value the operator last acted on (`conveyor.dev/replay` and
`status.replayed` were the first). A value the status does not hold yet is
taken once: acted on if the job is in a state the action applies to, or
ignored with an event saying why; either way the status records it, so
neither a second look nor a restart acts twice, and the API server holds
all of it. Any new value asks again; clients (`kubectl conveyor`, the
dashboard) write a fresh `token()`.

- replay: a Failed job is sent through again (`steering`).
- promote: a Delayed or BackingOff job is ready to start now; its queue's
  limits still apply (`steering`).
- cancel: a waiting or running job fails with reason Cancelled, its running
  pod deleted, no more attempts (`steering`).
- run-now: a recurring job creates a run now, named as its schedule would
  name one for this moment and labelled manual (`recurring`).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.api.v1alpha1 import BackgroundJobStatus
from conveyor.core import naming


@dataclass(frozen=True)
class Action:
    name: str
    annotation: str
    status_field: str
    """The BackgroundJobStatus attribute holding the value last acted on."""

    def asked(self, annotations: Mapping[str, str], status: BackgroundJobStatus) -> str | None:
        """The annotation's value, if it asks for something not done yet."""
        value = annotations.get(self.annotation)
        if not value or value == getattr(status, self.status_field):
            return None
        return value

    def how(self, value: str) -> str:
        """The request, as events quote it."""
        return f"{self.annotation}={value}"

    def patch(self, value: str) -> dict[str, Any]:
        """The merge patch that asks for this action."""
        return {"metadata": {"annotations": {self.annotation: value}}}


PROMOTABLE = ("Delayed", "BackingOff")
TERMINAL = ("Succeeded", "Failed")


def refusal(action: Action, phase: str | None, *, recurring: bool) -> str | None:
    """Why `action` does not apply to a job in `phase` (None: it applies), as the event that
    ignores it says, and as a client can say before it asks."""
    shown = phase or "Pending"
    if action is RUN_NOW:
        if recurring:
            return None
        return (
            "only a recurring job (spec.schedule or spec.every) runs now; "
            "promote a Delayed or BackingOff job instead"
        )
    if recurring:
        return f"a recurring job runs nothing itself; {action.name} its runs"
    if action is REPLAY and phase != "Failed":
        return f"only a Failed job can be replayed, this one is {shown}"
    if action is PROMOTE and phase not in PROMOTABLE:
        return f"only a Delayed or BackingOff job can be promoted, this one is {shown}"
    if action is CANCEL and phase in TERMINAL:
        return f"the job has {shown} already"
    return None


REPLAY = Action("replay", naming.ANNOTATION_REPLAY, "replayed")
PROMOTE = Action("promote", naming.ANNOTATION_PROMOTE, "promoted")
CANCEL = Action("cancel", naming.ANNOTATION_CANCEL, "cancelled")
RUN_NOW = Action("run-now", naming.ANNOTATION_RUN_NOW, "ran_now")
ALL = (REPLAY, PROMOTE, CANCEL, RUN_NOW)


def token(now: datetime.datetime) -> str:
    """A fresh value to ask with: the moment, to the millisecond (as `date +%s` is, to the
    second), so that two requests a moment apart are two requests."""
    return naming.format_time(now)


def pause_patch(paused: bool) -> dict[str, Any]:
    """The merge patch that pauses or resumes a JobQueue."""
    return {"spec": {"paused": paused}}
