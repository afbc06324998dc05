"""What a person reads about queues and jobs, summarised from the objects as the API serves them.

`kubectl conveyor` and the dashboard show the same things (a queue's counts,
its throughput, a job's attempts as a timeline), so both build them in the
core, from the raw JSON of BackgroundJobs and JobQueues, with no I/O: the
plugin from one list, the dashboard from its watches' cache. A job becomes a
compact `JobRow` once per change; everything else is computed from rows.
This module reads the objects into rows (a job's `JobRow`, its attempts'
timeline, a queue's `QueueRow`); what is made of rows lives beside it:
`throughput` (attempts ended per minute), `job_listing` (filters, pages,
counts by phase), `summary_json` (the rows as JSON) and `wording` (ages and
rates as a terminal prints them).

Counts are the operator's own (`tally`): waiting is Pending and Queued,
delayed is Delayed and BackingOff; recurring jobs are not counted, their runs
are. Rates and the throughput chart come from the attempts' end times in the
jobs' histories, so they cover the jobs that still exist (a TTL that deleted
a job takes its attempts with it); Prometheus keeps the longer view.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.core import naming, tally

WAITING_PHASES = tally.PENDING_PHASES
DELAYED_PHASES = ("Delayed", "BackingOff")
PHASES = ("Pending", "Blocked", "Delayed", "Queued", "Running", "BackingOff", "Succeeded", "Failed")
RATE_WINDOW = datetime.timedelta(minutes=5)
"""`rate`: attempts that ended per minute, over this window."""


def parse_time(text: object) -> datetime.datetime | None:
    """An RFC 3339 time from JSON; None for anything else."""
    return naming.parse_time(text) if isinstance(text, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Attempt:
    """One attempt, as a timeline shows it."""

    attempt: int
    pod: str | None
    started: datetime.datetime | None
    finished: datetime.datetime | None
    result: str | None
    reason: str | None
    exit_code: int | None
    message: str | None = None
    output: str | None = None
    log_tail: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return max(0.0, (self.finished - self.started).total_seconds())

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Attempt:
        return cls(
            attempt=_int(record.get("attempt")) or 0,
            pod=_str(record.get("podName")),
            started=parse_time(record.get("startTime")),
            finished=parse_time(record.get("finishedAt")),
            result=_str(record.get("result")),
            reason=_str(record.get("reason")),
            exit_code=_int(record.get("exitCode")),
            message=_str(record.get("message")),
            output=_str(record.get("output")),
            log_tail=_str(record.get("logTail")),
        )


@dataclass(frozen=True)
class JobRow:
    """A BackgroundJob, as lists show it."""

    namespace: str
    name: str
    queue: str
    phase: str
    created: datetime.datetime | None
    attempts: int = 0
    attempts_summary: str = ""
    priority: int | None = None
    started: datetime.datetime | None = None
    completed: datetime.datetime | None = None
    next_attempt_at: datetime.datetime | None = None
    last_failure: str | None = None
    last_exit_code: int | None = None
    result: str | None = None
    schedule: str | None = None
    """Recurring jobs: spec.schedule, or `every <spec.every>`."""
    parent: str | None = None
    manual: bool = False
    depends_on: tuple[str, ...] = ()
    suspended: bool = False
    ended: tuple[tuple[datetime.datetime, str], ...] = field(default=(), repr=False)
    """(finishedAt, result) of each attempt that ended, as far as the history goes."""
    search_text: str = field(default="", repr=False, compare=False)
    """What a search looks in (name, queue, phase, last failure, result), lower case: made
    once per change, not once per search."""

    def __post_init__(self) -> None:
        if not self.search_text:
            text = " ".join(
                part
                for part in (self.name, self.queue, self.phase, self.last_failure, self.result)
                if part
            )
            object.__setattr__(self, "search_text", text.lower())

    @property
    def recurring(self) -> bool:
        return self.schedule is not None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def matches(self, text: str) -> bool:
        """A search: every word is in the name, queue, phase, last failure or result."""
        return all(word in self.search_text for word in text.lower().split())


def job_row(body: Mapping[str, Any]) -> JobRow:
    """The row of one BackgroundJob (as JSON); tolerant of missing or odd fields."""
    meta = _map(body.get("metadata"))
    spec = _map(body.get("spec"))
    status = _map(body.get("status"))
    labels = _map(meta.get("labels"))
    last_failure = _map(status.get("lastFailure"))
    ended = []
    for item in status.get("history") or []:
        record = _map(item)
        finished, result = parse_time(record.get("finishedAt")), _str(record.get("result"))
        if finished is not None and result is not None:
            ended.append((finished, result))
    schedule = _str(spec.get("schedule"))
    if schedule is None and _str(spec.get("every")):
        schedule = f"every {spec['every']}"
    depends = spec.get("dependsOn")
    return JobRow(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        queue=_str(spec.get("queue")) or naming.NO_QUEUE,
        phase=_str(status.get("phase")) or "Pending",
        created=parse_time(meta.get("creationTimestamp")),
        attempts=_int(status.get("attempts")) or 0,
        attempts_summary=_str(status.get("attemptsSummary")) or "",
        priority=_int(spec.get("priority")),
        started=parse_time(status.get("startTime")),
        completed=parse_time(status.get("completionTime")),
        next_attempt_at=parse_time(status.get("nextAttemptAt")),
        last_failure=_str(last_failure.get("reason")),
        last_exit_code=_int(last_failure.get("exitCode")),
        result=_str(status.get("result")),
        schedule=schedule,
        parent=_str(labels.get(naming.LABEL_PARENT)),
        manual=labels.get(naming.LABEL_MANUAL) == "true",
        depends_on=tuple(str(d) for d in depends) if isinstance(depends, list) else (),
        suspended=spec.get("suspend") is True,
        ended=tuple(ended),
    )


def timeline(body: Mapping[str, Any], log_tails: Mapping[int, str] | None = None) -> list[Attempt]:
    """A job's attempts, oldest first: its history, with the last failure's log tail on its
    attempt and, for the others, the tails given (read from pods that still exist)."""
    status = _map(body.get("status"))
    last_failure = _map(status.get("lastFailure"))
    failed_tail = _str(last_failure.get("logTail"))
    failed_attempt = _int(last_failure.get("attempt"))
    tails = dict(log_tails or {})
    if failed_attempt is not None and failed_tail is not None:
        tails[failed_attempt] = failed_tail
    attempts = []
    for record in status.get("history") or []:
        attempt = Attempt.from_record(_map(record))
        if attempt.log_tail is None and attempt.attempt in tails:
            attempt = dataclasses.replace(attempt, log_tail=tails[attempt.attempt])
        attempts.append(attempt)
    return attempts


# ---------------------------------------------------------------- queues


@dataclass(frozen=True)
class QueueRow:
    """A queue's health: counts by phase, the rate at which attempts end, the oldest wait."""

    namespace: str
    name: str
    exists: bool
    """A JobQueue of that name exists (jobs may name one that does not, or none: "")."""
    paused: bool = False
    concurrency: int | None = None
    rate_limit: str | None = None
    waiting: int = 0
    delayed: int = 0
    blocked: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    rate_per_minute: float = 0.0
    """Attempts that ended, per minute, over the last RATE_WINDOW."""
    failures_per_minute: float = 0.0
    """Of those, the ones that failed."""
    oldest_waiting_seconds: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def total(self) -> int:
        return (
            self.waiting + self.delayed + self.blocked + self.running + self.succeeded + self.failed
        )


def queue_rows(
    queues: Iterable[Mapping[str, Any]], jobs: Iterable[JobRow], now: datetime.datetime
) -> list[QueueRow]:
    """Every JobQueue, and every queue name its jobs give that has none, sorted by key."""
    specs: dict[tuple[str, str], Mapping[str, Any]] = {}
    for body in queues:
        meta = _map(body.get("metadata"))
        specs[(str(meta.get("namespace") or ""), str(meta.get("name") or ""))] = _map(
            body.get("spec")
        )
    counts: dict[tuple[str, str], dict[str, int]] = {}
    oldest: dict[tuple[str, str], datetime.datetime] = {}
    ends: dict[tuple[str, str], list[int]] = {}
    since = now - RATE_WINDOW
    for row in jobs:
        if row.recurring:
            continue
        key = (row.namespace, row.queue)
        by_phase = counts.setdefault(key, {})
        by_phase[row.phase] = by_phase.get(row.phase, 0) + 1
        waiting_since = row.created if row.phase in WAITING_PHASES else None
        if waiting_since is not None and (key not in oldest or waiting_since < oldest[key]):
            oldest[key] = waiting_since
        tally_ends = ends.setdefault(key, [0, 0])
        for finished, result in row.ended:
            if since < finished <= now:
                tally_ends[0] += 1
                tally_ends[1] += result == "Failed"
    minutes = RATE_WINDOW.total_seconds() / 60
    rows = []
    for key in sorted(set(specs) | set(counts)):
        spec = specs.get(key)
        by_phase = counts.get(key, {})
        rate = _map(spec.get("rateLimit")) if spec is not None else {}
        ended, failed = ends.get(key, [0, 0])
        first = oldest.get(key)
        rows.append(
            QueueRow(
                namespace=key[0],
                name=key[1],
                exists=spec is not None,
                paused=bool(spec.get("paused")) if spec is not None else False,
                concurrency=_int(spec.get("concurrency")) if spec is not None else None,
                rate_limit=(
                    f"{rate['max']}/{rate.get('periodSeconds', 1)}s" if rate.get("max") else None
                ),
                waiting=sum(by_phase.get(p, 0) for p in WAITING_PHASES),
                delayed=sum(by_phase.get(p, 0) for p in DELAYED_PHASES),
                blocked=by_phase.get("Blocked", 0),
                running=by_phase.get("Running", 0),
                succeeded=by_phase.get("Succeeded", 0),
                failed=by_phase.get("Failed", 0),
                rate_per_minute=ended / minutes,
                failures_per_minute=failed / minutes,
                oldest_waiting_seconds=(
                    max(0, int((now - first).total_seconds())) if first is not None else None
                ),
            )
        )
    return rows
