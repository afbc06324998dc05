"""What the dashboard knows: every job and queue it may see, kept current by watches.

One list-and-watch per resource and namespace scope (`runtime.informer`, the
operator's own), never a request per object: a job becomes a
`summary.JobRow` once per change, and every page is computed from the rows
in memory, filtered and paged on the server, so ten thousand jobs cost one
pass over a list per request. Listeners (each open page's event stream) are
told when anything changed, at most every `COALESCE` seconds, with a
version number they compare.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes

from conveyor.api.v1alpha1 import GROUP, VERSION
from conveyor.core import summary
from conveyor.runtime.informer import Informer
from conveyor.runtime.store import Indexed, Store

log = logging.getLogger(__name__)

COALESCE = 0.5
"""Seconds: changes closer together than this reach the browser as one update."""


def _queue_record(body: Mapping[str, Any]) -> Indexed[dict[str, Any]]:
    meta = body.get("metadata") or {}
    record = {
        "metadata": {"namespace": meta.get("namespace", ""), "name": meta.get("name", "")},
        "spec": dict(body.get("spec") or {}),
    }
    return Indexed(record, {})


def _job_record(body: Mapping[str, Any]) -> Indexed[summary.JobRow]:
    return Indexed(summary.job_row(body), {})


class Board:
    """Rows of every job and queue in scope, and a version that moves when they change."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], summary.JobRow] = {}
        self.queues: dict[tuple[str, str], dict[str, Any]] = {}
        self.job_store: Store[summary.JobRow] = Store(_job_record)
        self.queue_store: Store[dict[str, Any]] = Store(_queue_record)
        self.job_store.on_change = self._job_changed
        self.queue_store.on_change = self._queue_changed
        self.version = 0
        self._changed = asyncio.Event()
        self._informers: list[Informer] = []

    # ------------------------------------------------------------ feeding

    def _job_changed(self, old: summary.JobRow | None, new: summary.JobRow | None) -> None:
        if new is None:
            if old is not None:
                self.jobs.pop(old.key, None)
        else:
            self.jobs[new.key] = new
        self._touch()

    def _queue_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        record = new or old
        assert record is not None
        meta = record["metadata"]
        key = (meta["namespace"], meta["name"])
        if new is None:
            self.queues.pop(key, None)
        else:
            self.queues[key] = new
        self._touch()

    def _touch(self) -> None:
        self.version += 1
        self._changed.set()

    def watch(self, client: kubernetes.client.ApiClient, namespaces: Sequence[str]) -> None:
        """Start listing and watching jobs and queues (in these namespaces; none: all)."""
        custom = kubernetes.client.CustomObjectsApi(client)
        scopes: list[str | None] = list(namespaces) or [None]
        for scope in scopes:
            for plural, store in (
                ("backgroundjobs", self.job_store),
                ("jobqueues", self.queue_store),
            ):
                if scope is None:
                    lister = functools.partial(
                        custom.list_cluster_custom_object, GROUP, VERSION, plural
                    )
                else:
                    lister = functools.partial(
                        custom.list_namespaced_custom_object, GROUP, VERSION, scope, plural
                    )
                informer = Informer(
                    plural if scope is None else f"{plural}@{scope}", lister, store, namespace=scope
                )
                self._informers.append(informer)
                informer.start()

    async def synced(self) -> None:
        """Until every watch has listed once."""
        await asyncio.gather(*(i.synced.wait() for i in self._informers))

    async def stop(self) -> None:
        await asyncio.gather(*(i.stop() for i in self._informers))

    def health(self) -> dict[str, Any]:
        return {
            i.name: {
                "synced": i.synced.is_set(),
                "failing": i.last_error if i.failing_since is not None else None,
            }
            for i in self._informers
        }

    async def changes(self, after: int) -> int:
        """Wait until the version moves past `after` (coalescing a burst); the new version."""
        while self.version <= after:
            self._changed.clear()
            await self._changed.wait()
        await asyncio.sleep(COALESCE)
        return self.version

    # ------------------------------------------------------------ reading

    def namespaces(self) -> list[str]:
        return sorted({ns for ns, _ in self.jobs} | {ns for ns, _ in self.queues})

    def queue_rows(
        self, now: datetime.datetime, namespace: str | None = None
    ) -> list[summary.QueueRow]:
        queues = [q for (ns, _), q in self.queues.items() if namespace in (None, ns)]
        jobs = [r for r in self.jobs.values() if namespace in (None, r.namespace)]
        return summary.queue_rows(queues, jobs, now)
