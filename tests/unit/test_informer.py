"""The informer's bookkeeping: pages, relists that find deletions, watch streams cut anywhere.

The lister here replays canned API responses; the informers against a real API
server are exercised by every integration test (the operator reads nothing else).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import orjson
import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from conveyor.runtime.informer import ExpiredError, Informer
from conveyor.runtime.store import Index, Indexed, Store


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def sync() -> None:
        asyncio.run(test())

    return sync


def obj(name: str, rv: int, namespace: str = "ns", queue: str = "q") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(rv)},
        "spec": {"queue": queue},
    }


def indexer(body: Any) -> Any:
    meta = body["metadata"]
    name = meta["name"]
    if name.startswith("ignored"):
        return None
    queue = body["spec"]["queue"]
    return Indexed((name, queue), {("job", name): name, ("in-queue", queue): name})


class Response:
    def __init__(self, data: Any = None, chunks: list[bytes] | None = None) -> None:
        self.data = orjson.dumps(data) if data is not None else b""
        self.chunks = chunks or []
        self.released = False

    def stream(self, amt: int, decode_content: bool) -> Iterator[bytes]:
        yield from self.chunks

    def release_conn(self) -> None:
        self.released = True

    def shutdown(self) -> None:
        pass


class Lister:
    """Answers list calls with `pages` (consumed), watch calls with `watches` (consumed)."""

    def __init__(self) -> None:
        self.pages: list[dict[str, Any]] = []
        self.watches: list[list[bytes]] = []
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Response:
        self.calls.append(kwargs)
        if kwargs.get("watch"):
            if not self.watches:
                raise ConnectionError("no more watches in this test")
            return Response(chunks=self.watches.pop(0))
        return Response(self.pages.pop(0))


def page(items: list[dict[str, Any]], rv: int, token: str | None = None) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": str(rv), "continue": token}, "items": items}


def event(kind: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": body}) + b"\n"


def make(lister: Lister, **kwargs: Any) -> tuple[Informer, Index, list[tuple[str, bool]]]:
    store: Store[Any] = Store(indexer)
    changes: list[tuple[str, bool]] = []

    def on_change(old: Any, new: Any) -> None:
        changes.append(((new or old)[0], new is None))

    store.on_change = on_change
    informer = Informer("jobs", lister, store, **kwargs)
    return informer, store.index, changes


def values(index: Index, key: Any) -> list[str]:
    return sorted(str(v) for v in index.values(key))


@run
async def test_a_list_of_several_pages_fills_the_index():
    lister = Lister()
    lister.pages = [page([obj("a", 1), obj("b", 2)], 5, "next"), page([obj("c", 3)], 5)]
    informer, index, changes = make(lister)
    await informer.relist()
    assert values(index, ("in-queue", "q")) == ["a", "b", "c"]
    assert changes == [("a", False), ("b", False), ("c", False)]
    assert lister.calls[1]["_continue"] == "next"
    assert informer.objects == 3


@run
async def test_the_next_page_is_asked_for_before_this_one_is_indexed():
    lister = Lister()
    lister.pages = [page([obj("a", 1)], 5, "next"), page([obj("b", 2)], 5)]
    asked = threading.Event()
    answer = lister.__call__

    def listing(**kwargs: Any) -> Response:
        if kwargs.get("_continue"):
            asked.set()
        return answer(**kwargs)

    store: Store[Any] = Store(indexer)
    asked_before: list[bool] = []
    store.on_change = lambda _old, new: asked_before.append(asked.wait(5))
    informer = Informer("jobs", listing, store)
    await informer.relist()
    assert asked_before == [True, True]  # "a" indexed once the page of "b" was asked for
    assert sorted(str(v) for v in store.index.values(("in-queue", "q"))) == ["a", "b"]


@run
async def test_a_relist_delivers_what_went_and_what_changed_only():
    lister = Lister()
    lister.pages = [
        page([obj("a", 1), obj("b", 2), obj("c", 3)], 5),
        page([obj("a", 1), obj("b", 7, queue="other")], 8),
    ]
    informer, index, changes = make(lister)
    await informer.relist()
    changes.clear()
    await informer.relist()
    assert changes == [("b", False), ("c", True)]
    assert values(index, ("in-queue", "q")) == ["a"]
    assert values(index, ("in-queue", "other")) == ["b"]
    assert ("job", "c") not in index


@run
async def test_an_object_the_indexer_refuses_is_not_indexed_and_is_dropped_if_it_was():
    lister = Lister()
    lister.pages = [page([obj("ignored-1", 1), obj("a", 2)], 5)]
    informer, index, changes = make(lister)
    await informer.relist()
    assert changes == [("a", False)]
    assert ("job", "ignored-1") not in index


@run
async def test_watch_events_cut_anywhere_are_applied_in_order():
    lister = Lister()
    lister.pages = [page([obj("a", 1)], 5)]
    stream = (
        event("ADDED", obj("b", 6))
        + event("MODIFIED", obj("a", 7, queue="other"))
        + event("BOOKMARK", {"metadata": {"resourceVersion": "9"}})
        + event("DELETED", obj("b", 10))
    )
    lister.watches = [[stream[:13], stream[13:70], stream[70:]]]
    informer, index, changes = make(lister)
    await informer.relist()
    await informer._watch_once()
    assert changes == [("a", False), ("b", False), ("a", False), ("b", True)]
    assert values(index, ("in-queue", "other")) == ["a"]
    assert ("in-queue", "q") not in index
    assert lister.calls[-1]["resource_version"] == "5"
    assert informer._resource_version == "10"
    assert informer.events_seen == 3


@run
async def test_an_expired_watch_raises_and_the_informer_lists_again():
    lister = Lister()
    lister.pages = [page([obj("a", 1)], 5), page([obj("b", 12)], 12)]
    gone = event("ERROR", {"kind": "Status", "code": 410, "message": "too old"})
    lister.watches = [[gone]]
    informer, index, changes = make(lister)
    await informer.relist()
    with pytest.raises(ExpiredError):
        await informer._watch_once()
    task = asyncio.create_task(informer.run())
    for _ in range(200):
        if informer.lists >= 2:
            break
        await asyncio.sleep(0.01)
    await informer.stop()
    task.cancel()
    assert informer.lists >= 2
    assert ("a", True) in changes
    assert values(index, ("in-queue", "q")) == ["b"]


@run
async def test_a_change_the_record_does_not_show_is_indexed_and_not_delivered():
    lister = Lister()
    lister.pages = [page([obj("a", 1)], 5)]
    lister.watches = [[event("MODIFIED", obj("a", 6)), event("MODIFIED", obj("a", 7, queue="r"))]]
    informer, index, changes = make(lister)
    await informer.relist()
    await informer._watch_once()
    assert changes == [("a", False), ("a", False)]
    assert informer._store._known[("ns", "a")].resource_version == "7"
    assert values(index, ("in-queue", "r")) == ["a"]


@run
async def test_a_namespace_filter_ignores_other_namespaces():
    lister = Lister()
    lister.pages = [page([obj("a", 1, namespace="team-a"), obj("b", 2, namespace="kube")], 5)]
    informer, index, changes = make(lister, namespace_filter=lambda ns: ns.startswith("team-"))
    await informer.relist()
    assert changes == [("a", False)]
    assert values(index, ("in-queue", "q")) == ["a"]


def test_the_index_keeps_one_value_per_object_under_each_key():
    index = Index()
    index.put(("ns", "a"), {"k": 1, "j": 1})
    index.put(("ns", "b"), {"k": 2})
    assert sorted(index.values("k")) == [1, 2]  # type: ignore[type-var]
    index.drop(("ns", "a"), {"k": 1, "j": 1})
    assert list(index.values("k")) == [2]
    assert "j" not in index
    assert list(index.values("j")) == []


def test_an_index_key_keeps_its_objects_in_order_as_they_come_and_go():
    index = Index()
    for name in ("a", "b", "c"):
        index.put(("ns", name), {"k": name})
    index.drop(("ns", "a"), ["k"])
    index.drop(("ns", "b"), ["k"])
    assert list(index.values("k")) == ["c"]
    index.put(("ns", "a"), {"k": "a"})
    index.put(("ns", "c"), {"k": "c2"})
    assert list(index.values("k")) == ["c2", "a"]
    index.drop(("ns", "c"), ["k"])
    index.drop(("ns", "a"), ["k"])
    assert "k" not in index


@run
async def test_a_namespaced_relist_forgets_only_its_own_namespace():
    """Two informers (one per namespace) share a store: each relist drops only its own."""
    store: Store[Any] = Store(indexer)
    first, second = Lister(), Lister()
    first.pages = [page([obj("a", 1, namespace="one")], 5), page([], 6)]
    second.pages = [page([obj("b", 2, namespace="two")], 5)]
    one = Informer("jobs@one", first, store, namespace="one")
    two = Informer("jobs@two", second, store, namespace="two")
    await one.relist()
    await two.relist()
    await one.relist()  # "a" went
    assert store.known() == [("two", "b")]


class Quiet(Response):
    """A watch that sends nothing until it is cut."""

    def __init__(self) -> None:
        super().__init__()
        self.cut = threading.Event()

    def stream(self, amt: int, decode_content: bool) -> Iterator[bytes]:
        self.cut.wait(5)
        yield from ()

    def shutdown(self) -> None:
        self.cut.set()


@run
async def test_a_failing_list_marks_the_informer_stale_until_a_list_succeeds():
    """A 404 (the CRD deleted) keeps failing: failing_since stays at its first failure, the
    error is kept for the log and the probe; the next good list clears both."""

    class GoneError(Exception):
        status = 404
        reason = "Not Found"

    class Flaky(Lister):
        def __init__(self) -> None:
            super().__init__()
            self.refuse = True

        def __call__(self, **kwargs: Any) -> Response:
            if kwargs.get("watch"):
                return Quiet()
            if self.refuse:
                raise GoneError()
            return super().__call__(**kwargs)

    lister = Flaky()
    informer, _, _ = make(lister)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("conveyor.runtime.informer.relist_delay", lambda failures: 0.001)
        task = asyncio.create_task(informer.run())
        for _ in range(200):
            if informer.failing_since is not None:
                break
            await asyncio.sleep(0.001)
        first = informer.failing_since
        assert first is not None and informer.last_error == "404 Not Found"
        await asyncio.sleep(0.02)
        assert informer.failing_since == first
        lister.pages = [page([obj("a", 1)], 5)]
        lister.refuse = False
        for _ in range(200):
            if informer.failing_since is None:
                break
            await asyncio.sleep(0.001)
        assert informer.failing_since is None and informer.synced.is_set()
        await informer.stop()
        task.cancel()


@run
async def test_a_list_that_fails_is_counted_by_verb_resource_and_status():
    """A 403 on the list: conveyor_api_request_errors_total{verb=list,resource=jobs,code=403}."""
    labels = {"verb": "list", "resource": "jobs", "code": "403"}
    before = REGISTRY.get_sample_value("conveyor_api_request_errors_total", labels) or 0.0

    def forbidden(**kwargs: Any) -> Response:
        raise ApiException(status=403, reason="Forbidden")

    informer, _, _ = make(forbidden)
    informer.start()
    for _ in range(200):
        if informer.failing_since is not None:
            break
        await asyncio.sleep(0.01)
    await informer.stop()
    assert informer.last_error == "403 Forbidden"
    assert REGISTRY.get_sample_value("conveyor_api_request_errors_total", labels) == before + 1


@run
async def test_a_recheck_cuts_a_watch_begun_before_its_rbac_was_revoked():
    """A watch streams on after the operator's permission is revoked (the API server checks
    it when a watch begins). `recheck` (a write was forbidden) begins a new watch, which is
    refused: the informer is stale, so the operator stops acting on that resource."""

    class Revocable(Lister):
        def __init__(self) -> None:
            super().__init__()
            self.revoked = False
            self.pages = [page([obj("a", 1)], 5)]

        def __call__(self, **kwargs: Any) -> Response:
            if self.revoked:
                raise ApiException(status=403, reason="Forbidden")
            if kwargs.get("watch"):
                return Quiet()
            return super().__call__(**kwargs)

    lister = Revocable()
    informer, _, _ = make(lister)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("conveyor.runtime.informer.relist_delay", lambda failures: 0.001)
        informer.start()
        await asyncio.wait_for(informer.synced.wait(), 2)
        lister.revoked = True
        await asyncio.sleep(0.05)
        assert informer.failing_since is None, "the open watch does not know yet"
        informer.recheck()
        for _ in range(200):
            if informer.failing_since is not None:
                break
            await asyncio.sleep(0.005)
        await informer.stop()
    assert informer.last_error == "403 Forbidden"


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


@run
async def test_a_first_selector_lists_what_it_picks_then_everything_then_watches():
    """ready after the selected list; the full list waits for `before_the_rest`, forgets
    nothing the first brought, and the watch resumes from the full list's version."""
    lister = Lister()
    lister.pages = [page([obj("a", 1)], 5), page([obj("a", 1), obj("done", 2)], 6)]
    go_on = asyncio.Event()
    informer, index, changes = make(
        lister, first_selector="status.phase!=Succeeded", before_the_rest=go_on.wait
    )
    informer.start()
    await until(informer.ready.is_set)
    assert values(index, ("in-queue", "q")) == ["a"]
    assert not informer.synced.is_set()
    assert lister.calls[0]["field_selector"] == "status.phase!=Succeeded"
    go_on.set()
    await until(informer.synced.is_set)
    await until(lambda: len(lister.calls) >= 3)  # the watch (none are left: it fails)
    await informer.stop()
    assert "field_selector" not in lister.calls[1]
    assert lister.calls[2]["watch"] and lister.calls[2]["resource_version"] == "6"
    assert changes == [("a", False), ("done", False)]
    assert values(index, ("in-queue", "q")) == ["a", "done"]


@run
async def test_a_server_that_cannot_select_the_field_is_listed_in_one_step():
    """A 400 to the selected list (an API server without CRD field selectors): the informer
    lists everything at once, and is ready when synced."""
    lister = Lister()
    lister.pages = [page([obj("a", 1), obj("done", 2)], 6)]
    answer = lister.__call__

    def listing(**kwargs: Any) -> Response:
        if kwargs.get("field_selector"):
            raise ApiException(status=400, reason='field label not supported: "status.phase"')
        return answer(**kwargs)

    informer, index, _ = make(listing, first_selector="status.phase!=Succeeded")
    informer.start()
    await until(informer.synced.is_set)
    await informer.stop()
    assert informer.ready.is_set()
    assert values(index, ("in-queue", "q")) == ["a", "done"]
    assert [call.get("field_selector") for call in lister.calls[:1]] == [None]
