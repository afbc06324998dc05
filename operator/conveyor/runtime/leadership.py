"""Leader election: of the operator's replicas, only the holder of a Lease acts.

The election is the Kubernetes client's own (`kubernetes.leaderelection`, a
`LeaseLock` on a `coordination.k8s.io` Lease), run on a thread of its own,
since it blocks. Every replica lists and watches all the time, so its cache
is warm; only the leader decides and writes. A takeover therefore costs no
relist: the new leader looks at every object in its cache once and carries
on.

Fencing. A leader may write only while it is sure nobody else can: until
`renew_deadline` after the start of its last successful renewal. A follower
takes over only `lease_duration` after it last saw the lease change, which
is later than that renewal reached the API server; the difference
(`lease_duration - renew_deadline`) is the margin for a write already on
the wire. `may_write()` is checked right before every write leaves the
process (`kube.ClientKubeApi`'s fence), so a leader cut off from the API
server stops writing when its window closes, whether or not the election's
thread has noticed yet.

Leaving. On a graceful stop (a rolling update, `kubectl delete pod`) the
leader stops writing, then releases the lease (an empty holder), so that a
follower takes over at its next retry instead of waiting for the lease to
expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kubernetes
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from conveyor.runtime import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    """The election's periods, in seconds (validated by the client's `Config`)."""

    lease_duration: int = 10
    """A follower takes over when the lease has not changed for this long."""
    renew_deadline: int = 7
    """The leader stops writing this long after its last successful renewal began."""
    retry_period: int = 2
    """How often the leader renews and followers look."""


class Leadership:
    def __init__(
        self,
        client: kubernetes.client.ApiClient,
        *,
        name: str,
        namespace: str,
        identity: str,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.timing = timing
        self._clock = clock
        self._lock = LeaseLock(name, namespace, identity)  # type: ignore[no-untyped-call]
        self._lock.api_instance = _WithTimeout(  # type: ignore[assignment]
            kubernetes.client.CoordinationV1Api(client), float(timing.retry_period)
        )
        self._leading = False
        self._renewed = float("-inf")
        self._leaving = threading.Event()
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ the fence

    def may_write(self) -> bool:
        """This replica holds the lease, and renewed it recently enough to be sure."""
        return self._leading and self._clock() < self._renewed + self.timing.renew_deadline

    def renewed(self, began: float) -> None:
        """A renewal (or the acquisition) that began at `began` succeeded."""
        self._renewed = max(self._renewed, began)
        self._notify()

    def started_leading(self) -> None:
        self._leading = True
        metrics.LEADER.set(1)
        log.info("%s holds the lease %s/%s: leading", self.identity, self.namespace, self.name)
        self._notify()

    def stopped_leading(self) -> None:
        was = self._leading
        self._leading = False
        metrics.LEADER.set(0)
        if was:
            log.warning(
                "%s lost the lease %s/%s: writing nothing more",
                self.identity,
                self.namespace,
                self.name,
            )
        self._notify()

    # ------------------------------------------------------------ running

    def start(self) -> None:
        """Campaign on a thread of its own, again after every term, until the process ends."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        metrics.LEADER.set(0)
        threading.Thread(target=self._campaign, name="leader-election", daemon=True).start()

    async def acquired(self) -> None:
        """Until this replica may write."""
        while not self.may_write():
            await self._wait_change(None)

    async def lost(self) -> None:
        """Until this replica may no longer write: its term is over, or its window closed."""
        while self.may_write():
            await self._wait_change(self._renewed + self.timing.renew_deadline - self._clock())

    def release(self) -> None:
        """Stop writing, and hand the lease over at once (blocking: call it off the loop)."""
        self._leaving.set()  # no more renewals, no new campaign
        leading, self._leading = self._leading, False
        metrics.LEADER.set(0)
        if not leading:
            return
        try:
            found, record = self._lock.get(self.name, self.namespace)  # type: ignore[no-untyped-call]
            if not found or record.holder_identity != self.identity:
                return
            now = str(datetime.datetime.now())
            released = LeaderElectionRecord("", "1", now, now)  # type: ignore[no-untyped-call]
            if self._lock.update(self.name, self.namespace, released):  # type: ignore[no-untyped-call]
                log.info("released the lease %s/%s", self.namespace, self.name)
        except Exception as error:  # leaving anyway: the lease expires on its own
            log.warning("could not release the lease %s/%s: %r", self.namespace, self.name, error)

    def _campaign(self) -> None:
        config = electionconfig.Config(  # type: ignore[no-untyped-call]
            self._lock,
            lease_duration=self.timing.lease_duration,
            renew_deadline=self.timing.renew_deadline,
            retry_period=self.timing.retry_period,
            onstarted_leading=lambda: self._threadsafe(self.started_leading),
            onstopped_leading=lambda: self._threadsafe(self.stopped_leading),
        )
        while not self._leaving.is_set():
            try:
                _Election(config, self).run()  # type: ignore[no-untyped-call]
            except Exception:
                log.exception("leader election failed; campaigning again")
                self._threadsafe(self.stopped_leading)
            time.sleep(self.timing.retry_period)

    def _threadsafe(self, fn: Callable[[], None]) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(fn)

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def _wait_change(self, within: float | None) -> None:
        assert self._changed is not None
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), within)


class _Election(leaderelection.LeaderElection):
    """The client's election, telling `Leadership` when each of its renewals began."""

    def __init__(self, config: electionconfig.Config, leadership: Leadership) -> None:
        super().__init__(config)  # type: ignore[no-untyped-call]
        self._leadership = leadership

    def try_acquire_or_renew(self) -> bool:
        if self._leadership._leaving.is_set():
            return False
        began = self._leadership._clock()
        held = bool(super().try_acquire_or_renew())  # type: ignore[no-untyped-call]
        if held:
            loop = self._leadership._loop
            if loop is not None:
                loop.call_soon_threadsafe(self._leadership.renewed, began)
        return held


class _WithTimeout:
    """The Lease calls the lock makes, each with a timeout, so that a cut-off API server
    cannot hold the election's thread."""

    def __init__(self, api: Any, seconds: float) -> None:
        self._api = api
        self._timeout = seconds

    def read_namespaced_lease(self, *args: Any, **kwargs: Any) -> Any:
        return self._api.read_namespaced_lease(*args, _request_timeout=self._timeout, **kwargs)

    def create_namespaced_lease(self, *args: Any, **kwargs: Any) -> Any:
        return self._api.create_namespaced_lease(*args, _request_timeout=self._timeout, **kwargs)

    def replace_namespaced_lease(self, *args: Any, **kwargs: Any) -> Any:
        return self._api.replace_namespaced_lease(*args, _request_timeout=self._timeout, **kwargs)
