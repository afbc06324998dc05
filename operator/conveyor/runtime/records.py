"""Compact records of the objects the operator watches, built once per watch event.

The indices hold these instead of whole objects: parsing happens once, when
an event arrives, and the reconcilers read typed fields. A spec the models
reject (something the CRD schema let through) becomes a record with
`spec_error` set, so that one bad object gets an InvalidSpec condition and
every other job goes on.

Finished jobs are most of a namespace that keeps them (no TTL), and are
rarely read again: a finished job's status is kept as its JSON (a sixth of
the memory of its models) and parsed again when something reads it, and a
job keeps only the annotations the operator reads (`conveyor.dev/`), not
kubectl's copy of the whole object.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pydantic

from conveyor.api.v1alpha1 import (
    BackgroundJobSpec,
    BackgroundJobStatus,
    JobQueueSpec,
    JobQueueStatus,
)
from conveyor.core import naming
from conveyor.core.decisions import JobView, is_terminal
from conveyor.core.outcome import PodView

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
OWN_ANNOTATIONS = "conveyor.dev/"
_NO_ANNOTATIONS: Mapping[str, str] = types.MappingProxyType({})


def resource_version(meta: Mapping[str, Any]) -> int:
    """resourceVersions are opaque, but etcd's are integers; compare newer-than with this."""
    try:
        return int(meta.get("resourceVersion") or 0)
    except ValueError:
        return 0


def _errors(error: pydantic.ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"])
        parts.append(f"spec.{where}: {item['msg']}")
    return "; ".join(parts)


class _SpecCache:
    """Parse each distinct BackgroundJob spec once, and share it between the jobs that have it.

    Jobs submitted by the thousand mostly differ only in name: with the parsed
    (frozen) spec and its raw form shared, ten thousand jobs cost ten thousand
    statuses, not ten thousand pod templates, in memory and in parsing time.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: collections.OrderedDict[
            bytes, tuple[Mapping[str, Any], BackgroundJobSpec | None, str | None]
        ] = collections.OrderedDict()

    def parse(
        self, raw: Mapping[str, Any]
    ) -> tuple[Mapping[str, Any], BackgroundJobSpec | None, str | None]:
        try:
            key = bytes(memoryview(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)))
        except TypeError:
            return self._validate(raw)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        entry = self._entries[key] = self._validate(raw)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return entry

    @staticmethod
    def _validate(
        raw: Mapping[str, Any],
    ) -> tuple[Mapping[str, Any], BackgroundJobSpec | None, str | None]:
        try:
            return raw, BackgroundJobSpec.model_validate(raw), None
        except pydantic.ValidationError as error:
            return raw, None, _errors(error)


_job_specs = _SpecCache(size=1024)


class JobStatus:
    """A job's status: its models while the job runs, its JSON once it has finished.

    A finished job's JSON is kept as it came and parsed only when read (`read`),
    with the last few kept (`_parse_finished`), since a job is read a few times in
    a row when it is reconciled: a restart over 50,000 finished jobs parses none
    of them, and holds a sixth of the memory. Its phase is known without parsing.
    Equal when the statuses are.
    """

    __slots__ = ("_json", "_model", "phase")

    def __init__(
        self, phase: str | None, model: BackgroundJobStatus | None, json: bytes | None
    ) -> None:
        self.phase = phase
        self._model = model
        self._json = json

    @classmethod
    def of(cls, model: BackgroundJobStatus) -> JobStatus:
        return cls(model.phase, model, None)

    @classmethod
    def of_body(cls, raw: Mapping[str, Any]) -> JobStatus:
        phase = raw.get("phase")
        if isinstance(phase, str) and is_terminal(phase):
            # Copied, as the spec cache's keys: orjson's result keeps its 4 KiB buffer.
            return cls(phase, None, bytes(memoryview(orjson.dumps(raw))))
        try:
            return cls.of(BackgroundJobStatus.model_validate(raw))
        except pydantic.ValidationError:
            return cls.of(BackgroundJobStatus())

    def read(self) -> BackgroundJobStatus:
        if self._model is not None:
            return self._model
        assert self._json is not None and self.phase is not None
        return _parse_finished(self._json, self.phase)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobStatus):
            return NotImplemented
        if self._json is not None and other._json is not None:
            return self._json == other._json
        return self.read() == other.read()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JobStatus({self.read()!r})"


@functools.lru_cache(maxsize=256)
def _parse_finished(json: bytes, phase: str) -> BackgroundJobStatus:
    try:
        return BackgroundJobStatus.model_validate_json(json)
    except pydantic.ValidationError:
        # Finished it is, whatever else the status says: never run again for want of a field.
        return BackgroundJobStatus.model_validate({"phase": phase})


@dataclass(frozen=True, slots=True)
class JobRecord:
    namespace: str
    name: str
    uid: str
    resource_version: int = field(compare=False)
    generation: int | None
    created_at: datetime.datetime
    deleting: bool
    annotations: Mapping[str, str]
    owner_uid: str | None
    parent: str | None  # the recurring job this is a run of (its label)
    spec: BackgroundJobSpec | None
    spec_error: str | None
    job_status: JobStatus
    raw_spec: Mapping[str, Any] = field(repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def status(self) -> BackgroundJobStatus:
        return self.job_status.read()

    @property
    def phase(self) -> str | None:
        """The status's phase, without reading the rest of it."""
        return self.job_status.phase

    @property
    def queue(self) -> str:
        if self.spec is not None:
            return self.spec.queue or naming.NO_QUEUE
        queue = self.raw_spec.get("queue")
        return str(queue) if queue else naming.NO_QUEUE

    @property
    def depends_on(self) -> list[str]:
        if self.spec is not None:
            return list(self.spec.depends_on or [])
        return []

    def view(self) -> JobView:
        assert self.spec is not None
        return JobView(
            name=self.name,
            namespace=self.namespace,
            generation=self.generation,
            created_at=self.created_at,
            spec=self.spec,
            status=self.status,
            annotations=self.annotations,
        )

    def with_status(self, status: BackgroundJobStatus, resource_version: int) -> JobRecord:
        return _replace(self, job_status=JobStatus.of(status), resource_version=resource_version)

    def with_status_of(self, written: JobRecord) -> JobRecord:
        """This job (its spec, its version) with the other record's status."""
        return _replace(self, job_status=written.job_status)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> JobRecord:
        meta = body.get("metadata") or {}
        raw_spec, spec, spec_error = _job_specs.parse(body.get("spec") or {})
        status = JobStatus.of_body(body.get("status") or {})
        annotations = meta.get("annotations") or {}
        owner_uid = next(
            (
                ref.get("uid")
                for ref in meta.get("ownerReferences") or []
                if ref.get("kind") == "BackgroundJob" and ref.get("controller")
            ),
            None,
        )
        return cls(
            namespace=sys.intern(meta.get("namespace", "")),
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            resource_version=resource_version(meta),
            generation=meta.get("generation"),
            created_at=naming.parse_time(meta.get("creationTimestamp")) or EPOCH,
            deleting=bool(meta.get("deletionTimestamp")),
            annotations=_own(annotations),
            owner_uid=owner_uid,
            parent=_shared((meta.get("labels") or {}).get(naming.LABEL_PARENT) or None),
            spec=spec,
            spec_error=spec_error,
            job_status=status,
            raw_spec=raw_spec,
        )


@dataclass(frozen=True)
class QueueRecord:
    namespace: str
    name: str
    generation: int | None
    spec: JobQueueSpec | None
    spec_error: str | None
    status: JobQueueStatus

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> QueueRecord:
        meta = body.get("metadata") or {}
        spec: JobQueueSpec | None = None
        spec_error = None
        try:
            spec = JobQueueSpec.model_validate(body.get("spec") or {})
        except pydantic.ValidationError as error:
            spec_error = _errors(error)
        try:
            status = JobQueueStatus.model_validate(body.get("status") or {})
        except pydantic.ValidationError:
            status = JobQueueStatus()
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            generation=meta.get("generation"),
            spec=spec,
            spec_error=spec_error,
            status=status,
        )


@dataclass(frozen=True, slots=True)
class PodRecord:
    namespace: str
    uid: str
    job: str
    queue: str
    resource_version: int = field(compare=False)
    view: PodView
    failing_container: str | None
    creator: str | None = field(default=None, compare=False)
    """The operator that created the pod (`conveyor.dev/operator`), if it says."""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PodRecord | None:
        meta = body.get("metadata") or {}
        labels = meta.get("labels") or {}
        try:
            attempt = int(labels.get(naming.LABEL_ATTEMPT, ""))
        except ValueError:
            return None
        annotations = meta.get("annotations") or {}
        status = body.get("status") or {}
        created_at = naming.parse_time(annotations.get(naming.ANNOTATION_CREATED_AT))
        if created_at is None:
            stamp = naming.parse_time(meta.get("creationTimestamp"))
            # Second precision: assume the end of the second, which errs on the safe side
            # of the rate limit.
            created_at = stamp + datetime.timedelta(seconds=1) if stamp else None

        exit_code = container_reason = container_message = failing = None
        waiting_reason = waiting_message = None
        finished: list[datetime.datetime] = []
        statuses = status.get("containerStatuses") or []
        for container in statuses:
            state = container.get("state") or {}
            terminated = state.get("terminated")
            if terminated:
                moment = naming.parse_time(terminated.get("finishedAt"))
                if moment:
                    finished.append(moment)
                code = terminated.get("exitCode")
                if failing is None and (code not in (0, None) or exit_code is None):
                    if code not in (0, None):
                        failing = container.get("name")
                    exit_code = code
                    container_reason = terminated.get("reason")
                    container_message = terminated.get("message")
            waiting = state.get("waiting")
            if waiting and waiting_reason is None:
                waiting_reason = waiting.get("reason")
                waiting_message = waiting.get("message")
        if failing is None and statuses:
            failing = statuses[0].get("name")

        disruption = unschedulable = None
        for condition in status.get("conditions") or []:
            if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
                disruption = condition.get("reason") or "DisruptionTarget"
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"
            ):
                unschedulable = condition.get("message") or "no node fits the pod"
        view = PodView(
            name=meta.get("name", ""),
            attempt=attempt,
            phase=sys.intern(status.get("phase") or "Pending"),
            created_at=created_at,
            finished_at=max(finished) if finished else None,
            deleting=bool(meta.get("deletionTimestamp")),
            reason=_shared(status.get("reason")),
            message=status.get("message"),
            exit_code=exit_code,
            container_reason=_shared(container_reason),
            container_message=container_message,
            waiting_reason=_shared(waiting_reason),
            waiting_message=waiting_message,
            disruption_reason=disruption,
            unschedulable_message=unschedulable,
        )
        return cls(
            namespace=sys.intern(meta.get("namespace", "")),
            uid=meta.get("uid", ""),
            job=labels.get(naming.LABEL_JOB, ""),
            queue=sys.intern(labels.get(naming.LABEL_QUEUE, "")),
            resource_version=resource_version(meta),
            view=view,
            failing_container=_shared(failing),
            creator=_shared(annotations.get(naming.ANNOTATION_OPERATOR)),
        )


def _shared(text: str | None) -> str | None:
    """One copy of a string that many records hold (a namespace, a queue, a phase)."""
    return sys.intern(text) if isinstance(text, str) else text


def _own(annotations: Mapping[str, str]) -> Mapping[str, str]:
    """The operator's annotations of an object (most have none: one shared empty map)."""
    own = {k: v for k, v in annotations.items() if k.startswith(OWN_ANNOTATIONS)}
    return own or _NO_ANNOTATIONS


def _replace(record: JobRecord, **changes: Any) -> JobRecord:
    return dataclasses.replace(record, **changes)
