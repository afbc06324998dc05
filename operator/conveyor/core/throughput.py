"""Attempts ended per minute, as the dashboard's throughput chart shows them.

Made from the job rows' attempt end times (`summary.JobRow.ended`), in
buckets of equal width that end at now: of one queue, or of all.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from conveyor.core.summary import JobRow


@dataclass(frozen=True)
class Bucket:
    """Attempts that ended within [start, start + width)."""

    start: datetime.datetime
    succeeded: int = 0
    failed: int = 0
    disrupted: int = 0


def throughput(
    jobs: Iterable[JobRow],
    now: datetime.datetime,
    *,
    buckets: int = 60,
    width: datetime.timedelta = datetime.timedelta(minutes=1),
    queue: tuple[str, str] | None = None,
) -> list[Bucket]:
    """Attempts ended per bucket, oldest first, the last bucket ending at `now` (of one
    queue, given as (namespace, name), or of all)."""
    first = now - buckets * width
    tallies = [[0, 0, 0] for _ in range(buckets)]
    column = {"Succeeded": 0, "Failed": 1, "Disrupted": 2}
    for row in jobs:
        if queue is not None and (row.namespace, row.queue) != queue:
            continue
        for finished, result in row.ended:
            if not first < finished <= now or result not in column:
                continue
            index = min(buckets - 1, int((finished - first) / width))
            tallies[index][column[result]] += 1
    return [
        Bucket(first + i * width, succeeded=s, failed=f, disrupted=d)
        for i, (s, f, d) in enumerate(tallies)
    ]
