"""The work queue: deduplication, no concurrent processing of a key, priorities, delays, retries."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable

import pytest

from conveyor.runtime import workqueue
from conveyor.runtime.workqueue import Key, Kind, Priority, WorkQueue
from tests.unit.factories import at


def job(name: str) -> Key:
    return Key(Kind.JOB, "ns", name)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


class Clock:
    def __init__(self) -> None:
        self.now = at(0)

    def __call__(self) -> datetime.datetime:
        return self.now


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0)


def test_keys_added_many_times_are_processed_once() -> None:
    """Ten adds of a waiting key are one pass."""
    seen: list[Key] = []

    async def scenario() -> None:
        async def handle(key: Key) -> None:
            seen.append(key)

        queue = WorkQueue(handle, workers=2)
        for _ in range(10):
            queue.add(job("a"))
        queue.add(job("b"))
        queue.start()
        await until(lambda: queue.idle)
        await queue.stop()

    run(scenario)
    assert sorted(k.name for k in seen) == ["a", "b"]


def test_a_key_readded_while_processing_runs_again_after_not_alongside() -> None:
    """A key is never processed twice at once, and a change during processing is not lost."""
    passes = 0
    active = most = 0

    async def scenario() -> None:
        release = asyncio.Event()

        async def handle(_key: Key) -> None:
            nonlocal active, most, passes
            active += 1
            most = max(most, active)
            passes += 1
            if passes == 1:
                queue.add(job("k"))  # re-added while processing
                await release.wait()
            active -= 1

        queue = WorkQueue(handle, workers=4)
        queue.add(job("k"))
        queue.start()
        await until(lambda: passes == 1)
        release.set()
        await until(lambda: passes == 2 and queue.idle)
        await queue.stop()

    run(scenario)
    assert (most, passes) == (1, 2)


def test_each_kind_goes_in_its_priority_and_fifo_within_one() -> None:
    """An admission pass overtakes a long line of job keys, queue statuses come after them."""
    seen: list[Key] = []

    async def scenario() -> None:
        async def handle(key: Key) -> None:
            seen.append(key)

        queue = WorkQueue(handle, workers=1)
        queue.add(Key(Kind.QUEUE_STATUS, "ns", "q"))
        for i in range(50):
            queue.add(job(f"job-{i}"))
        queue.add(Key(Kind.ADMIT, "ns", "q"))
        queue.start()
        await until(lambda: queue.idle)
        await queue.stop()

    run(scenario)
    assert seen[0] == Key(Kind.ADMIT, "ns", "q")
    assert [k.name for k in seen[1:51]] == [f"job-{i}" for i in range(50)]
    assert seen[-1].kind is Kind.QUEUE_STATUS


def test_a_key_moves_up_when_added_with_a_better_priority_never_down() -> None:
    """A waiting job key added as START goes before other jobs; added as INFORM, it stays."""
    seen: list[str] = []

    async def scenario() -> None:
        async def handle(key: Key) -> None:
            seen.append(key.name)

        queue = WorkQueue(handle, workers=1)
        for name in ("a", "b", "c"):
            queue.add(job(name))
        queue.add(job("c"), Priority.START)
        queue.add(job("a"), Priority.INFORM)
        queue.add(job("late"), Priority.INFORM)
        queue.start()
        await until(lambda: queue.idle)
        await queue.stop()

    run(scenario)
    assert seen == ["c", "a", "b", "late"]


def test_a_key_dirtied_while_processing_keeps_the_best_priority_asked() -> None:
    """Re-added as START while being processed, the key comes back ahead of waiting jobs."""
    seen: list[str] = []

    async def scenario() -> None:
        release = asyncio.Event()

        async def handle(key: Key) -> None:
            seen.append(key.name)
            if len(seen) == 1:
                queue.add(job("first"), Priority.INFORM)
                queue.add(job("first"), Priority.START)
                queue.add(job("other"))
                await release.wait()

        queue = WorkQueue(handle, workers=1)
        queue.add(job("first"))
        queue.start()
        await until(lambda: len(seen) == 1)
        release.set()
        await until(lambda: queue.idle and len(seen) == 3)
        await queue.stop()

    run(scenario)
    assert seen == ["first", "first", "other"]


def test_add_after_wakes_the_key_at_its_earliest_time() -> None:
    """Only the earliest of several wake-ups is kept, and it fires once the clock reaches it."""
    clock = Clock()
    seen: list[datetime.datetime] = []

    async def scenario() -> None:
        async def handle(_key: Key) -> None:
            seen.append(clock.now)

        queue = WorkQueue(handle, workers=1, clock=clock)
        queue.add_after(job("a"), at(10))
        queue.add_after(job("a"), at(5))
        queue.add_after(job("a"), at(20))  # later than the one kept: dropped
        assert queue.due(job("a")) == at(5)
        queue.start()
        for _ in range(20):
            await asyncio.sleep(0)
        assert seen == []
        clock.now = at(5)
        queue.clock_moved()
        await until(lambda: len(seen) == 1 and queue.idle)
        clock.now = at(30)
        queue.clock_moved()
        for _ in range(20):
            await asyncio.sleep(0)
        await queue.stop()

    run(scenario)
    assert seen == [at(5)]


def test_a_failing_key_is_retried_with_a_growing_backoff_and_forgotten_on_success() -> None:
    """Failures back off 1 s, 2 s, ... (core.backoff, jittered); a success resets the count."""
    clock = Clock()
    attempts: list[datetime.datetime] = []

    async def scenario() -> None:
        async def handle(_key: Key) -> None:
            attempts.append(clock.now)
            if len(attempts) < 3:
                raise RuntimeError("the API server is away")

        queue = WorkQueue(handle, workers=1, clock=clock)
        queue.add(job("a"))
        queue.start()
        await until(lambda: len(attempts) == 1 and queue.idle)
        first_retry = queue.due(job("a"))
        assert first_retry is not None
        assert 0.9 <= (first_retry - clock.now).total_seconds() <= 1.1
        clock.now = first_retry
        queue.clock_moved()
        await until(lambda: len(attempts) == 2 and queue.idle)
        second_retry = queue.due(job("a"))
        assert second_retry is not None
        assert 1.8 <= (second_retry - clock.now).total_seconds() <= 2.2
        clock.now = second_retry
        queue.clock_moved()
        await until(lambda: len(attempts) == 3 and queue.idle)
        assert queue.due(job("a")) is None
        assert job("a") not in queue._failures
        await queue.stop()

    run(scenario)


def test_the_retry_delay_is_capped_at_a_minute() -> None:
    assert 54 <= workqueue.retry_delay(30) <= 66


def test_a_paused_queue_collects_keys_and_processes_them_once_resumed() -> None:
    seen: list[str] = []

    async def scenario() -> None:
        async def handle(key: Key) -> None:
            seen.append(key.name)

        queue = WorkQueue(handle, workers=2)
        queue.start()
        queue.pause()
        for name in ("a", "b", "a"):
            queue.add(job(name))
        for _ in range(50):
            await asyncio.sleep(0)
        assert seen == [] and len(queue) == 2
        queue.resume()
        await until(lambda: queue.idle and len(seen) == 2)
        await queue.stop()

    run(scenario)
    assert sorted(seen) == ["a", "b"]


def test_failures_alike_are_logged_once_a_minute_not_once_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A thousand keys failing with the same error: one line with its traceback; a minute
    later one line counting the rest."""
    now = [0.0]
    failures = workqueue.FailureLog(clock=lambda: now[0])
    error = RuntimeError("the API server is away")
    with caplog.at_level("ERROR", logger="conveyor.runtime.workqueue"):
        for i in range(1000):
            failures.failed(job(f"j{i}"), error, 1.0)
        assert len(caplog.records) == 1 and caplog.records[0].exc_info is not None
        now[0] = 61.0
        failures.failed(job("late"), error, 1.0)
    assert len(caplog.records) == 2
    assert "999 more job failures like it" in caplog.records[1].getMessage()


def test_failures_that_differ_only_in_the_names_they_quote_are_one_kind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RBAC revoked: each job's status write fails naming the job. One traceback, not one
    per job."""
    failures = workqueue.FailureLog(clock=lambda: 0.0)
    with caplog.at_level("ERROR", logger="conveyor.runtime.workqueue"):
        for i in range(20):
            error = RuntimeError(f'403: backgroundjobs "j{i}" is forbidden: User "x" cannot patch')
            failures.failed(job(f"j{i}"), error, 1.0)
    assert len(caplog.records) == 1
