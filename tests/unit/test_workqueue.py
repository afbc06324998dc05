"""The work queue: deduplication, no concurrent processing of a key, priorities, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from conveyor.runtime.workqueue import WorkQueue


def run(coro):
    return asyncio.run(coro)


def test_keys_added_many_times_are_processed_once():
    """Ten adds of a waiting key are one pass."""

    async def scenario() -> list[Hashable]:
        seen: list[Hashable] = []

        async def handle(key: Hashable) -> None:
            seen.append(key)

        queue = WorkQueue(handle, workers=2)
        for _ in range(10):
            queue.add("a")
        queue.add("b")
        queue.start()
        while len(queue) or len(seen) < 2:
            await asyncio.sleep(0)
        await queue.stop()
        return seen

    assert sorted(run(scenario())) == ["a", "b"]


def test_a_key_readded_while_processing_runs_again_after_not_alongside():
    """A key is never processed twice at once, and a change during processing is not lost."""

    async def scenario() -> tuple[int, int]:
        active = 0
        most = 0
        passes = 0
        release = asyncio.Event()

        async def handle(_key: Hashable) -> None:
            nonlocal active, most, passes
            active += 1
            most = max(most, active)
            passes += 1
            if passes == 1:
                queue.add("k")  # re-added while processing
                await release.wait()
            active -= 1

        queue = WorkQueue(handle, workers=4)
        queue.add("k")
        queue.start()
        while passes < 1:
            await asyncio.sleep(0)
        release.set()
        while passes < 2:
            await asyncio.sleep(0)
        await queue.stop()
        return most, passes

    most, passes = run(scenario())
    assert most == 1
    assert passes == 2


def test_lower_priority_numbers_go_first():
    """Admission keys overtake a long line of job keys."""

    async def scenario() -> list[Hashable]:
        seen: list[Hashable] = []

        async def handle(key: Hashable) -> None:
            seen.append(key)

        queue = WorkQueue(handle, workers=1, priority=lambda key: 0 if key == "admit" else 1)
        for i in range(100):
            queue.add(f"job-{i}")
        queue.add("admit")
        queue.start()
        while len(seen) < 101:
            await asyncio.sleep(0)
        await queue.stop()
        return seen

    seen = run(scenario())
    assert seen[0] == "admit"
    assert seen[1:] == [f"job-{i}" for i in range(100)]
