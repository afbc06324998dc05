"""kopf, set up for an operator that only watches and indexes.

kopf is built for handlers that change objects and remember their progress on
them. This operator has none: indices and on-event handlers only, and it
writes its own status. So kopf is told to write nothing of its own to the
objects (no finalizer, progress or diff-base annotations, no kopf events),
and to skip two costs that only change handlers need or that a faster
decoder removes. At 10,000 jobs, py-spy put a quarter of the operator's CPU
in each:

- the diff base: a deep copy of every object on every watch event, which
  kopf builds to detect changes for `on.create/update` handlers;
- `json.loads` of the watch stream, which orjson does several times faster.

And one cost that grows with the square of the objects: while kopf fills the
indices after a start, every listed object adds a toggle to a `ToggleSet`,
which wakes every object's worker to re-check all toggles. With 10,000 jobs
the operator did not admit anything for minutes. `CountingToggleSet` keeps
the same contract with a count, and wakes waiters only when the set flips.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from typing import Any

import kopf
import orjson
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import api as kopf_api

from conveyor.api.v1alpha1 import GROUP


class NoDiffBase(kopf.DiffBaseStorage):
    """A diff-base storage for an operator without change handlers: stores and builds nothing."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def decode_watch_streams_with_orjson() -> bool:
    """Make kopf's watch streams decode with orjson; False if this kopf reads them elsewhere."""
    if getattr(kopf_api, "json", None) is None:
        return False
    kopf_api.json = types.SimpleNamespace(loads=orjson.loads)  # type: ignore[attr-defined,assignment]
    return True


class _CountedToggle(aiotoggles.Toggle):
    """A toggle of a CountingToggleSet: tells the set when it flips."""

    def __init__(self, state: bool, *, name: str | None, owner: CountingToggleSet) -> None:
        super().__init__(state, name=name, condition=owner._condition)
        self._owner = owner

    async def turn_to(self, __state: bool) -> None:
        async with self._condition:
            if self._state != bool(__state) and self in self._owner._toggles:
                self._owner._on += 1 if __state else -1
            self._state = bool(__state)
            self._condition.notify_all()


class CountingToggleSet(aiotoggles.ToggleSet):
    """kopf's ToggleSet for `all` and `any`, with O(1) checks and wake-ups only on flips."""

    def __init__(self, fn: Callable[[Iterable[bool]], bool]) -> None:
        super().__init__(fn)
        self._on = 0

    def is_on(self) -> bool:
        if self._fn is all:
            return self._on == len(self._toggles)
        if self._fn is any:
            return self._on > 0
        return super().is_on()

    async def make_toggle(
        self, __val: bool = False, *, name: str | None = None
    ) -> aiotoggles.Toggle:
        toggle = _CountedToggle(__val, name=name, owner=self)
        async with self._condition:
            was = self.is_on()
            self._toggles.add(toggle)
            self._on += 1 if __val else 0
            self._notify_if_flipped(was)
        return toggle

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        await self.drop_toggles([toggle])

    async def drop_toggles(self, toggles: Iterable[aiotoggles.Toggle]) -> None:
        async with self._condition:
            was = self.is_on()
            for toggle in toggles:
                if toggle in self._toggles:
                    self._toggles.discard(toggle)
                    self._on -= 1 if toggle.is_on() else 0
            self._notify_if_flipped(was)

    def _notify_if_flipped(self, was: bool) -> None:
        if self.is_on() != was:
            self._condition.notify_all()


def count_toggles() -> None:
    """Make kopf build its toggle sets as CountingToggleSets (before the operator starts)."""
    aiotoggles.ToggleSet = CountingToggleSet  # type: ignore[misc]


def configure(settings: kopf.OperatorSettings, *, watch_namespaces: bool) -> None:
    """Scanning (watching Namespaces and CRDs) only when namespace patterns need it."""
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    settings.scanning.disabled = not watch_namespaces
