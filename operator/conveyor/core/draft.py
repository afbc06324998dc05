"""The status a step of the job's state machine is building, with what its transitions produce.

Every part of `lifecycle.step` (following the attempt, the job's deadline,
the person's requests, the way to the next start) writes into one `Draft`:
the status's values, its conditions (an event on each that turns true), the
attempt history (at most HISTORY_LIMIT records) and the actions for the
runtime. `decide` turns it into the `Decision` the step returns. The moves
more than one part makes (record how an attempt ended, fail the job for
good, the decision of a finished job with its TTL) are the draft's methods,
so that each is written once.
"""

from __future__ import annotations

import datetime
from typing import Literal

from conveyor.api.v1alpha1 import AttemptRecord, BackgroundJobStatus, Condition
from conveyor.core import conditions
from conveyor.core.decisions import Action, Decision, DeleteJob, Event, EventType
from conveyor.core.effective import Effective

HISTORY_LIMIT = 20


class Draft:
    """The status being built, with the events its transitions produce."""

    def __init__(
        self, status: BackgroundJobStatus, generation: int | None, now: datetime.datetime
    ) -> None:
        self.generation = generation
        self.now = now
        self.values = status.model_dump()
        self.values["conditions"] = list(status.conditions)
        self.values["history"] = list(status.history)
        self.values["observed_generation"] = generation
        self.events: list[Event] = []
        self.actions: list[Action] = []

    @property
    def phase(self) -> str | None:
        phase: str | None = self.values["phase"]
        return phase

    def set(self, **values: object) -> None:
        self.values.update(values)

    def condition(
        self,
        type_: str,
        status: Literal["True", "False"],
        reason: str,
        message: str,
        *,
        event: EventType | None = None,
    ) -> None:
        current: list[Condition] = self.values["conditions"]
        old = conditions.find(current, type_)
        # A new reason is a new finding (Blocked: waiting, then a cycle): it gets its event too.
        already = old is not None and old.status == "True" and old.reason == reason
        if status == "False" and old is None:
            return
        self.values["conditions"] = conditions.set_condition(
            current,
            type_,
            status,
            reason=reason,
            message=message,
            now=self.now,
            generation=self.generation,
        )
        if event is not None and status == "True" and not already:
            self.emit(event, reason, message)

    def drop_condition(self, type_: str) -> None:
        self.values["conditions"] = conditions.remove(self.values["conditions"], type_)

    def emit(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def history(self) -> list[AttemptRecord]:
        records: list[AttemptRecord] = self.values["history"]
        return records

    def set_history(self, records: list[AttemptRecord]) -> None:
        self.values["history"] = records[-HISTORY_LIMIT:]

    def decide(
        self,
        effective: Effective | None,
        *,
        wake_at: datetime.datetime | None = None,
        wants_admission: bool = False,
    ) -> Decision:
        if effective is not None:
            counted = self.values["failures"] + (
                1 if self.values["phase"] in ("Running", "Succeeded") else 0
            )
            self.values["attempts_summary"] = f"{counted}/{effective.max_attempts}"
        if self.values["phase"] != "Queued":
            self.values["queue_order"] = None
        status = BackgroundJobStatus.model_validate(self.values)
        return Decision(status, self.actions, self.events, wake_at, wants_admission)

    def end_attempt(
        self, attempt: int, *, fallback_start: datetime.datetime | None, **ended: object
    ) -> AttemptRecord:
        """Record how attempt `attempt` ended in the history (its start kept); returns the
        record."""
        history = self.history()
        previous = history[-1] if history and history[-1].attempt == attempt else None
        record = AttemptRecord.model_validate(
            {
                "attempt": attempt,
                "start_time": previous.start_time if previous else fallback_start,
                **ended,
            }
        )
        self.set_history([*history[:-1], record] if previous else [*history, record])
        return record

    def finished(self, effective: Effective) -> Decision:
        """The decision of a finished job: deleted once ttlSecondsAfterFinished has passed
        since it finished, else woken then."""
        ttl = effective.ttl_seconds_after_finished
        completed: datetime.datetime | None = self.values["completion_time"]
        if ttl is None or completed is None:
            return self.decide(effective)
        expires = completed + datetime.timedelta(seconds=ttl)
        if self.now >= expires:
            self.actions.append(DeleteJob())
            return self.decide(effective)
        return self.decide(effective, wake_at=expires)

    def fail(self, reason: str, message: str) -> None:
        """The job fails for good, now, for `reason`."""
        self.set(phase="Failed", completion_time=self.now, next_attempt_at=None)
        self.condition("Failed", "True", reason, message)
        self.emit("Warning", "Failed", message)
