"""List-and-watch of one resource into in-memory indices, the way client-go's informers do it.

The controller reads BackgroundJobs, pods, JobQueues and PriorityClasses from
memory and is told which ones changed. kopf would give every object its own
worker and run its handler machinery per event: at 10,000 jobs that was about
half the operator's CPU, and after a restart it held every listed object's
event until all were indexed (20 s and the operator's peak memory). Here one
task per resource lists the objects page by page, then watches from the
list's resourceVersion; a watch that expires (410 Gone) or breaks is followed
by a fresh list, whose differences are delivered as events too, so nothing is
missed across a gap.

Blocking HTTP runs in threads: list pages in the API client's pool, each
watch stream on a thread of its own that decodes events with orjson and hands
them to the event loop a chunk at a time. Everything else, the indices
included, is touched on the event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

log = logging.getLogger(__name__)

T = TypeVar("T")
ObjectKey = tuple[str, str]  # (namespace or "", name)

PAGE_SIZE = 500
WATCH_SECONDS = 300  # the API server ends each watch after this; it is then resumed
READ_TIMEOUT_SECONDS = WATCH_SECONDS + 30  # bookmarks arrive well within this
MAX_BACKOFF_SECONDS = 30.0


class ExpiredError(Exception):
    """The watch's resourceVersion is too old (410): list again."""


Lister = Callable[..., Any]
"""A `list_*` function of the official client, bound to its resource and namespace."""


class Index:
    """Index key → {object key: value}: what the controller reads, kept up to date by events.

    An object contributes a few entries (a job: itself by name, its name under its
    queue, under each job it depends on, ...); each change replaces all of them.
    """

    def __init__(self) -> None:
        self._by_key: dict[Hashable, dict[ObjectKey, Any]] = {}

    def get(self, key: Hashable, default: Any = None) -> Any:
        store = self._by_key.get(key)
        return store.values() if store else default

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def put(self, obj: ObjectKey, entries: Mapping[Hashable, Any]) -> None:
        for key, value in entries.items():
            self._by_key.setdefault(key, {})[obj] = value

    def drop(self, obj: ObjectKey, keys: Iterator[Hashable] | Mapping[Hashable, Any]) -> None:
        for key in keys:
            store = self._by_key.get(key)
            if store is not None:
                store.pop(obj, None)
                if not store:
                    del self._by_key[key]


Indexer = Callable[[Mapping[str, Any]], tuple[Any, Mapping[Hashable, Any]] | None]
"""From an object: its record, and its entries in the index (None: not ours, ignore it)."""

OnChange = Callable[[Any, bool], None]
"""Called with the object's record, and whether the object is gone, after the index changed
(not when the object changed in ways its record does not show)."""


@dataclass
class _Known:
    resource_version: str
    record: Any
    entries: Mapping[Hashable, Any]


class Informer:
    """One resource in one namespace (or all of them), listed, then watched, into an Index."""

    def __init__(
        self,
        name: str,
        lister: Lister,
        *,
        index: Index,
        indexer: Indexer,
        on_change: OnChange,
        label_selector: str | None = None,
        namespace_filter: Callable[[str], bool] | None = None,
        in_pool: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None,
    ) -> None:
        self.name = name
        self._lister = lister
        self._index = index
        self._indexer = indexer
        self._on_change = on_change
        self._selector = label_selector
        self._namespace_filter = namespace_filter
        self._in_pool = in_pool
        self._known: dict[ObjectKey, _Known] = {}
        self._resource_version = ""
        self.synced = asyncio.Event()
        self.events_seen = 0
        self.lists = 0
        self._stopping = threading.Event()
        self._responses: set[Any] = set()  # open watch streams, for stop() to cut
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._known)

    # ------------------------------------------------------------ running

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.name}")

    async def stop(self) -> None:
        self._stopping.set()
        self._cut_streams()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                await self.relist()
                self.synced.set()
                while not self._stopping.is_set():
                    await self._watch_once()
                    failures = 0  # a watch that ran its course: the backoff starts over
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if _gone(error):
                    log.info("%s: the watch expired; listing again", self.name)
                    continue
                if self._stopping.is_set():
                    return
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures) * random.uniform(0.8, 1.2)
                log.warning("%s: %r; listing again in %.1f s", self.name, error, delay)
                await asyncio.sleep(delay)

    def _cut_streams(self) -> None:
        for response in list(self._responses):
            with contextlib.suppress(Exception):  # closed already
                response.shutdown()  # unblocks the watch thread's read

    # ------------------------------------------------------------ list

    async def relist(self) -> None:
        """List every object; deliver what changed since the last list or watch, and what went."""
        seen: set[ObjectKey] = set()
        token: str | None = None
        while True:
            page = await self._call(self._list_page, token)
            metadata = page.get("metadata") or {}
            for item in page.get("items") or []:
                key = self._apply(item, deleted=False)
                if key is not None:
                    seen.add(key)
            token = metadata.get("continue") or None
            if token is None:
                self._resource_version = str(metadata.get("resourceVersion") or "")
                break
        for key in [k for k in self._known if k not in seen]:
            self._forget(key)
        self.lists += 1

    def _list_page(self, token: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_preload_content": False}
        if token:
            kwargs["_continue"] = token
        if self._selector:
            kwargs["label_selector"] = self._selector
        kwargs["_request_timeout"] = (10, 60)
        response = self._lister(**kwargs)
        try:
            page: dict[str, Any] = orjson.loads(response.data)
        finally:
            response.release_conn()
        return page

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._in_pool is not None:
            result: T = await self._in_pool(lambda: fn(*args))
            return result
        return await asyncio.to_thread(fn, *args)

    # ------------------------------------------------------------ watch

    async def _watch_once(self) -> None:
        """Watch from the last resourceVersion until the server ends the stream."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def deliver(events: list[dict[str, Any]]) -> None:
            if done.done():
                return
            try:
                self._deliver(events)
            except Exception as error:
                done.set_exception(error)
                self._cut_streams()

        def finish(error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        def stream() -> None:
            error: BaseException | None = None
            try:
                self._stream(lambda batch: loop.call_soon_threadsafe(deliver, batch))
            except BaseException as caught:  # handed to the loop, raised there
                error = caught
            with contextlib.suppress(RuntimeError):  # the loop is closed: exiting
                loop.call_soon_threadsafe(finish, error)

        threading.Thread(target=stream, name=f"watch-{self.name}", daemon=True).start()
        await done

    def _stream(self, hand_over: Callable[[list[dict[str, Any]]], Any]) -> None:
        kwargs: dict[str, Any] = {
            "watch": True,
            "allow_watch_bookmarks": True,
            "resource_version": self._resource_version,
            "timeout_seconds": WATCH_SECONDS,
            "_preload_content": False,
            "_request_timeout": (10, READ_TIMEOUT_SECONDS),
        }
        if self._selector:
            kwargs["label_selector"] = self._selector
        response = self._lister(**kwargs)
        self._responses.add(response)
        try:
            rest = b""
            for chunk in response.stream(65536, decode_content=True):
                if self._stopping.is_set():
                    return
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                batch = [orjson.loads(line) for line in lines if line.strip()]
                if batch:
                    hand_over(batch)
            if rest.strip():
                hand_over([orjson.loads(rest)])
        finally:
            self._responses.discard(response)
            with contextlib.suppress(Exception):  # cut by stop()
                response.release_conn()

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise ExpiredError(obj.get("message"))
                raise RuntimeError(f"watch error: {obj.get('message') or obj}")
            version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if kind != "BOOKMARK":
                self.events_seen += 1
                self._apply(obj, deleted=kind == "DELETED")
            if version:
                self._resource_version = version

    # ------------------------------------------------------------ the index

    def _apply(self, obj: Mapping[str, Any], *, deleted: bool) -> ObjectKey | None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        if self._namespace_filter is not None and not self._namespace_filter(namespace):
            return None
        key = (namespace, str(meta.get("name") or ""))
        if deleted:
            self._forget(key)
            return key
        version = str(meta.get("resourceVersion") or "")
        known = self._known.get(key)
        if known is not None and known.resource_version == version:
            return key  # relisted unchanged
        made = self._indexer(obj)
        if made is None:
            if known is not None:
                self._forget(key)
            return None
        record, entries = made
        if known is not None:
            self._index.drop(key, known.entries)
        self._index.put(key, entries)
        self._known[key] = _Known(version, record, entries)
        if known is None or known.record != record:
            # A change the record does not show (a pod bound to its node, a label we do
            # not read, a newer resourceVersion only) is news to nobody.
            self._on_change(record, False)
        return key

    def _forget(self, key: ObjectKey) -> None:
        known = self._known.pop(key, None)
        if known is not None:
            self._index.drop(key, known.entries)
            self._on_change(known.record, True)


def _gone(error: BaseException) -> bool:
    """A 410 from the watch stream, or from the API client (raw or translated)."""
    return isinstance(error, ExpiredError) or getattr(error, "status", None) == 410
