"""What `kubectl conveyor` prints: tables as kubectl aligns them, and a job's description.

Pure: rows and summaries in, text out, so the unit tests read exactly what a
person reads.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from conveyor.core import summary, wording

NONE = "<none>"
LOG_LINES = 5
"""Lines of each attempt's log tail a description shows."""


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns left-aligned, three spaces apart, as `kubectl get` prints them."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _queue_name(name: str) -> str:
    return name or NONE


def queues_table(
    rows: Sequence[summary.QueueRow], *, wide: bool = False, all_namespaces: bool = False
) -> str:
    headers = ["QUEUE", "WAITING", "DELAYED", "RUNNING", "SUCCEEDED", "FAILED", "RATE"]
    headers += ["OLDEST WAITING", "PAUSED"]
    if wide:
        headers += ["BLOCKED", "FAILURES", "CONCURRENCY", "RATE LIMIT"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    lines = []
    for row in rows:
        cells = [
            _queue_name(row.name),
            str(row.waiting),
            str(row.delayed),
            str(row.running),
            str(row.succeeded),
            str(row.failed),
            wording.rate(row.rate_per_minute),
            wording.human_duration(row.oldest_waiting_seconds)
            if row.oldest_waiting_seconds is not None
            else NONE,
            ("true" if row.paused else "false") if row.exists else "<no queue>",
        ]
        if wide:
            cells += [
                str(row.blocked),
                wording.rate(row.failures_per_minute),
                str(row.concurrency) if row.concurrency is not None else NONE,
                row.rate_limit or NONE,
            ]
        if all_namespaces:
            cells.insert(0, row.namespace)
        lines.append(cells)
    return table(headers, lines)


def _short(text: str | None, width: int = 40) -> str:
    if not text:
        return NONE
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def jobs_table(
    rows: Sequence[summary.JobRow],
    now: datetime.datetime,
    *,
    wide: bool = False,
    all_namespaces: bool = False,
) -> str:
    headers = ["NAME", "QUEUE", "PHASE", "ATTEMPTS", "LAST FAILURE", "AGE"]
    if wide:
        headers += ["EXIT CODE", "PRIORITY", "NEXT ATTEMPT", "RESULT", "SCHEDULE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    lines = []
    for row in rows:
        cells = [
            row.name,
            _queue_name(row.queue),
            row.phase,
            row.attempts_summary or NONE,
            row.last_failure or NONE,
            wording.age(row.created, now),
        ]
        if wide:
            cells += [
                str(row.last_exit_code) if row.last_exit_code is not None else NONE,
                str(row.priority) if row.priority is not None else NONE,
                _until(row.next_attempt_at, now),
                _short(row.result),
                row.schedule or NONE,
            ]
        if all_namespaces:
            cells.insert(0, row.namespace)
        lines.append(cells)
    return table(headers, lines)


# ---------------------------------------------------------------- describe


def _until(moment: datetime.datetime | None, now: datetime.datetime) -> str:
    if moment is None or moment <= now:
        return NONE
    return "in " + wording.human_duration((moment - now).total_seconds())


def _when(moment: datetime.datetime | None, now: datetime.datetime) -> str:
    if moment is None:
        return NONE
    stamp = moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if moment > now:
        return f"{stamp} ({_until(moment, now)})"
    return f"{stamp} ({wording.age(moment, now)} ago)"


def _indented(text: str, prefix: str, limit: int | None = None) -> list[str]:
    lines = text.rstrip("\n").splitlines()
    if limit is not None and len(lines) > limit:
        lines = lines[-limit:]
    return [f"{prefix}{line}" for line in lines]


def timeline(attempts: Sequence[summary.Attempt], now: datetime.datetime) -> list[str]:
    """The attempts, one block each: what ran, how it ended, and what it said."""
    if not attempts:
        return ["  <none>"]
    out = []
    for attempt in attempts:
        ended = attempt.result or ("Running" if attempt.finished is None else NONE)
        head = f"  #{attempt.attempt}  {attempt.pod or NONE}  {ended}"
        if attempt.reason and attempt.reason not in (attempt.result, "Completed"):
            head += f" ({attempt.reason})"
        if attempt.exit_code is not None:
            head += f"  exit code {attempt.exit_code}"
        head += f"  started {_when(attempt.started, now)}"
        if attempt.duration_seconds is not None:
            head += f", ran {wording.human_duration(attempt.duration_seconds)}"
        out.append(head)
        if attempt.message and attempt.message != attempt.output:
            out += _indented(attempt.message, "      message: ", 3)
        if attempt.output:
            out += _indented(attempt.output, "      output:  ", 10)
        if attempt.log_tail:
            out.append("      log tail:")
            out += _indented(attempt.log_tail, "      │ ", LOG_LINES)
    return out


def describe(
    body: Mapping[str, Any],
    *,
    attempts: Sequence[summary.Attempt],
    events: Sequence[Mapping[str, Any]],
    dependencies: Mapping[str, str | None],
    runs: Sequence[summary.JobRow],
    now: datetime.datetime,
) -> str:
    row = summary.job_row(body)
    status = body.get("status") or {}
    fields: list[tuple[str, str]] = [
        ("Name", row.name),
        ("Namespace", row.namespace),
        ("Queue", _queue_name(row.queue)),
        ("Phase", row.phase + (" (suspended)" if row.suspended else "")),
    ]
    terminal = next(
        (
            c
            for c in status.get("conditions") or []
            if c.get("type") in ("Succeeded", "Failed") and c.get("status") == "True"
        ),
        None,
    )
    if terminal is not None:
        fields.append(("Reason", f"{terminal.get('reason')}: {terminal.get('message') or ''}"))
    fields += [
        ("Attempts", row.attempts_summary or NONE),
        ("Priority", str(row.priority) if row.priority is not None else NONE),
        ("Created", _when(row.created, now)),
        ("Started", _when(row.started, now)),
        ("Completed", _when(row.completed, now)),
        ("Next attempt", _when(row.next_attempt_at, now)),
        ("Result", row.result.strip() if row.result else NONE),
    ]
    if row.parent:
        fields.append(("Run of", row.parent + (" (manual)" if row.manual else "")))
    if dependencies:
        fields.append(
            (
                "Depends on",
                ", ".join(
                    f"{name} ({phase or 'not found'})" for name, phase in dependencies.items()
                ),
            )
        )
    if row.recurring:
        fields += [
            ("Schedule", row.schedule or NONE),
            ("Last run", _when(summary.parse_time(status.get("lastScheduleTime")), now)),
            ("Next run", _when(summary.parse_time(status.get("nextScheduleTime")), now)),
        ]
    width = max(len(name) for name, _ in fields) + 2
    out = [f"{name + ':':<{width}}{value}" for name, value in fields]
    if row.recurring:
        out.append("Runs:")
        out += (
            [
                "  " + line
                for line in table(
                    ["NAME", "PHASE", "ATTEMPTS", "AGE", "MANUAL"],
                    [
                        [
                            r.name,
                            r.phase,
                            r.attempts_summary or NONE,
                            wording.age(r.created, now),
                            "yes" if r.manual else "",
                        ]
                        for r in runs
                    ],
                ).splitlines()
            ]
            if runs
            else ["  <none>"]
        )
    else:
        out.append("Attempts:")
        out += timeline(attempts, now)
    conditions = status.get("conditions") or []
    out.append("Conditions:")
    out += (
        [
            "  " + line
            for line in table(
                ["TYPE", "STATUS", "REASON", "MESSAGE"],
                [
                    [
                        str(c.get("type")),
                        str(c.get("status")),
                        str(c.get("reason") or ""),
                        _short(c.get("message"), 80) if c.get("message") else "",
                    ]
                    for c in conditions
                ],
            ).splitlines()
        ]
        if conditions
        else ["  <none>"]
    )
    out.append("Events:")
    out += (
        [
            "  " + line
            for line in table(
                ["AGE", "TYPE", "REASON", "MESSAGE"],
                [
                    [
                        wording.age(
                            summary.parse_time(e.get("lastTimestamp") or e.get("eventTime")), now
                        ),
                        str(e.get("type") or ""),
                        str(e.get("reason") or ""),
                        str(e.get("message") or "").replace("\n", " "),
                    ]
                    for e in events
                ],
            ).splitlines()
        ]
        if events
        else ["  <none>"]
    )
    return "\n".join(out)
