"""kopf set up to write nothing and skip what only change handlers need."""

from __future__ import annotations

import asyncio

import kopf
from hypothesis import given, settings
from hypothesis import strategies as st
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import api as kopf_api

from conveyor import kopf_setup


def test_the_pinned_kopf_decodes_watch_streams_where_we_replace_the_decoder():
    """If a kopf upgrade moves the decoder, this fails instead of silently losing the speed-up."""
    assert kopf_setup.decode_watch_streams_with_orjson()
    line = b'{"type": "ADDED", "object": {"metadata": {"name": "a\\u00e9"}}}'
    assert kopf_api.json.loads(line.decode("utf-8")) == {
        "type": "ADDED",
        "object": {"metadata": {"name": "aé"}},
    }


def test_kopf_builds_no_diff_base_and_writes_nothing_of_its_own():
    """The diff base kopf builds per event is empty, and kopf posts and scans nothing."""
    settings = kopf.OperatorSettings()
    kopf_setup.configure(settings, watch_namespaces=False)
    body = kopf.Body({"metadata": {"name": "x", "namespace": "n"}, "spec": {"a": [1, 2]}})
    storage = settings.persistence.diffbase_storage
    assert storage.fetch(body=body) is None
    assert storage.build(body=body) == {}
    assert settings.scanning.disabled
    assert not settings.posting.enabled


toggle_ops = st.lists(
    st.one_of(
        st.tuples(st.just("make"), st.booleans()),
        st.tuples(st.just("drop"), st.integers(0, 20)),
        st.tuples(st.just("turn"), st.integers(0, 20), st.booleans()),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(fn=st.sampled_from([all, any]), ops=toggle_ops)
def test_counting_toggle_set_agrees_with_kopfs(fn, ops):
    """Same states as kopf's ToggleSet after any sequence of makes, drops and flips."""

    async def run() -> None:
        ours, theirs = kopf_setup.CountingToggleSet(fn), aiotoggles.ToggleSet(fn)
        made: list[tuple[aiotoggles.Toggle, aiotoggles.Toggle]] = []
        for op in ops:
            if op[0] == "make":
                made.append((await ours.make_toggle(op[1]), await theirs.make_toggle(op[1])))
            elif made and op[0] == "drop":
                a, b = made[op[1] % len(made)]
                await ours.drop_toggle(a)
                await theirs.drop_toggle(b)
            elif made and op[0] == "turn":
                a, b = made[op[1] % len(made)]
                await a.turn_to(op[2])
                await b.turn_to(op[2])
            assert ours.is_on() == theirs.is_on()
            assert len(ours) == len(theirs)

    asyncio.run(run())


def test_waiters_wake_when_the_last_object_is_indexed():
    """kopf's indexing gate: workers wait until every listed object's toggle is dropped."""

    async def run() -> None:
        gate = kopf_setup.CountingToggleSet(all)
        toggles = [await gate.make_toggle(name=str(i)) for i in range(1000)]
        waiters = [asyncio.create_task(gate.wait_for(True)) for _ in range(1000)]
        await asyncio.sleep(0)
        for toggle in toggles[:-1]:
            await gate.drop_toggle(toggle)
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiters)
        await gate.drop_toggle(toggles[-1])
        await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)

    asyncio.run(run())


def test_kopf_builds_its_toggle_sets_through_the_module_attribute_we_replace():
    """If a kopf upgrade builds them elsewhere, this fails instead of bringing back O(n^2)."""
    import inspect

    from kopf._core.reactor import orchestration, running

    assert "aiotoggles.ToggleSet(all)" in inspect.getsource(orchestration)
    assert "aiotoggles.ToggleSet(any)" in inspect.getsource(running)
    original = aiotoggles.ToggleSet
    try:
        kopf_setup.count_toggles()
        assert aiotoggles.ToggleSet is kopf_setup.CountingToggleSet
    finally:
        aiotoggles.ToggleSet = original
