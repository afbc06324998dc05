"""The objects of one resource as the operator last saw them, and their index.

Every object, whether from a list page, a watch event or the fake API server,
goes through `Store.apply`: it becomes a compact record (by the resource's
indexer) and a few entries in the index (a job: itself by name, its name
under its queue, under each job it depends on, ...), and `on_change(old,
new)` is called when its record changed. The informers (`informer`) and the
fake (`fake_kube`) both feed stores this way, so the controller's unit tests
read exactly what it reads in production. Touched on the event loop only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

R = TypeVar("R")
ObjectKey = tuple[str, str]  # (namespace or "", name)


class Index:
    """Index key → {object key: value}: what the controller reads, kept up to date by events.

    An object contributes a few entries (a job: itself by name, its name under its
    queue, under each job it depends on, ...); each change replaces all of them.
    Most keys have one object (a job by its name, the pods of one job): those hold
    the (object, value) pair itself, a fifth of the memory of a dict of one.
    """

    def __init__(self) -> None:
        self._by_key: dict[Hashable, tuple[ObjectKey, object] | dict[ObjectKey, object]] = {}

    def values(self, key: Hashable) -> Iterable[object]:
        found = self._by_key.get(key)
        if found is None:
            return ()
        if isinstance(found, dict):
            return found.values()
        return (found[1],)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def put(self, obj: ObjectKey, entries: Mapping[Hashable, object]) -> None:
        by_key = self._by_key
        for key, value in entries.items():
            found = by_key.get(key)
            if isinstance(found, dict):
                found[obj] = value
            elif found is None or found[0] == obj:
                by_key[key] = (obj, value)
            else:
                by_key[key] = {found[0]: found[1], obj: value}

    def drop(self, obj: ObjectKey, keys: Iterable[Hashable]) -> None:
        by_key = self._by_key
        for key in keys:
            found = by_key.get(key)
            if isinstance(found, dict):
                found.pop(obj, None)
                if len(found) == 1:
                    by_key[key] = next(iter(found.items()))
            elif found is not None and found[0] == obj:
                del by_key[key]


@dataclass(frozen=True, slots=True)
class Indexed(Generic[R]):
    """What an indexer makes of an object: its record, and its entries in the index."""

    record: R
    entries: Mapping[Hashable, object]


Indexer = Callable[[Mapping[str, Any]], "Indexed[R] | None"]
"""From an object body: its record and entries (None: not ours, ignore it)."""

OnChange = Callable[["R | None", "R | None"], None]
"""Called with the record before and after (None: absent) once the index changed; not
called when the object changed in ways its record does not show."""


@dataclass(slots=True)
class _Known(Generic[R]):
    resource_version: str
    record: R
    keys: tuple[Hashable, ...]


class Store(Generic[R]):
    """The objects of one resource, by (namespace, name), and their index."""

    def __init__(self, indexer: Indexer[R]) -> None:
        self.index = Index()
        self._indexer = indexer
        self._known: dict[ObjectKey, _Known[R]] = {}
        self.on_change: OnChange[R] = _ignore

    def __len__(self) -> int:
        return len(self._known)

    def known(self, namespace: str | None = None) -> list[ObjectKey]:
        """The objects known, in one namespace or all of them."""
        if namespace is None:
            return list(self._known)
        return [key for key in self._known if key[0] == namespace]

    def apply(self, obj: Mapping[str, Any], *, deleted: bool = False) -> ObjectKey | None:
        """Take the object's current state (or its deletion); returns its key if it is ours."""
        meta = obj.get("metadata") or {}
        key = (sys.intern(str(meta.get("namespace") or "")), str(meta.get("name") or ""))
        if deleted:
            self.forget(key)
            return key
        version = str(meta.get("resourceVersion") or "")
        known = self._known.get(key)
        if known is not None and known.resource_version == version:
            return key  # relisted unchanged
        made = self._indexer(obj)
        if made is None:
            if known is not None:
                self.forget(key)
            return None
        if known is not None:
            self.index.drop(key, known.keys)
        self.index.put(key, made.entries)
        self._known[key] = _Known(version, made.record, tuple(made.entries))
        old = known.record if known is not None else None
        if old is None or old != made.record:
            # A change the record does not show (a pod bound to its node, a label we do
            # not read, a newer resourceVersion only) is news to nobody.
            self.on_change(old, made.record)
        return key

    def forget(self, key: ObjectKey) -> None:
        known = self._known.pop(key, None)
        if known is not None:
            self.index.drop(key, known.keys)
            self.on_change(known.record, None)


def _ignore(_old: object, _new: object) -> None:
    return None
