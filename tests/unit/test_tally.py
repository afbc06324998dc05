"""Tally: per-queue job counts kept as jobs change agree with counting them from scratch."""

from __future__ import annotations

import collections

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.core.tally import PENDING_PHASES, Entry, Tally
from tests.unit.factories import at

PHASES = ["Pending", "Queued", "Running", "BackingOff", "Succeeded", "Failed"]

updates = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e"]),  # job
        st.none()
        | st.builds(
            Entry,
            queue=st.sampled_from(["q1", "q2"]),
            phase=st.sampled_from(PHASES),
            created_at=st.integers(0, 5).map(at),
        ),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(updates)
def test_counts_and_oldest_pending_match_a_recount(changes):
    tally = Tally()
    jobs: dict[str, Entry] = {}
    for name, entry in changes:
        tally.update("ns", name, entry)
        if entry is None:
            jobs.pop(name, None)
        else:
            jobs[name] = entry
        for queue in ("q1", "q2"):
            mine = [e for e in jobs.values() if e.queue == queue]
            assert tally.counts("ns", queue) == collections.Counter(e.phase for e in mine)
            pending = [e.created_at for e in mine if e.phase in PENDING_PHASES]
            assert tally.oldest_pending("ns", queue) == (min(pending) if pending else None)


def test_namespaces_are_apart():
    tally = Tally()
    tally.update("one", "a", Entry("q", "Queued", at(1)))
    tally.update("two", "a", Entry("q", "Running", at(0)))
    assert tally.counts("one", "q") == {"Queued": 1}
    assert tally.oldest_pending("two", "q") is None
    tally.update("one", "a", None)
    assert tally.counts("one", "q") == {}
