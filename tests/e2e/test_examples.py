"""Every example in examples/, applied with kubectl into a namespace the chart's operator watches.

The examples are applied together, as `kubectl apply -f examples/` would, and
each test then waits (with `kubectl wait`, on conditions, with timeouts) for
what the example's comments promise, reading what a user reads: `kubectl get`
printer columns, `kubectl describe`, `kubectl logs`.
"""

from __future__ import annotations

import datetime
import itertools
import json
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.fixtures import KubeCluster, wait_for
from tests.e2e.conftest import EXAMPLES, Release, assert_only_release_acted, table

pytestmark = pytest.mark.cluster

WAIT = "--timeout=150s"


@pytest.fixture(scope="module")
def examples(release: Release, kube_cluster: KubeCluster) -> str:
    """`kubectl apply -f examples/` into the watched namespace; returns that namespace."""
    namespace = release.watched[0]
    out = kube_cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES)).stdout
    for kind in (
        "jobqueue.conveyor.dev/email",
        "backgroundjob.conveyor.dev/ship-order-1001",
        "serviceaccount/export-orders",
    ):
        assert f"{kind} created" in out, out
    return namespace


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class Jobs:
    def __init__(self, kubectl: Callable[..., str], namespace: str) -> None:
        self.kubectl = kubectl
        self.namespace = namespace

    def get(self, name: str, kind: str = "bgj") -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(
            self.kubectl("get", kind, name, "-n", self.namespace, "-o", "json")
        )
        return obj

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.get(name).get("status") or {}
        return status

    def wait(self, condition: str, *targets: str) -> None:
        self.kubectl(
            "wait",
            f"--for=condition={condition}",
            *targets,
            "-n",
            self.namespace,
            WAIT,
            timeout=180,
        )

    def row(self, name: str, kind: str = "bgj", *wide: str) -> dict[str, str]:
        rows = table(self.kubectl("get", kind, name, "-n", self.namespace, *wide))
        assert len(rows) == 1
        return rows[0]

    def describe(self, name: str) -> str:
        return self.kubectl("describe", "bgj", name, "-n", self.namespace)


@pytest.fixture
def jobs(examples: str, kubectl: Callable[..., str]) -> Jobs:
    return Jobs(kubectl, examples)


def test_confirmation_email_retries_with_backoff_then_succeeds(jobs: Jobs) -> None:
    """Two refused connections, exponential backoff (1s, 2s), success on attempt 3 of 5."""
    jobs.wait("Succeeded", "bgj/send-confirmation-1001")
    row = jobs.row("send-confirmation-1001")
    assert row["QUEUE"] == "email"
    assert row["PHASE"] == "Succeeded"
    assert row["ATTEMPTS"] == "3/5"
    assert row["LAST FAILURE"] == "Error"
    history = jobs.status("send-confirmation-1001")["history"]
    assert [h["result"] for h in history] == ["Failed", "Failed", "Succeeded"]
    # finishedAt has whole seconds: each gap is at least the backoff less one second
    for attempt, backoff in ((1, 1), (2, 2)):
        gap = parse_time(history[attempt]["startTime"]) - parse_time(
            history[attempt - 1]["finishedAt"]
        )
        assert gap.total_seconds() >= backoff - 1, history
    described = jobs.describe("send-confirmation-1001")
    assert "AttemptFailed" in described and "Succeeded" in described
    # the failed attempt's log tail (the describe output has it too, but also the script)
    last_failure = jobs.status("send-confirmation-1001")["lastFailure"]
    assert "smtp.example.com:587: connection refused" in last_failure["logTail"]
    queue = jobs.row("email", "jq")
    assert queue["CONCURRENCY"] == "5" and queue["PAUSED"] == "false"


def test_invoice_attempts_are_stopped_at_their_deadline(jobs: Jobs) -> None:
    """A quick invoice succeeds; a hanging one is stopped after 5s per attempt, twice, and fails."""
    jobs.wait("Succeeded", "bgj/render-invoice-1001")
    jobs.wait("Failed", "bgj/render-invoice-1002")
    row = jobs.row("render-invoice-1002")
    assert row["PHASE"] == "Failed"
    assert row["ATTEMPTS"] == "2/2"
    assert row["LAST FAILURE"] == "DeadlineExceeded"
    history = jobs.status("render-invoice-1002")["history"]
    assert [h["reason"] for h in history] == ["DeadlineExceeded", "DeadlineExceeded"]


def test_rate_limited_queue_starts_at_most_two_pods_per_3s(jobs: Jobs) -> None:
    """Five jobs, rateLimit {max: 2, periodSeconds: 3}: no three starts within 3 seconds."""
    jobs.wait("Succeeded", "bgj", "-l", "app=partner-sync")
    starts = sorted(parse_time(jobs.status(f"sync-partner-{i}")["startTime"]) for i in range(1, 6))
    for first, third in zip(starts, starts[2:], strict=False):
        assert (third - first).total_seconds() >= 3 - 0.25, starts
    wait_for(
        lambda: (jobs.get("partner-api", "jq").get("status") or {}).get("succeeded") == 5,
        timeout=30,
        desc="the queue's status counting 5 succeeded jobs",
    )
    queue = jobs.row("partner-api", "jq", "-o", "wide")
    assert (queue["RUNNING"], queue["PENDING"], queue["SUCCEEDED"]) == ("0", "0", "5")


def test_urgent_mail_goes_before_normal_before_bulk(
    jobs: Jobs, kubectl: Callable[..., str]
) -> None:
    """While the queue is paused all four wait, in priority order; unpaused, they run in it."""
    ns = jobs.namespace
    kubectl(
        "wait",
        "--for=jsonpath={.status.phase}=Queued",
        "bgj",
        "-l",
        "app=mail",
        "-n",
        ns,
        WAIT,
        timeout=180,
    )
    line = kubectl(
        "get", "bgj", "-l", "app=mail", "-n", ns, "--sort-by=.status.queueOrder", "-o", "name"
    ).split()
    expected = [
        "password-reset-urgent-42",
        "receipt-normal-1001",
        "newsletter-bulk-1",
        "newsletter-bulk-2",
    ]
    assert line == [f"backgroundjob.conveyor.dev/{n}" for n in expected]
    assert not kubectl("get", "pods", "-n", ns, "-l", "conveyor.dev/queue=mail", "-o", "name")
    wait_for(
        lambda: jobs.row("mail", "jq")["PENDING"] == "4",
        timeout=30,
        desc="queue mail counting 4 pending",
    )
    assert jobs.row("mail", "jq")["PAUSED"] == "true"

    kubectl("patch", "jq", "mail", "-n", ns, "--type=merge", "-p", '{"spec":{"paused":false}}')
    jobs.wait("Succeeded", "bgj", "-l", "app=mail")
    statuses = [jobs.status(n) for n in expected]
    starts = [parse_time(s["startTime"]) for s in statuses]
    assert starts == sorted(starts), list(zip(expected, starts, strict=True))
    for before, after in itertools.pairwise(statuses):  # concurrency 1
        assert parse_time(after["startTime"]) >= parse_time(before["completionTime"])


def test_nightly_report_is_scheduled_at_0230_berlin_time(jobs: Jobs) -> None:
    """The recurring jobs know their next run: 02:30 in Europe/Berlin; within the hour; and
    kubectl get shows them as it shows CronJobs."""
    status = wait_for(
        lambda: (s := jobs.status("nightly-sales-report")).get("nextScheduleTime") and s,
        timeout=60,
        desc="nightly-sales-report's nextScheduleTime",
    )
    next_run = parse_time(status["nextScheduleTime"]).astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    assert (next_run.hour, next_run.minute) == (2, 30)
    now = datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(0) < next_run - now <= datetime.timedelta(hours=24, minutes=1)
    row = jobs.row("nightly-sales-report", "bgj", "-o", "wide")
    assert row["SCHEDULE"] == "30 2 * * *"
    # like a CronJob between runs: Scheduled (not Pending), not suspended, no active run
    assert (row["PHASE"], row["SUSPEND"], row["ACTIVE"]) == ("Scheduled", "false", "0")
    assert row["NEXT SCHEDULE"]
    hourly = wait_for(
        lambda: (s := jobs.status("hourly-cleanup")).get("nextScheduleTime") and s,
        timeout=60,
        desc="hourly-cleanup's nextScheduleTime",
    )
    assert parse_time(hourly["nextScheduleTime"]) - now <= datetime.timedelta(hours=1, minutes=1)


def test_order_ships_only_after_payment_and_inventory(jobs: Jobs) -> None:
    """ship-order-1001 starts after both of its dependencies completed, then succeeds."""
    jobs.wait("Succeeded", "bgj/ship-order-1001")
    ship = jobs.status("ship-order-1001")
    for dependency in ("charge-payment-1001", "reserve-inventory-1001"):
        done = jobs.status(dependency)
        assert done["phase"] == "Succeeded"
        assert parse_time(ship["startTime"]) >= parse_time(done["completionTime"])
    assert jobs.get("ship-order-1001")["spec"]["dependsOn"] == [
        "charge-payment-1001",
        "reserve-inventory-1001",
    ]


def test_chunked_export_enqueues_pages_until_an_empty_one(
    jobs: Jobs, kubectl: Callable[..., str]
) -> None:
    """Pages 0..2 export and enqueue the next; page 3 is empty and ends the chain."""
    ns = jobs.namespace
    wait_for(
        lambda: kubectl("get", "bgj", "export-orders-page-3", "-n", ns, "-o", "name"),
        timeout=150,
        interval=1,
        desc="the fourth chunk export-orders-page-3",
    )
    jobs.wait("Succeeded", "bgj", "-l", "app=export-orders")
    names = kubectl("get", "bgj", "-n", ns, "-l", "app=export-orders", "-o", "name").split()
    assert sorted(names) == [f"backgroundjob.conveyor.dev/export-orders-page-{i}" for i in range(4)]
    assert "enqueued export-orders-page-2" in kubectl("logs", "-n", ns, "export-orders-page-1-1")
    assert "page 3 is empty" in kubectl("logs", "-n", ns, "export-orders-page-3-1")


def test_dead_letter_holds_failed_jobs_until_replayed(
    jobs: Jobs, kubectl: Callable[..., str]
) -> None:
    """Failed for good after 3 attempts (or at once for exit code 2); a replay runs it again."""
    ns = jobs.namespace
    jobs.wait("Failed", "bgj/sync-legacy-crm-1001", "bgj/charge-card-1002")
    dead = kubectl("get", "bgj", "-n", ns, "--field-selector", "status.phase=Failed", "-o", "name")
    assert "backgroundjob.conveyor.dev/sync-legacy-crm-1001" in dead.split()
    assert "backgroundjob.conveyor.dev/charge-card-1002" in dead.split()

    card = jobs.status("charge-card-1002")
    assert card["attempts"] == 1 and card["lastFailure"]["exitCode"] == 2
    assert {c["type"]: c["reason"] for c in card["conditions"]}["Failed"] == "NonRetryableExitCode"

    crm = jobs.status("sync-legacy-crm-1001")
    assert crm["attempts"] == 3
    assert {c["type"]: c["reason"] for c in crm["conditions"]}["Failed"] == "AttemptsExhausted"
    described = jobs.describe("sync-legacy-crm-1001")
    assert "HTTP 422" in crm["lastFailure"]["logTail"]
    assert "Log Tail:" in described
    assert "Warning  AttemptFailed" in described and "Warning  Failed" in described

    # the replay command of the example's comment
    value = str(int(datetime.datetime.now().timestamp()))
    kubectl(
        "annotate",
        "bgj",
        "sync-legacy-crm-1001",
        "-n",
        ns,
        f"conveyor.dev/replay={value}",
        "--overwrite",
    )
    kubectl(
        "wait",
        f"--for=jsonpath={{.status.replayed}}={value}",
        "bgj/sync-legacy-crm-1001",
        "-n",
        ns,
        WAIT,
        timeout=180,
    )
    kubectl(
        "wait",
        "--for=jsonpath={.status.attempts}=6",
        "bgj/sync-legacy-crm-1001",
        "-n",
        ns,
        WAIT,
        timeout=180,
    )
    kubectl(
        "wait",
        "--for=jsonpath={.status.phase}=Failed",
        "bgj/sync-legacy-crm-1001",
        "-n",
        ns,
        WAIT,
        timeout=180,
    )
    crm = jobs.status("sync-legacy-crm-1001")
    assert [h["attempt"] for h in crm["history"]] == [1, 2, 3, 4, 5, 6]
    assert "Replayed" in jobs.describe("sync-legacy-crm-1001")


def test_only_this_release_acted_on_the_examples(release: Release, examples: str) -> None:
    """No other Conveyor operator (a local one watching all namespaces, say) touched these jobs."""
    assert_only_release_acted(release.cluster, examples, release)
