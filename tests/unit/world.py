"""A whole operator against the fake API server, on a clock the test moves.

`World` wires a `Controller` to a `FakeKubeApi` the way `python -m conveyor`
wires it to the real one, and plays the user and the kubelet. `settle()`
runs the event loop until nothing is left to do now (no key, no watch event,
no event to post); `advance()` moves the clock and settles. Nothing sleeps.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import Any

from conveyor.api.v1alpha1 import API_VERSION
from conveyor.core import decisions
from conveyor.runtime.cache import Cache, Resource
from conveyor.runtime.controller import Controller
from conveyor.runtime.fake_kube import FakeKubeApi
from tests.unit.factories import T0

NAMESPACE = "shop"
IMAGE = "busybox:1.36"


class Clock:
    def __init__(self, start: datetime.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime.datetime:
        return self.now


class World:
    def __init__(self, *, workers: int = 4) -> None:
        self.clock = Clock()
        self.api = FakeKubeApi(clock=self.clock)
        self.workers = workers
        self.cache, self.controller = self._operator()  # idle until started
        self.reconciles: list[str] = []

    def _operator(
        self, *, listed: bool = False, unfinished_first: bool = False
    ) -> tuple[Cache, Controller]:
        """A new operator; `listed`: its watches have listed everything (no events yet), or
        with `unfinished_first` every object but the finished jobs and pods."""
        cache = Cache()
        if listed:
            self.api.connect(cache, select=_unfinished if unfinished_first else None)
        controller = Controller(
            self.api, cache, workers=self.workers, clock=self.clock, complete=not unfinished_first
        )
        return cache, controller

    # ------------------------------------------------------------ running

    async def start(self, *, settle: bool = True, unfinished_first: bool = False) -> None:
        """Start the operator as `conveyor.__main__` does: it lists everything, then its
        controller begins a term by looking at every job, and decides. `unfinished_first`:
        it begins before the finished jobs and pods are listed (`list_the_rest` lists them)."""
        self.cache, self.controller = self._operator(listed=True, unfinished_first=unfinished_first)
        self._count_reconciles()
        self.controller.resync()
        self.controller.start()
        if settle:
            await self.settle()
        else:
            await self.spin()

    async def list_the_rest(self) -> None:
        """The finished jobs and pods are listed too (after `start(unfinished_first=True)`)."""
        self.api.relist(self.cache)
        self.controller.completed()
        await self.settle()

    async def spin(self, rounds: int = 500) -> None:
        """Let the event loop run a while (when something is held and nothing can settle)."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def stop(self) -> None:
        await self.controller.stop()

    async def kill(self) -> None:
        """The operator dies, whatever it was doing."""
        await self.controller.stop()
        self.api.disconnect(self.cache)

    async def restart(self) -> None:
        """A new operator starts from what the API server holds (the old one dies, if alive)."""
        if self.api.connected(self.cache):
            await self.kill()
        await self.start()

    async def settle(self, rounds: int = 20) -> None:
        """Run until the operator has nothing left to do at this moment."""
        quiet = 0
        for _ in range(100_000):
            await asyncio.sleep(0)
            quiet = quiet + 1 if self.controller.idle else 0
            if quiet >= rounds:
                return
        raise AssertionError("the operator did not settle")

    async def advance(self, seconds: float) -> None:
        """Let what happened now be handled, then move the clock on and handle what falls due."""
        await self.settle()
        self.clock.now += datetime.timedelta(seconds=seconds)
        self.controller.work.clock_moved()
        await self.settle()

    def _count_reconciles(self) -> None:
        reconcile = self.controller.jobs.reconcile

        async def counted(record: Any) -> Any:
            self.reconciles.append(record.name)
            return await reconcile(record)

        self.controller.jobs.reconcile = counted  # type: ignore[method-assign]

    # ------------------------------------------------------------ the user

    def queue(self, name: str, **spec: Any) -> None:
        self.api.create(
            Resource.QUEUES,
            {
                "apiVersion": API_VERSION,
                "kind": "JobQueue",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": spec,
            },
        )

    def job(self, name: str, **spec: Any) -> None:
        body_spec = {
            "template": {"spec": {"containers": [{"name": "worker", "image": IMAGE}]}},
            **spec,
        }
        self.api.create(
            Resource.JOBS,
            {
                "apiVersion": API_VERSION,
                "kind": "BackgroundJob",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": body_spec,
            },
        )

    def update_queue(self, name: str, **spec: Any) -> None:
        self.api.update(Resource.QUEUES, NAMESPACE, name, spec=spec)

    def update_job(self, name: str, **spec: Any) -> None:
        self.api.update(Resource.JOBS, NAMESPACE, name, spec=spec)

    def annotate(self, job: str, annotation: str, value: str) -> None:
        """`kubectl annotate bgj JOB ANNOTATION=VALUE --overwrite`."""
        self.api.update(Resource.JOBS, NAMESPACE, job, annotations={annotation: value})

    # ------------------------------------------------------------ the kubelet

    def finish(self, pod: str, exit_code: int = 0) -> None:
        self.api.finish_pod(NAMESPACE, pod, exit_code=exit_code)

    async def finish_all(self, exit_code: int = 0) -> list[str]:
        """Finish every pod that runs, and let a moment pass (freed slots are refilled after
        admission's coalescing); returns their names."""
        running = [p for p in self.pods() if not self.pod_done(p)]
        for pod in running:
            self.finish(pod, exit_code)
        await self.advance(0.2)
        return running

    # ------------------------------------------------------------ reading

    def status(self, job: str) -> dict[str, Any]:
        body = self.api.get(Resource.JOBS, NAMESPACE, job)
        assert body is not None, f"job {job} does not exist"
        status: dict[str, Any] = body.get("status") or {}
        return status

    def phase(self, job: str) -> str | None:
        phase: str | None = self.status(job).get("phase")
        return phase

    def pods(self, job: str | None = None) -> list[str]:
        names = self.api.names(Resource.PODS, NAMESPACE)
        return [n for n in names if job is None or n.rsplit("-", 1)[0] == job]

    def pod_done(self, pod: str) -> bool:
        body = self.api.get(Resource.PODS, NAMESPACE, pod)
        return body is not None and body["status"]["phase"] in ("Succeeded", "Failed")

    def event_reasons(self, job: str) -> list[str]:
        return [e.reason for e in self.api.events if e.object_name == job]

    def condition(self, job: str, type_: str) -> dict[str, Any] | None:
        return next((c for c in self.status(job).get("conditions", []) if c["type"] == type_), None)


def _unfinished(resource: Resource, body: dict[str, Any]) -> bool:
    """What the operator's first list picks: every object but the finished jobs and pods."""
    phase = (body.get("status") or {}).get("phase")
    return resource not in (Resource.JOBS, Resource.PODS) or not decisions.is_terminal(phase)


def scenario(test: Callable[[World], Awaitable[None]]) -> Callable[[], None]:
    """Run an async test against a fresh world, and stop its operator afterwards."""

    def run() -> None:
        async def main() -> None:
            world = World()
            try:
                await test(world)
            finally:
                await world.stop()

        asyncio.run(asyncio.wait_for(main(), timeout=20))

    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run
