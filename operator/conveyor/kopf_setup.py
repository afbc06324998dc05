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
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Any

import kopf
import orjson

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
    from kopf._cogs.clients import api  # noqa: PLC0415 - a private module, checked below

    if getattr(api, "json", None) is None:
        return False
    api.json = types.SimpleNamespace(loads=orjson.loads)  # type: ignore[attr-defined,assignment]
    return True


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
    decode_watch_streams_with_orjson()
