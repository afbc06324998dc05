"""The event recorder: repeated events counted as client-go's recorder counts them, each
object's events in order, against the fake API server."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable

import pytest

from conveyor.core.decisions import Event
from conveyor.runtime import events, kube, kube_errors
from conveyor.runtime.fake_kube import FakeKubeApi
from tests.unit.factories import T0, at
from tests.unit.world import World, scenario

JOB = events.Subject("BackgroundJob", "ns", "send-1", "uid-1")
OTHER = events.Subject("BackgroundJob", "ns", "send-2", "uid-2")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now


def record(
    batches: list[tuple[float, events.Subject, list[Event]]],
    *,
    between: Callable[[FakeKubeApi], None] | None = None,
    prepare: Callable[[FakeKubeApi], None] | None = None,
) -> FakeKubeApi:
    """Record each batch at its time (seconds after T0), posting everything before the next;
    `prepare` the API server first, and do `between` after each batch."""

    async def main() -> FakeKubeApi:
        clock = Clock()
        api = FakeKubeApi(clock=clock)
        if prepare is not None:
            prepare(api)
        recorder = events.EventRecorder(api, clock=clock)
        recorder.start()
        try:
            for seconds, subject, batch in batches:
                clock.now = at(seconds)
                recorder.record(subject, batch)
                for _ in range(200):  # one after the other, as reconciles come
                    if recorder.idle:
                        break
                    await asyncio.sleep(0)
                assert recorder.idle
                if between is not None:
                    between(api)
        finally:
            await recorder.stop()
        return api

    return asyncio.run(main())


def _expire_first(api: FakeKubeApi) -> None:
    """The API server drops the first Event (as it does after an hour), not its repost."""
    if [e.count for e in api.events] == [1]:
        api.events.clear()


def failed(n: int) -> Event:
    return Event("Warning", "AttemptFailed", f"attempt {n} failed: Error, exit code 1")


def test_the_same_event_again_counts_into_the_first() -> None:
    """Same object, reason and message within the window: one Event, count and
    lastTimestamp growing, firstTimestamp kept."""
    same = Event("Warning", "QueueNotFound", "JobQueue 'email' does not exist")
    api = record([(0, JOB, [same]), (30, JOB, [same]), (90, JOB, [same])])
    assert len(api.events) == 1
    (posted,) = api.events
    assert (posted.count, posted.first_at, posted.at) == (3, at(0), at(90))
    assert api.count("post_event") == 1 and api.count("patch_event") == 2


def test_after_the_window_it_is_a_new_event() -> None:
    same = Event("Normal", "Suspended", "spec.suspend is true")
    window = events.WINDOW.total_seconds()
    api = record([(0, JOB, [same]), (window + 1, JOB, [same])])
    assert [e.count for e in api.events] == [1, 1]


def test_a_job_failing_50_times_posts_a_handful_of_events() -> None:
    """Fifty different AttemptFailed messages: the first SIMILAR - 1 as they are, then one
    combined Event counting the rest, with the latest message; every failure counted."""
    api = record([(n * 5, JOB, [failed(n)]) for n in range(1, 51)])
    posted = [e for e in api.events if e.reason == "AttemptFailed"]
    assert len(posted) == events.SIMILAR
    assert sum(e.count for e in posted) == 50
    combined = posted[-1]
    assert combined.message == events.COMBINED + failed(50).message
    assert combined.count == 50 - (events.SIMILAR - 1)
    assert [e.message for e in posted[:-1]] == [failed(n).message for n in range(1, 10)]


def test_other_objects_and_reasons_are_counted_apart() -> None:
    api = record([(n, subject, [failed(1)]) for n in range(3) for subject in (JOB, OTHER)])
    assert sorted((e.object_name, e.count) for e in api.events) == [("send-1", 3), ("send-2", 3)]


def test_each_objects_events_keep_their_order() -> None:
    """Events of one object are posted in the order recorded, their names sorting the same
    way (kubectl describe's order within a second), whatever the others do."""
    batches = [
        (0.0, JOB, [Event("Normal", "Started", "attempt 1 started"), failed(1)]),
        (0.0, OTHER, [Event("Normal", "Started", "attempt 1 started")]),
        (0.5, JOB, [Event("Normal", "Started", "attempt 2 started"), failed(2)]),
    ]
    api = record(batches)
    mine = [e for e in api.events if e.object_name == "send-1"]
    assert [e.message for e in mine] == [
        "attempt 1 started",
        failed(1).message,
        "attempt 2 started",
        failed(2).message,
    ]
    assert [e.name for e in mine] == sorted(e.name for e in mine)


def test_a_repeat_whose_event_is_gone_is_posted_anew_with_its_count() -> None:
    """The API server dropped the Event (expired after an hour): the repeat creates it
    again, counted, instead of being lost."""
    same = Event("Warning", "QueueNotFound", "missing")
    api = record([(0, JOB, [same]), (10, JOB, [same])], between=_expire_first)
    (posted,) = api.events
    assert (posted.count, posted.first_at, posted.at) == (2, at(0), at(10))


@pytest.mark.parametrize("refusal", [kube_errors.ApiError(403, "cannot patch events")])
def test_a_repeat_that_may_not_be_patched_is_posted_under_a_new_name(
    refusal: Exception,
) -> None:
    """An older chart's Role grants events create only: the repeat is still seen."""
    same = Event("Warning", "QueueNotFound", "missing")
    api = record(
        [(0, JOB, [same]), (1, JOB, [same])],
        prepare=lambda api: api.fail("patch_event", refusal, times=10),
    )
    assert [e.count for e in api.events] == [1, 2]
    assert len({e.name for e in api.events}) == 2


@scenario
async def test_a_job_that_keeps_failing_leaves_counted_events(world: World) -> None:
    """The whole operator: a job failing 15 times (no backoff) posts at most SIMILAR
    AttemptFailed Events and as many Started ones, counting every attempt."""
    world.job(
        "flaky",
        retry={"maxAttempts": 16, "backoff": {"strategy": "Fixed", "initialDelaySeconds": 0}},
    )
    await world.start()
    for attempt in range(1, 16):
        await world.advance(0.1)
        world.finish(f"flaky-{attempt}", exit_code=1)
        await world.advance(0.1)
    posted = [e for e in world.api.events if e.object_name == "flaky"]
    by_reason: dict[str, list[kube.EventBody]] = {}
    for event in posted:
        by_reason.setdefault(event.reason, []).append(event)
    assert sum(e.count for e in by_reason["AttemptFailed"]) == 15
    assert len(by_reason["AttemptFailed"]) <= events.SIMILAR
    assert sum(e.count for e in by_reason["Started"]) == 16
    assert len(by_reason["Started"]) <= events.SIMILAR


def test_quiet_reasons_are_not_posted() -> None:
    """--quiet-event Started: the attempt's Started event is not posted, its failure is."""

    async def main() -> list[str]:
        api = FakeKubeApi()
        recorder = events.EventRecorder(api, quiet=frozenset({"Started"}))
        recorder.start()
        recorder.record(JOB, [Event("Normal", "Started", "attempt 1 started"), failed(1)])
        while not recorder.idle:
            await asyncio.sleep(0)
        await recorder.stop()
        return [e.reason for e in api.events]

    assert asyncio.run(main()) == ["AttemptFailed"]
