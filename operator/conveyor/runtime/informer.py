"""List-and-watch of one resource into an in-memory store, the way client-go's informers do it.

The controller reads BackgroundJobs, pods, JobQueues and PriorityClasses from
memory and is told which ones changed. kopf would give every object its own
worker and run its handler machinery per event: at 10,000 jobs that was about
half the operator's CPU, and after a restart it held every listed object's
event until all were indexed (20 s and the operator's peak memory). Here one
task per resource lists the objects page by page, then watches from the
list's resourceVersion; a watch that expires (410 Gone) or breaks is followed
by a fresh list, whose differences are delivered as events too, so nothing is
missed across a gap.

An informer may list in two steps (`first_selector`): first the objects a
field selector picks (the jobs not finished yet), which is enough to begin
(`ready`), then everything (`synced`), and only then watch. After a restart
over 50,000 finished jobs, the unfinished few list in a moment while the
rest take tens of seconds; the controller begins with the first step and
holds back only what needs the rest (see `controller`). A server that cannot
select on the field (400) is listed in one step.

The informer is the network side only: what it reads goes into a `Store`
(`store`), which the fake API server feeds the same way in unit tests.
Blocking HTTP runs in threads: list pages in the API client's pool, each
watch stream on a thread of its own that decodes events with orjson and hands
them to the event loop a chunk at a time. Everything else, the store
included, is touched on the event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson
import urllib3

from conveyor.core import backoff
from conveyor.runtime import metrics
from conveyor.runtime.store import ObjectKey, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

PAGE_SIZE = 250  # larger pages list no faster, and cost more memory while the controller runs
WATCH_SECONDS = 300  # the API server ends each watch after this; it is then resumed
READ_TIMEOUT_SECONDS = WATCH_SECONDS + 30  # bookmarks arrive well within this


def relist_delay(failures: int) -> float:
    """Seconds before listing again after `failures` failed lists or watches in a row."""
    return backoff.delay_seconds(
        strategy="Exponential",
        initial=1.0,
        multiplier=2.0,
        maximum=10.0,
        jitter=0.2,
        failures=failures,
    )


class ExpiredError(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class StreamError(RuntimeError):
    """The watch stream sent an ERROR event (other than 410), with its HTTP status."""

    def __init__(self, status: object, message: str) -> None:
        super().__init__(message)
        self.status = status if isinstance(status, int) else None


Lister = Callable[..., Any]
"""A `list_*` function of the official client, bound to its resource and namespace."""


class Informer:
    """One resource in one namespace (or all of them), listed, then watched, into a Store."""

    def __init__(
        self,
        name: str,
        lister: Lister,
        store: Store[Any],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        namespace_filter: Callable[[str], bool] | None = None,
        in_pool: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None,
        first_selector: str | None = None,
        before_the_rest: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        """`first_selector`: a field selector for a first, partial list; `before_the_rest`:
        awaited between that list and the full one (so that the other informers list first)."""
        self.name = name
        self._lister = lister
        self._store = store
        self._namespace = namespace
        self._selector = label_selector
        self._namespace_filter = namespace_filter
        self._in_pool = in_pool
        self._first_selector = first_selector
        self._before_the_rest = before_the_rest
        self._resource_version = ""
        self.ready = asyncio.Event()
        """Listed once, perhaps only what `first_selector` picks: enough to begin."""
        self.synced = asyncio.Event()
        """Listed everything once."""
        self.events_seen = 0
        self.lists = 0
        self.objects = 0
        self.failing_since: float | None = None
        """When listing began to fail (monotonic), while it fails; the store is stale then."""
        self.last_error = ""
        self._stopping = threading.Event()
        self._responses: set[Any] = set()  # open watch streams, for stop() to cut
        self._task: asyncio.Task[None] | None = None

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

    @property
    def resource(self) -> str:
        """The resource's plural name (the name without its namespace)."""
        return self.name.partition("@")[0]

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            verb = "list"
            try:
                if self._first_selector and not self.ready.is_set():
                    await self._list_first()
                await self.relist()
                if self.failing_since is not None:
                    log.info("%s: listed again after %s", self.name, self.last_error)
                self.failing_since = None
                self.ready.set()
                self.synced.set()
                while not self._stopping.is_set():
                    verb = "watch"
                    await self._watch_once()
                    failures = 0  # a watch that ran its course: the backoff starts over
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if _request_failed(error):
                    metrics.api_error(verb, self.resource, _status(error))
                if _gone(error):
                    log.info("%s: the watch expired; listing again", self.name)
                    continue
                if self._stopping.is_set():
                    return
                failures += 1
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                self.last_error = _describe(error)
                delay = relist_delay(failures)
                log.warning("%s: %s; listing again in %.1f s", self.name, self.last_error, delay)
                await asyncio.sleep(delay)

    def recheck(self) -> None:
        """Watch anew now: the API server checks a watch's permission when it begins, so a
        watch begun before the operator's RBAC was revoked goes on streaming; the next one
        is refused, and the informer is then stale until it can list again."""
        self._cut_streams()

    def _cut_streams(self) -> None:
        for response in list(self._responses):
            with contextlib.suppress(Exception):  # closed already
                response.shutdown()  # unblocks the watch thread's read

    # ------------------------------------------------------------ list

    async def _list_first(self) -> None:
        """The first, partial list; then wait for `before_the_rest`."""
        assert self._first_selector is not None
        try:
            await self.relist(self._first_selector)
        except Exception as error:
            if _status(error) != 400:
                raise
            log.info(
                "%s: the API server cannot select %s (%s); listing everything at once",
                self.name,
                self._first_selector,
                _describe(error),
            )
            self._first_selector = None
            return
        log.info("%s: listed %d with %s", self.name, self.objects, self._first_selector)
        self.ready.set()
        if self._before_the_rest is not None:
            await self._before_the_rest()

    async def relist(self, field_selector: str | None = None) -> None:
        """List every object; deliver what changed since the last list or watch, and what went.
        With `field_selector`, list only what it selects, and forget nothing.

        The next page is asked for before this one is applied, so that the API server
        reads it while the operator indexes this one."""
        seen: set[ObjectKey] = set()
        page = await self._call(self._list_page, None, field_selector)
        while True:
            metadata = page.get("metadata") or {}
            token = metadata.get("continue") or None
            following = (
                asyncio.ensure_future(self._call(self._list_page, token, field_selector))
                if token
                else None
            )
            await asyncio.sleep(0)  # the request is on its way
            try:
                for item in page.get("items") or []:
                    key = self._apply(item, deleted=False)
                    if key is not None:
                        seen.add(key)
            except BaseException:
                if following is not None:
                    following.cancel()
                raise
            if following is None:
                self._resource_version = str(metadata.get("resourceVersion") or "")
                break
            page = await following
        self.objects = len(seen)
        if field_selector is not None:
            return
        for key in self._store.known(self._namespace):
            if key not in seen:
                self._store.forget(key)
        self.lists += 1

    def _list_page(self, token: str | None, field_selector: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_preload_content": False}
        if token:
            kwargs["_continue"] = token
        if field_selector:
            kwargs["field_selector"] = field_selector
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
                raise StreamError(obj.get("code"), f"watch error: {obj.get('message') or obj}")
            version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if kind != "BOOKMARK":
                self.events_seen += 1
                self._apply(obj, deleted=kind == "DELETED")
            if version:
                self._resource_version = version

    def _apply(self, obj: Mapping[str, Any], *, deleted: bool) -> ObjectKey | None:
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        if self._namespace_filter is not None and not self._namespace_filter(namespace):
            return None
        return self._store.apply(obj, deleted=deleted)


def _describe(error: BaseException) -> str:
    status = getattr(error, "status", None)
    if status is not None:
        reason = getattr(error, "reason", None) or str(error)
        return f"{status} {reason}".strip()
    return repr(error)[:300]


def _request_failed(error: BaseException) -> bool:
    """The list or watch request failed (not the informer's own handling of what it read)."""
    return _status(error) is not None or isinstance(error, urllib3.exceptions.HTTPError | OSError)


def _status(error: BaseException) -> int | None:
    """The HTTP status a list or watch failed with (410 for an expired watch)."""
    if isinstance(error, ExpiredError):
        return 410
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def _gone(error: BaseException) -> bool:
    """A 410 from the watch stream, or from the API client (raw or translated)."""
    return isinstance(error, ExpiredError) or getattr(error, "status", None) == 410
