"""The operator's metrics after real jobs on the real cluster: the values, not only the names.

The session's operator serves metrics (`conveyor_operator`); this test scrapes it as
Prometheus would. Counters and histograms labelled by namespace and queue are this test's
alone (its namespace is); the few that are not (API errors) are read as a difference.
"""

from __future__ import annotations

import platform

import pytest
from prometheus_client.parser import text_string_to_metric_families

import conveyor
from tests.cluster.fixtures import BUSYBOX_IMAGE, wait_for
from tests.integration.conftest import Jobs, OperatorProcess

pytestmark = pytest.mark.cluster


class Scrape:
    """One scrape of the operator's /metrics."""

    def __init__(self, operator: OperatorProcess) -> None:
        text = operator.scrape()
        assert text, "the operator serves no metrics"
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the series with exactly these labels (None: there is none)."""
        for sample, found, value in self.samples:
            if sample == name and found == labels:
                return value
        return None

    def names(self, **labels: str) -> list[str]:
        """The names of the series that have these labels (and maybe more)."""
        return [
            name
            for name, found, _ in self.samples
            if all(found.get(k) == v for k, v in labels.items())
        ]


def test_a_queue_after_real_jobs_reads_what_happened(
    jobs: Jobs, conveyor_operator: OperatorProcess
) -> None:
    """Four jobs through a queue of concurrency 2: two succeed at once, one succeeds on its
    second attempt, one fails for good (exit 3, not retryable). Then, scraped: the queue's
    jobs by phase as its status counts them (Running 0 once drained, the issue's stale 1),
    five attempts started, attempts by result and reason, jobs finished by phase, one
    admission wait per job, the attempts timed; and when the queue is deleted, its series
    go."""
    ns = jobs.namespace
    queue = {"namespace": ns, "queue": "work"}
    jobs.create_queue("work", concurrency=2)
    retry = {"maxAttempts": 3, "backoff": {"initialDelaySeconds": 1}, "nonRetryableExitCodes": [3]}
    jobs.create("ok-1", "echo ok", queue="work")
    jobs.create("ok-2", "echo ok", queue="work")
    jobs.create("flaky", '[ "$CONVEYOR_ATTEMPT" -ge 2 ] || exit 1', queue="work", retry=retry)
    jobs.create("broken", "exit 3", queue="work", retry=retry)
    for name in ("ok-1", "ok-2", "flaky"):
        jobs.wait_phase(name, "Succeeded", timeout=120)
    jobs.wait_phase("broken", "Failed", timeout=120)

    def counted() -> Scrape | None:
        scrape = Scrape(conveyor_operator)
        status = (
            jobs.custom.get_namespaced_custom_object(
                "conveyor.dev", "v1alpha1", ns, "jobqueues", "work"
            ).get("status")
            or {}
        )
        done = scrape.value("conveyor_queue_jobs", **queue, phase="Succeeded") == 3
        return (
            scrape if done and status.get("succeeded") == 3 and status.get("failed") == 1 else None
        )

    scrape = wait_for(counted, timeout=30, desc="the queue's gauges and status count the jobs")
    phases = {
        phase: scrape.value("conveyor_queue_jobs", **queue, phase=phase)
        for phase in ("Pending", "Blocked", "Delayed", "Queued", "Running", "BackingOff")
    }
    assert phases == dict.fromkeys(phases, 0.0)
    assert scrape.value("conveyor_queue_jobs", **queue, phase="Failed") == 1
    assert scrape.value("conveyor_queue_oldest_pending_seconds", **queue) == 0
    assert scrape.value("conveyor_queue_paused", **queue) == 0

    assert scrape.value("conveyor_attempts_started_total", **queue) == 5
    finished = "conveyor_attempts_finished_total"
    assert scrape.value(finished, **queue, result="Succeeded", reason="Completed") == 3
    assert scrape.value(finished, **queue, result="Failed", reason="Error") == 2
    assert scrape.value("conveyor_jobs_finished_total", **queue, phase="Succeeded") == 3
    assert scrape.value("conveyor_jobs_finished_total", **queue, phase="Failed") == 1
    assert scrape.value("conveyor_admission_wait_seconds_count", **queue) == 4
    # Admitted at once (concurrency 2, four jobs): none waited more than a minute.
    assert scrape.value("conveyor_admission_wait_seconds_bucket", **queue, le="60.0") == 4
    duration = "conveyor_attempt_duration_seconds_count"
    assert scrape.value(duration, **queue, result="Succeeded") == 3
    assert scrape.value(duration, **queue, result="Failed") == 2

    assert scrape.value("conveyor_leader") == 1
    (build,) = [(labels, v) for name, labels, v in scrape.samples if name == "conveyor_build_info"]
    assert build == ({"version": conveyor.__version__, "python": platform.python_version()}, 1)
    assert (scrape.value("conveyor_reconcile_total", kind="job", result="success") or 0) > 0
    assert (scrape.value("conveyor_workqueue_adds_total", kind="admit") or 0) > 0
    assert (scrape.value("conveyor_reconcile_time_seconds_count", kind="job") or 0) > 0
    assert scrape.value("conveyor_workqueue_depth", kind="job") is not None

    jobs.custom.delete_namespaced_custom_object("conveyor.dev", "v1alpha1", ns, "jobqueues", "work")

    def queue_gauges() -> list[str]:
        found = Scrape(conveyor_operator).names(**queue)
        return [name for name in found if name.startswith("conveyor_queue_")]

    wait_for(lambda: not queue_gauges(), timeout=30, desc="the deleted queue's gauges gone")


def test_a_refused_pod_create_is_counted_as_an_api_error(
    jobs: Jobs, conveyor_operator: OperatorProcess
) -> None:
    """A pod already holds the name of a job's first attempt: the operator's create is a 409,
    counted as conveyor_api_request_errors_total{verb=create,resource=pods,code=409}."""
    labels = {"verb": "create", "resource": "pods", "code": "409"}
    before = Scrape(conveyor_operator).value("conveyor_api_request_errors_total", **labels) or 0
    jobs.core.create_namespaced_pod(
        jobs.namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "squatted-1"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": BUSYBOX_IMAGE, "command": ["sleep", "60"]}],
            },
        },
    )
    jobs.create("squatted")
    jobs.wait(
        "squatted",
        lambda s: any(c["type"] == "InvalidSpec" for c in s.get("conditions", [])),
        desc="refused: the name is taken",
    )
    after = Scrape(conveyor_operator).value("conveyor_api_request_errors_total", **labels)
    assert after is not None and after >= before + 1
