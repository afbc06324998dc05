"""Admission: start order, the concurrency quota, the sliding-window rate limit, pause."""

from __future__ import annotations

import bisect
import datetime
import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.core import admission
from conveyor.core.admission import Candidate, QueueLimits, WaitingLine
from tests.unit.factories import T0, at

MICROSECOND = datetime.timedelta(microseconds=1)

names = st.text(alphabet="ab1-.", min_size=1, max_size=4)
priorities = st.integers(-admission.PRIORITY_OFFSET, admission.PRIORITY_OFFSET)
small_priorities = st.integers(-2, 2)  # many ties, so the later keys get exercised
moments = st.integers(0, 10_000_000).map(lambda us: T0 + datetime.timedelta(microseconds=us))
coarse_moments = st.integers(0, 3).map(at)  # many equal creation times


@st.composite
def candidate_lists(draw: st.DrawFn, priority: st.SearchStrategy[int] = small_priorities):
    rows = draw(
        st.lists(
            st.tuples(names, priority, st.one_of(moments, coarse_moments)),
            unique_by=lambda row: row[0],
            max_size=12,
        )
    )
    return [Candidate(name=n, priority=p, created_at=t) for n, p, t in rows]


@dataclass(frozen=True)
class Admitted:
    admitted: list[Candidate]
    retry_at: datetime.datetime | None


def admit(
    *,
    limits: QueueLimits,
    now: datetime.datetime,
    running: int,
    recent_starts: Sequence[datetime.datetime],
    candidates: Iterable[Candidate],
) -> Admitted:
    """What the admitter does in one pass: the line in start order, the plan, the first ones."""
    line = WaitingLine()
    for candidate in candidates:
        line.add(candidate)
    decided = admission.plan(
        limits=limits, now=now, running=running, recent_starts=recent_starts, waiting=len(line)
    )
    return Admitted(line.take(decided.slots), decided.retry_at)


def start_order(candidates: Iterable[Candidate]) -> list[Candidate]:
    """The waiting line's order, read without taking anyone out."""
    line = WaitingLine()
    for candidate in candidates:
        line.add(candidate)
    return list(line)


def count_in_window(
    starts: Sequence[datetime.datetime], end: datetime.datetime, period_seconds: float
) -> int:
    """Starts in the window (end - period, end]; `starts` sorted."""
    begin = end - datetime.timedelta(seconds=period_seconds)
    return bisect.bisect_right(starts, end) - bisect.bisect_right(starts, begin)


def before(a: Candidate, b: Candidate) -> bool:
    """a starts no later than b: higher priority, then older, then name."""
    if a.priority != b.priority:
        return a.priority > b.priority
    if a.created_at != b.created_at:
        return a.created_at < b.created_at
    return a.name <= b.name


# ---------------------------------------------------------------- order


@settings(max_examples=80, deadline=None)
@given(candidate_lists(st.one_of(small_priorities, priorities)))
def test_start_order_is_priority_then_age_then_name(candidates):
    """start_order is a permutation sorted by priority desc, created_at asc, then name."""
    ordered = start_order(candidates)
    assert sorted(c.name for c in ordered) == sorted(c.name for c in candidates)
    for a, b in itertools.pairwise(ordered):
        assert before(a, b), (a, b)


def test_start_order_examples():
    """A higher priority beats age; equal priorities go oldest first; equal ages by name."""
    old_low = Candidate("a-old-low", 0, at(0))
    new_high = Candidate("z-new-high", 10, at(100))
    b_same = Candidate("b", 0, at(5))
    a_same = Candidate("a", 0, at(5))
    assert [c.name for c in start_order([old_low, b_same, a_same, new_high])] == [
        "z-new-high",
        "a-old-low",
        "a",
        "b",
    ]


@settings(max_examples=80, deadline=None)
@given(candidate_lists(st.one_of(small_priorities, priorities)))
def test_queue_order_key_sorts_like_start_order(candidates):
    """Sorting by queue_order_key gives exactly the start order (kubectl --sort-by agrees)."""
    by_key = sorted(
        candidates, key=lambda c: admission.queue_order_key(c.priority, c.created_at, c.name)
    )
    assert [c.name for c in by_key] == [c.name for c in start_order(candidates)]


def test_queue_order_key_is_timezone_independent():
    """The same instant in another time zone gives the same key."""
    berlin = datetime.timezone(datetime.timedelta(hours=1))
    assert admission.queue_order_key(3, at(0), "a") == admission.queue_order_key(
        3, at(0).astimezone(berlin), "a"
    )


# ---------------------------------------------------------------- concurrency


@settings(max_examples=120, deadline=None)
@given(
    candidates=candidate_lists(),
    concurrency=st.integers(1, 10),
    running=st.integers(0, 15),
    rate=st.none() | st.integers(1, 10),
    recent=st.lists(st.integers(0, 2_000_000), max_size=12),
)
def test_concurrency_is_never_exceeded(candidates, concurrency, running, rate, recent):
    """running + admitted never exceeds concurrency, and admitted is a prefix of the start order."""
    now = at(2)
    limits = QueueLimits(concurrency=concurrency, rate_max=rate, rate_period_seconds=1)
    starts = [T0 + datetime.timedelta(microseconds=us) for us in recent]
    decided = admit(
        limits=limits, now=now, running=running, recent_starts=starts, candidates=candidates
    )
    assert len(decided.admitted) <= max(0, concurrency - running)
    assert decided.admitted == start_order(candidates)[: len(decided.admitted)]
    if rate is None:
        # Without a rate limit the quota is used to the full.
        assert len(decided.admitted) == min(len(candidates), max(0, concurrency - running))
        assert decided.retry_at is None
    if len(decided.admitted) == len(candidates):
        assert decided.retry_at is None


def test_a_full_queue_holds_jobs_back_without_a_retry_time():
    """A full queue admits what fits; the rest wait for a slot to free, not for a time."""
    cands = [Candidate(f"j{i}", 0, at(i)) for i in range(5)]
    decided = admit(
        limits=QueueLimits(concurrency=3), now=at(10), running=1, recent_starts=[], candidates=cands
    )
    assert [c.name for c in decided.admitted] == ["j0", "j1"]
    assert decided.retry_at is None


# ---------------------------------------------------------------- rate limit


@settings(max_examples=120, deadline=None)
@given(
    rate_max=st.integers(1, 5),
    period_ms=st.sampled_from([1, 250, 1000, 3000, 10_000]).flatmap(
        lambda p: st.sampled_from([p, p + 7])
    ),
    arrivals=st.lists(st.integers(0, 30_000), min_size=1, max_size=40),
    spurious=st.lists(st.integers(0, 40_000), max_size=15),
)
def test_rate_limit_holds_in_every_window(rate_max, period_ms, arrivals, spurious):
    """Over a random timeline no window holds more than max starts, and every job gets admitted."""
    period = period_ms / 1000
    limits = QueueLimits(rate_max=rate_max, rate_period_seconds=period)
    arriving = sorted((at(ms / 1000), f"j{i}") for i, ms in enumerate(arrivals))
    calls: list[tuple[datetime.datetime, str]] = [(t, "arrival") for t, _ in arriving]
    calls += [(at(ms / 1000), "spurious") for ms in spurious]
    heapq.heapify(calls)

    waiting: dict[str, Candidate] = {}
    starts: list[datetime.datetime] = []
    timers: set[datetime.datetime] = set()
    next_arrival = 0
    for _ in range(10_000):
        if not calls:
            break
        now, why = heapq.heappop(calls)
        while next_arrival < len(arriving) and arriving[next_arrival][0] <= now:
            t, name = arriving[next_arrival]
            waiting[name] = Candidate(name=name, priority=0, created_at=t)
            next_arrival += 1
        decided = admit(
            limits=limits,
            now=now,
            running=0,
            recent_starts=list(starts),
            candidates=waiting.values(),
        )
        if why == "retry" and waiting and (not starts or starts[-1] < now):
            assert decided.admitted, f"nothing admitted at retry_at {now}"
        for c in decided.admitted:
            del waiting[c.name]
            starts.append(now)
        if decided.retry_at is not None:
            assert decided.retry_at > now
            if decided.retry_at not in timers:  # one timer per queue and time, like the runtime
                timers.add(decided.retry_at)
                heapq.heappush(calls, (decided.retry_at, "retry"))
    else:
        raise AssertionError("the simulation did not settle")

    assert not waiting, "every job is admitted in the end"
    assert len(starts) == len(arriving)
    assert starts == sorted(starts)
    for end in starts:  # a window holds the most starts when it ends at one of them
        assert count_in_window(starts, end, period) <= rate_max, end


@settings(max_examples=150, deadline=None)
@given(
    rate_max=st.integers(1, 6),
    period=st.sampled_from([1, 2, 5, 60]),
    ages_ms=st.lists(st.integers(0, 70_000), max_size=10),
    waiting=st.integers(1, 10),
)
def test_retry_at_is_exactly_when_the_next_token_frees(rate_max, period, ages_ms, waiting):
    """A microsecond before retry_at nothing starts; at retry_at at least one job does."""
    now = at(100)
    recent = sorted(now - datetime.timedelta(milliseconds=ms) for ms in ages_ms)
    cands = [Candidate(f"j{i}", 0, at(i)) for i in range(waiting)]
    limits = QueueLimits(rate_max=rate_max, rate_period_seconds=period)
    first = admit(limits=limits, now=now, running=0, recent_starts=recent, candidates=cands)
    in_window = count_in_window(recent, now, period)
    assert len(first.admitted) == min(waiting, max(0, rate_max - in_window))
    if len(first.admitted) == waiting:
        assert first.retry_at is None
        return
    assert first.retry_at is not None
    starts = sorted([*recent, *([now] * len(first.admitted))])
    rest = cands[len(first.admitted) :]

    early = admit(
        limits=limits,
        now=first.retry_at - MICROSECOND,
        running=0,
        recent_starts=starts,
        candidates=rest,
    )
    assert early.admitted == []
    assert early.retry_at == first.retry_at

    on_time = admit(
        limits=limits, now=first.retry_at, running=0, recent_starts=starts, candidates=rest
    )
    assert on_time.admitted, "admitting at retry_at succeeds"
    assert on_time.admitted[0] == rest[0]


def test_rate_limit_example():
    """max 2 per 10s: two start now; the third waits until the older start leaves the window."""
    limits = QueueLimits(rate_max=2, rate_period_seconds=10)
    cands = [Candidate(f"j{i}", 0, at(i)) for i in range(3)]
    decided = admit(limits=limits, now=at(5), running=0, recent_starts=[at(1)], candidates=cands)
    assert [c.name for c in decided.admitted] == ["j0"]
    assert decided.retry_at == at(11)


def test_old_starts_outside_the_window_do_not_count():
    """Starts older than periodSeconds (or exactly periodSeconds old) free their token."""
    limits = QueueLimits(rate_max=1, rate_period_seconds=10)
    decided = admit(
        limits=limits,
        now=at(20),
        running=0,
        recent_starts=[at(0), at(10)],
        candidates=[Candidate("j", 0, at(0))],
    )
    assert [c.name for c in decided.admitted] == ["j"]


# ---------------------------------------------------------------- pause, unlimited


@settings(max_examples=25, deadline=None)
@given(candidate_lists(), st.none() | st.integers(1, 10), st.none() | st.integers(1, 10))
def test_paused_admits_nothing(candidates, concurrency, rate):
    """A paused queue admits nobody, whatever its limits, and sets no time to try again."""
    limits = QueueLimits(concurrency=concurrency, rate_max=rate, paused=True)
    decided = admit(limits=limits, now=at(0), running=0, recent_starts=[], candidates=candidates)
    assert decided.admitted == []
    assert decided.retry_at is None


@settings(max_examples=25, deadline=None)
@given(candidate_lists(), st.integers(0, 1000))
def test_unlimited_queue_admits_everyone(candidates, running):
    """No concurrency and no rate limit: every candidate starts now, in start order."""
    decided = admit(
        limits=QueueLimits.unlimited(),
        now=at(0),
        running=running,
        recent_starts=[at(0)] * 50,
        candidates=candidates,
    )
    assert decided.admitted == start_order(candidates)
    assert decided.retry_at is None


def test_no_candidates_nothing_held():
    """With nobody waiting there is nothing to admit, hold or retry."""
    decided = admit(
        limits=QueueLimits(concurrency=1, rate_max=1),
        now=at(0),
        running=5,
        recent_starts=[at(0)],
        candidates=[],
    )
    assert decided == Admitted([], None)


@settings(max_examples=150, deadline=None)
@given(
    rate_max=st.integers(1, 4),
    past_ms=st.lists(st.integers(0, 3000), max_size=6),
    future_ms=st.lists(st.integers(1, 999), min_size=1, max_size=3),
)
def test_retry_at_is_exact_with_starts_recorded_ahead_of_now(rate_max, past_ms, future_ms):
    """retry_at stays exact when starts are stamped up to 1s ahead of now."""
    now, period = at(100), 2
    recent = [now - datetime.timedelta(milliseconds=ms) for ms in past_ms]
    recent += [now + datetime.timedelta(milliseconds=ms) for ms in future_ms]
    cands = [Candidate(f"j{i}", 0, at(i)) for i in range(rate_max + 2)]
    limits = QueueLimits(rate_max=rate_max, rate_period_seconds=period)
    first = admit(limits=limits, now=now, running=0, recent_starts=recent, candidates=cands)
    assert first.retry_at is not None
    starts = sorted([*recent, *([now] * len(first.admitted))])
    rest = cands[len(first.admitted) :]
    early = admit(
        limits=limits,
        now=first.retry_at - MICROSECOND,
        running=0,
        recent_starts=starts,
        candidates=rest,
    )
    assert early.admitted == []
    on_time = admit(
        limits=limits, now=first.retry_at, running=0, recent_starts=starts, candidates=rest
    )
    assert on_time.admitted


# ---------------------------------------------------------------- the waiting line


line_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), names, small_priorities, coarse_moments),
        st.tuples(st.just("discard"), names),
        st.tuples(st.just("take"), st.integers(0, 4)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(line_ops)
def test_waiting_line_takes_like_sorting_the_jobs_in_line(ops):
    """Any mix of joins, re-joins with new priorities, leaves and takes: take() is start order."""
    line = admission.WaitingLine()
    model: dict[str, Candidate] = {}
    for op in ops:
        if op[0] == "add":
            candidate = Candidate(name=op[1], priority=op[2], created_at=op[3])
            assert line.add(candidate) is (op[1] not in model)
            model[op[1]] = candidate
        elif op[0] == "discard":
            line.discard(op[1])
            model.pop(op[1], None)
        else:
            expected = start_order(model.values())[: op[1]]
            assert line.take(op[1]) == expected
            for candidate in expected:
                del model[candidate.name]
        assert len(line) == len(model)
        assert list(line) == start_order(model.values())


def test_waiting_line_stays_small_under_churn():
    """Re-adding the same jobs with new priorities does not grow the heap without bound."""
    line = admission.WaitingLine()
    for round_ in range(200):
        for i in range(10):
            line.add(Candidate(f"j{i}", round_, at(i)))
    assert len(line) == 10
    assert len(line._heap) <= 2 * 10 + 64
    assert [c.name for c in line.take(3)] == ["j0", "j1", "j2"]


# ---------------------------------------------------------------- occupancy


def test_occupancy_counts_live_pods_and_a_late_create_response_does_not_revive_one():
    occupancy = admission.Occupancy()
    occupancy.observe("a", live=True, created_at=at(0))
    occupancy.observe("b", live=True, created_at=at(0))
    occupancy.observe("a", live=True, created_at=at(0))  # seen twice
    assert occupancy.running == 2
    occupancy.observe("b", live=False, created_at=at(0))
    occupancy.observe("b", live=True, created_at=at(0))  # the create response, read late
    assert occupancy.running == 1
    occupancy.forget("a")
    occupancy.observe("a", live=True, created_at=at(0))  # read after the delete
    assert occupancy.running == 0


def test_occupancy_forgets_deleted_pods_within_a_bound():
    occupancy = admission.Occupancy()
    for i in range(admission.Occupancy.FORGOTTEN + 10):
        occupancy.forget(f"p{i}")
    assert len(occupancy._forgotten_set) == admission.Occupancy.FORGOTTEN
    occupancy.observe("p0", live=True, created_at=None)  # long gone from memory: counted
    assert occupancy.running == 1


def test_occupancy_keeps_start_times_for_one_rate_period_only():
    occupancy = admission.Occupancy(datetime.timedelta(seconds=2))
    for i, second in enumerate([0, 1, 2, 3]):
        occupancy.observe(f"p{i}", live=False, created_at=at(second))
    occupancy.observe("p3", live=False, created_at=at(3))  # no double count
    assert occupancy.recent_starts(at(3)) == [at(2), at(3)]
    assert len(occupancy._starts) == 2
    assert admission.Occupancy().recent_starts(at(3)) == []  # no rate limit: nothing kept


def test_a_start_moves_to_when_its_create_returned_never_back():
    """started() moves a pod's start later (the create's response), never earlier, and the
    rate window then counts it from there."""
    occupancy = admission.Occupancy(datetime.timedelta(seconds=2))
    occupancy.observe("p", live=True, created_at=at(0))
    occupancy.started("p", at(0.3))
    occupancy.started("p", at(0.1))  # an earlier moment changes nothing
    assert occupancy.recent_starts(at(2.2)) == [at(0.3)]
    assert occupancy.recent_starts(at(2.3)) == []
    occupancy.started("q", at(5))  # seen first by its create's response
    occupancy.observe("q", live=True, created_at=at(4.9))  # the watch, later: no second start
    assert occupancy.recent_starts(at(5)) == [at(5)]
    assert admission.Occupancy().recent_starts(at(5)) == []
