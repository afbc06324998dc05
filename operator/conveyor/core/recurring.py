"""A recurring job: creates one child BackgroundJob per scheduled run, and prunes old ones.

The recurring job runs nothing itself. At each scheduled time it creates a
child named `<job>-<unix seconds of the scheduled time>`, so the same run is
never created twice, even by an operator that restarted in between: the
second create is an `AlreadyExists`. The child inherits everything a run
needs (queue, priority, retry, template, deadlines, dependencies) and nothing
that makes it recur.

Which runs are due after an outage is `schedule.missed_runs`' business; what
is done about a run that is due while an earlier one is still active is the
`concurrencyPolicy`'s: Allow creates it anyway, Forbid skips it (and says so
in an event), Replace deletes the active runs first.

A person can ask for a run now (`conveyor.dev/run-now`, see `actions`): it is
named as the schedule would name a run of that moment, labelled manual, and
created whatever the concurrencyPolicy says (it is a person's explicit ask);
it counts as active for the scheduled runs that follow, and it is pruned
with the rest, but it does not move the schedule's bookkeeping.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conveyor.api.v1alpha1 import API_VERSION, BackgroundJobStatus, Condition
from conveyor.core import actions, conditions, deprecation, naming
from conveyor.core.decisions import Event, JobView, is_terminal
from conveyor.core.schedule import Schedule, ScheduleError, missed_runs

ON_TIME_GRACE_SECONDS = 2.0
"""A run this late still counts as on time under missedRunsPolicy Skip."""

RECURRING_ONLY_FIELDS = frozenset(
    {
        "schedule",
        "every",
        "timeZone",
        "concurrencyPolicy",
        "startingDeadlineSeconds",
        "missedRunsPolicy",
        "maxMissedRuns",
        "successfulRunsHistoryLimit",
        "failedRunsHistoryLimit",
        "suspend",
    }
)


@dataclass(frozen=True)
class Run:
    """A child of the recurring job, as last seen."""

    name: str
    scheduled_at: datetime.datetime
    phase: str | None
    manual_request: str | None = None
    """For a run created by conveyor.dev/run-now: the value that asked for it."""


@dataclass(frozen=True)
class RecurringDecision:
    status: BackgroundJobStatus
    create: list[datetime.datetime] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    wake_at: datetime.datetime | None = None
    run_now: str | None = None
    """Create a manual run at the decision's moment, for this conveyor.dev/run-now value."""


def parse(job: JobView) -> Schedule:
    """The job's schedule; raises ScheduleError with a message for the user."""
    spec = job.spec
    return Schedule.parse(
        cron=spec.schedule, every=spec.every, time_zone=spec.time_zone, anchor=job.created_at
    )


def step(job: JobView, runs: Sequence[Run], now: datetime.datetime) -> RecurringDecision:
    events: list[Event] = []
    status, run_now = _take_actions(job, runs, now, events)
    decision = _step(dataclasses.replace(job, status=status), runs, now, events)
    if run_now is None:
        return decision
    name = naming.run_name(job.name, now)
    new_status = decision.status.model_copy(
        update={"phase": "Running", "active": sorted({*decision.status.active, name})}
    )
    return dataclasses.replace(decision, status=new_status, run_now=run_now)


def _take_actions(
    job: JobView, runs: Sequence[Run], now: datetime.datetime, events: list[Event]
) -> tuple[BackgroundJobStatus, str | None]:
    """The annotations a person asked with (`actions`): run-now creates a run at once; the
    others are about jobs that run, which a recurring job is not. Returns the status with
    the values taken, and the run-now value to create a run for."""
    taken: dict[str, str] = {}
    run_now = None
    asked = actions.RUN_NOW.asked(job.annotations, job.status)
    if asked is not None:
        taken[actions.RUN_NOW.status_field] = asked
        how = actions.RUN_NOW.how(asked)
        name = naming.run_name(job.name, now)
        if any(run.manual_request == asked for run in runs):
            pass  # created already, its status not written then (a failed write, a restart)
        elif any(run.name == name for run in runs):
            events.append(
                Event("Normal", "RunNowIgnored", f"{how} ignored: run {name} exists already")
            )
        else:
            run_now = asked
            events.append(
                Event(
                    "Normal",
                    "RunNow",
                    f"created run {name} now ({how}), labelled {naming.LABEL_MANUAL}=true",
                )
            )
    for action in (actions.PROMOTE, actions.CANCEL):
        asked = action.asked(job.annotations, job.status)
        if asked is None:
            continue
        taken[action.status_field] = asked
        events.append(
            Event(
                "Normal",
                f"{action.name.capitalize()}Ignored",
                f"{action.how(asked)} ignored: "
                f"{actions.refusal(action, job.status.phase, recurring=True)} "
                f"(kubectl get bgj -l {naming.LABEL_PARENT}={job.name})",
            )
        )
    return job.status.model_copy(update=taken), run_now


def _step(
    job: JobView, runs: Sequence[Run], now: datetime.datetime, events: list[Event]
) -> RecurringDecision:
    spec = job.spec
    status = job.status
    conds = list(status.conditions)
    try:
        schedule = parse(job)
    except ScheduleError as error:
        message = str(error)
        if not conditions.is_true(conds, "InvalidSpec"):
            events.append(Event("Warning", "InvalidSpec", message))
        conds = conditions.set_condition(
            conds,
            "InvalidSpec",
            "True",
            reason="InvalidSchedule",
            message=message,
            now=now,
            generation=job.generation,
        )
        new = status.model_copy(
            update={"conditions": conds, "observed_generation": job.generation, "phase": "Pending"}
        )
        return RecurringDecision(status=new, events=events)
    conds = conditions.remove(conds, "InvalidSpec")
    conds = _note_deprecations(conds, job, now, events)

    active = sorted((r for r in runs if not is_terminal(r.phase)), key=lambda r: r.scheduled_at)
    last = status.last_schedule_time
    # Manual runs are not the schedule's: they say nothing of which scheduled runs were made.
    newest_run = max((r.scheduled_at for r in runs if r.manual_request is None), default=None)
    if newest_run is not None and (last is None or newest_run > last):
        last = newest_run  # a run created just before a restart, never recorded

    create: list[datetime.datetime] = []
    delete: list[str] = []
    if spec.suspend:
        if not conditions.is_true(conds, "Suspended"):
            events.append(Event("Normal", "Suspended", "spec.suspend is true: no new runs"))
        conds = conditions.set_condition(
            conds,
            "Suspended",
            "True",
            reason="Suspended",
            message="spec.suspend is true: no new runs",
            now=now,
            generation=job.generation,
        )
    else:
        if conditions.is_true(conds, "Suspended"):
            events.append(Event("Normal", "Resumed", "spec.suspend is false: scheduling again"))
        conds = conditions.remove(conds, "Suspended")
        due = missed_runs(
            schedule=schedule,
            last_scheduled=last,
            created=job.created_at,
            now=now,
            policy=spec.missed_runs_policy,
            max_missed=spec.max_missed_runs,
            starting_deadline_seconds=spec.starting_deadline_seconds,
            grace_seconds=ON_TIME_GRACE_SECONDS,
        )
        if due.skipped:
            events.append(Event("Warning", "MissedRuns", f"skipped {due.reason}"))
        newest_due = due.to_create[-1] if due.to_create else None
        if due.to_create and active and spec.concurrency_policy == "Forbid":
            events.append(
                Event(
                    "Normal",
                    "RunSkipped",
                    f"run of {naming.format_time(newest_due)} skipped: "  # type: ignore[arg-type]
                    f"{', '.join(r.name for r in active)} still active (concurrencyPolicy Forbid)",
                )
            )
            last = newest_due
        elif due.to_create:
            if active and spec.concurrency_policy == "Replace":
                delete.extend(r.name for r in active)
                events.append(
                    Event(
                        "Normal",
                        "RunReplaced",
                        f"deleting {', '.join(r.name for r in active)} (concurrencyPolicy Replace)",
                    )
                )
            create = list(due.to_create)
            last = newest_due
            for moment in create:
                events.append(
                    Event("Normal", "RunCreated", f"created {naming.run_name(job.name, moment)}")
                )
        elif due.skipped and newest_due is None:
            # Everything due was skipped: remember the newest, so it is not reconsidered.
            last = schedule_last_due(schedule, last, job.created_at, now) or last

    delete.extend(_pruned(runs, spec.successful_runs_history_limit, spec.failed_runs_history_limit))
    next_time = schedule.next_after(max(now, last) if last else now)
    active_names = sorted(
        {r.name for r in active if r.name not in delete}
        | {naming.run_name(job.name, t) for t in create}
    )
    new_status = status.model_copy(
        update={
            # like a CronJob: Running while a run is active, Scheduled between runs
            "phase": "Running" if active_names else "Scheduled",
            "last_schedule_time": last,
            "next_schedule_time": next_time,
            "active": active_names,
            "active_count": len(active_names),
            "conditions": conds,
            "observed_generation": job.generation,
            "attempts_summary": None,
        }
    )
    return RecurringDecision(
        status=new_status,
        create=create,
        delete=sorted(set(delete)),
        events=events,
        wake_at=None if spec.suspend else next_time,
    )


def _note_deprecations(
    conds: list[Condition], job: JobView, now: datetime.datetime, events: list[Event]
) -> list[Condition]:
    """A Deprecated condition while the spec uses a deprecated field (its runs inherit the
    field, and each says so too); a Warning event when it appears."""
    message = deprecation.in_job(job.spec)
    if message is not None and not conditions.is_true(conds, deprecation.CONDITION):
        events.append(Event("Warning", deprecation.REASON, message))
    return deprecation.with_condition(conds, message, now=now, generation=job.generation)


def schedule_last_due(
    schedule: Schedule,
    last: datetime.datetime | None,
    created: datetime.datetime,
    now: datetime.datetime,
) -> datetime.datetime | None:
    """The newest scheduled time in (last or created, now], if any."""
    newest = schedule.runs_between(last or created, now, 1)
    return newest[-1] if newest else None


def _pruned(runs: Sequence[Run], keep_succeeded: int, keep_failed: int) -> list[str]:
    doomed: list[str] = []
    for phase, keep in (("Succeeded", keep_succeeded), ("Failed", keep_failed)):
        finished = sorted(
            (r for r in runs if r.phase == phase), key=lambda r: r.scheduled_at, reverse=True
        )
        doomed.extend(r.name for r in finished[keep:])
    return doomed


def render_run(
    job: JobView,
    *,
    uid: str,
    raw_spec: dict[str, Any],
    scheduled_at: datetime.datetime,
    manual_request: str | None = None,
) -> dict[str, Any]:
    """The child BackgroundJob of the run at `scheduled_at`; a manual one (conveyor.dev/run-now
    asked for it with `manual_request`) is labelled so."""
    spec = {k: v for k, v in raw_spec.items() if k not in RECURRING_ONLY_FIELDS}
    labels = {naming.LABEL_PARENT: job.name}
    annotations = {naming.ANNOTATION_SCHEDULED_AT: naming.format_time(scheduled_at)}
    if manual_request is not None:
        labels[naming.LABEL_MANUAL] = "true"
        annotations[naming.ANNOTATION_MANUAL_RUN] = manual_request
    return {
        "apiVersion": API_VERSION,
        "kind": "BackgroundJob",
        "metadata": {
            "name": naming.run_name(job.name, scheduled_at),
            "namespace": job.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [naming.owned_by_job(job.name, uid)],
        },
        "spec": spec,
    }
