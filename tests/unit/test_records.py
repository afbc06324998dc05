"""The compact records: a finished job's status kept as JSON reads as the models it was."""

from __future__ import annotations

import sys
from typing import Any

from conveyor.runtime.records import JobRecord

FINISHED_STATUS: dict[str, Any] = {
    "phase": "Succeeded",
    "attempts": 1,
    "startTime": "2026-12-02T01:00:00Z",
    "completionTime": "2026-12-02T01:00:05Z",
    "conditions": [
        {
            "type": "Complete",
            "status": "True",
            "reason": "Succeeded",
            "message": "attempt 1 succeeded",
            "lastTransitionTime": "2026-12-02T01:00:05Z",
        }
    ],
    "history": [
        {
            "attempt": 1,
            "podName": "send-1-a1",
            "result": "Succeeded",
            "exitCode": 0,
            "startTime": "2026-12-02T01:00:00Z",
            "finishedAt": "2026-12-02T01:00:05Z",
        }
    ],
}


def body(status: dict[str, Any], **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": "send-1",
            "uid": "u1",
            "resourceVersion": "7",
            "creationTimestamp": "2026-12-02T00:59:59Z",
            "annotations": annotations,
        },
        "spec": {"template": {"containers": [{"name": "main", "image": "busybox"}]}},
        "status": status,
    }


def test_a_finished_status_is_kept_as_json_and_reads_as_its_models() -> None:
    record = JobRecord.from_body(body(FINISHED_STATUS))
    status = record.status
    assert record.phase == status.phase == "Succeeded"
    assert status.attempts == 1
    assert status.history[0].pod_name == "send-1-a1"
    assert status.conditions[0].type == "Complete"
    assert record.job_status._model is None  # only the JSON is held
    assert record.job_status._json is not None
    assert sys.getsizeof(record.job_status._json) < 2 * len(record.job_status._json)


def test_a_running_status_is_kept_as_models() -> None:
    record = JobRecord.from_body(body({"phase": "Running", "attempts": 1}))
    assert record.job_status._json is None
    assert record.status.phase == record.phase == "Running"


def test_records_are_equal_when_their_statuses_are_whatever_their_form() -> None:
    record = JobRecord.from_body(body(FINISHED_STATUS))
    again = JobRecord.from_body(body(dict(FINISHED_STATUS)))
    assert record == again
    written = record.with_status(record.status, record.resource_version)
    assert written.job_status._model is not None  # as written: the models
    assert written == record
    other = record.with_status(
        record.status.model_copy(update={"attempts": 2}), record.resource_version
    )
    assert other != record


def test_the_overlay_takes_the_written_status_and_keeps_the_spec() -> None:
    indexed = JobRecord.from_body(body({"phase": "Queued"}))
    written = indexed.with_status(
        indexed.status.model_copy(update={"phase": "Running", "attempts": 1}), 9
    )
    overlaid = indexed.with_status_of(written)
    assert overlaid.phase == "Running"
    assert overlaid.resource_version == indexed.resource_version
    assert overlaid.spec == indexed.spec


def test_a_status_the_models_refuse_reads_as_empty_or_finished_as_its_phase_alone() -> None:
    running = JobRecord.from_body(body({"phase": "Running", "attempts": "many"}))
    assert running.phase is None
    assert running.status.attempts == 0
    finished = JobRecord.from_body(body({"phase": "Succeeded", "attempts": "many"}))
    assert finished.phase == finished.status.phase == "Succeeded"
    assert finished.status.attempts == 0


def test_only_the_operators_own_annotations_are_kept() -> None:
    record = JobRecord.from_body(
        body(
            {},
            **{
                "kubectl.kubernetes.io/last-applied-configuration": "{" + "x" * 2000 + "}",
                "conveyor.dev/replay": "r1",
            },
        )
    )
    assert dict(record.annotations) == {"conveyor.dev/replay": "r1"}
