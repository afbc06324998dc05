"""Which jobs a list shows: filters, pages, and the counts by phase beside them.

The plugin's `list` and the dashboard's job table both filter the job rows
(`summary.JobRow`) by namespace, queue, phase, parent and words, page them
newest first, and count them by phase, every phase present.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.core.summary import PHASES, JobRow

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Page:
    rows: list[JobRow]
    total: int
    """Rows that matched, over every page."""
    offset: int
    limit: int


def matching(
    rows: Iterable[JobRow],
    *,
    namespace: str | None = None,
    queue: str | None = None,
    phases: Sequence[str] = (),
    text: str = "",
    parent: str | None = None,
) -> list[JobRow]:
    """The jobs that match every filter given."""
    wanted = set(phases)
    words = text.lower().split()
    return [
        row
        for row in rows
        if (namespace is None or row.namespace == namespace)
        and (queue is None or row.queue == queue)
        and (not wanted or row.phase in wanted)
        and (parent is None or row.parent == parent)
        and (not words or all(word in row.search_text for word in words))
    ]


def select(rows: Iterable[JobRow], *, offset: int = 0, limit: int = 50, **filters: Any) -> Page:
    """One page of the jobs that match (`matching`'s filters), newest first, then by name."""
    matched = matching(rows, **filters)
    matched.sort(key=lambda r: (r.created or EPOCH, r.name), reverse=True)
    offset = max(0, offset)
    return Page(matched[offset : offset + limit], len(matched), offset, limit)


def phase_counts(rows: Iterable[JobRow], *, recurring: bool = False) -> dict[str, int]:
    """Jobs by phase, every phase present; recurring jobs only if asked (a queue's counts
    leave them out, as the operator's do)."""
    counts = dict.fromkeys(PHASES, 0)
    for row in rows:
        if recurring or not row.recurring:
            counts[row.phase] = counts.get(row.phase, 0) + 1
    return counts
