"""The summaries (core.summary and the modules beside it): what the plugin and dashboard show."""

from __future__ import annotations

import datetime

import pytest

from conveyor.core import job_listing, summary, summary_json, throughput, wording
from tests.unit.dashboard_data import attempt, job_body, queue_body
from tests.unit.factories import T0, at


def rows(*bodies):
    return [summary.job_row(b) for b in bodies]


def test_a_job_row_reads_what_lists_show():
    body = job_body(
        "send-1",
        "Failed",
        created=5,
        attempts=2,
        attemptsSummary="2/2",
        lastFailure={"reason": "Error", "exitCode": 3},
        history=[attempt(1, "Failed", finished=10), attempt(2, "Failed", finished=20)],
        spec={"priority": 7, "dependsOn": ["charge-1"]},
    )
    row = summary.job_row(body)
    assert (row.namespace, row.name, row.queue, row.phase) == ("shop", "send-1", "email", "Failed")
    assert row.created == at(5)
    assert (row.attempts_summary, row.priority, row.depends_on) == ("2/2", 7, ("charge-1",))
    assert (row.last_failure, row.last_exit_code) == ("Error", 3)
    assert row.ended == ((at(10), "Failed"), (at(20), "Failed"))
    assert not row.recurring


def test_a_job_row_survives_odd_bodies():
    """A job with no status yet is Pending; junk in fields is ignored, not fatal."""
    row = summary.job_row({"metadata": {"name": "x"}, "spec": {"priority": "high"}, "status": 3})
    assert (row.name, row.phase, row.priority, row.queue) == ("x", "Pending", None, "")


def test_recurring_manual_and_runs():
    parent = summary.job_row(job_body("nightly", spec={"every": "1h"}))
    assert parent.recurring and parent.schedule == "every 1h"
    run = summary.job_row(
        job_body(
            "nightly-1",
            labels={"conveyor.dev/recurring-job": "nightly", "conveyor.dev/manual": "true"},
        )
    )
    assert run.parent == "nightly" and run.manual


def test_queue_counts_follow_the_operators_grouping():
    """Waiting = Pending + Queued, delayed = Delayed + BackingOff; recurring jobs not counted;
    a queue named by jobs but missing, and jobs of no queue, get rows of their own."""
    jobs = rows(
        job_body("a", "Queued", created=10),
        job_body("b", "Pending", created=20),
        job_body("c", "BackingOff"),
        job_body("d", "Delayed"),
        job_body("e", "Running"),
        job_body("f", "Succeeded"),
        job_body("g", "Failed"),
        job_body("h", "Blocked"),
        job_body("nightly", spec={"schedule": "0 3 * * *"}),
        job_body("lost", "Pending", queue="missing"),
        job_body("free", "Succeeded", queue=None),
    )
    queues = [queue_body("email", concurrency=5, paused=True, rateLimit={"max": 10})]
    by_key = {r.key: r for r in summary.queue_rows(queues, jobs, at(100))}
    email = by_key[("shop", "email")]
    assert (email.waiting, email.delayed, email.blocked, email.running) == (2, 2, 1, 1)
    assert (email.succeeded, email.failed, email.total) == (1, 1, 8)
    assert email.oldest_waiting_seconds == 90
    assert (email.exists, email.paused, email.concurrency, email.rate_limit) == (
        True,
        True,
        5,
        "10/1s",
    )
    assert not by_key[("shop", "missing")].exists
    assert by_key[("shop", "")].succeeded == 1
    assert list(by_key) == sorted(by_key)


def test_the_rate_counts_attempts_ended_in_the_last_five_minutes():
    jobs = rows(
        job_body(
            "a",
            "Failed",
            history=[
                attempt(1, "Failed", finished=0),  # too old at 400 s
                attempt(2, "Failed", finished=200),
                attempt(3, "Succeeded", finished=390),
            ],
        )
    )
    (row,) = summary.queue_rows([], jobs, at(400))
    assert row.rate_per_minute == pytest.approx(2 / 5)
    assert row.failures_per_minute == pytest.approx(1 / 5)


def test_throughput_buckets_attempts_by_the_minute_they_ended():
    jobs = rows(
        job_body(
            "a",
            history=[
                attempt(1, "Failed", finished=30),
                attempt(2, "Disrupted", finished=70),
                attempt(3, "Succeeded", finished=100),
            ],
        ),
        job_body("b", queue="other", history=[attempt(1, "Succeeded", finished=110)]),
    )
    buckets = throughput.throughput(jobs, at(120), buckets=2)
    assert [b.start for b in buckets] == [at(0), at(60)]
    assert [(b.succeeded, b.failed, b.disrupted) for b in buckets] == [(0, 1, 0), (2, 0, 1)]
    only = throughput.throughput(jobs, at(120), buckets=2, queue=("shop", "other"))
    assert [b.succeeded for b in only] == [0, 1]


def test_select_pages_newest_first_and_searches_every_word():
    jobs = rows(*(job_body(f"send-{i}", "Succeeded", created=i) for i in range(120)))
    jobs += rows(job_body("charge-9", "Failed", created=500, lastFailure={"reason": "OOMKilled"}))
    page = job_listing.select(jobs, offset=50, limit=50)
    assert page.total == 121
    assert page.rows[0].name == "send-70" and len(page.rows) == 50
    assert [r.name for r in job_listing.select(jobs, text="oom charge").rows] == ["charge-9"]
    assert job_listing.select(jobs, phases=["Failed"]).total == 1
    assert job_listing.select(jobs, queue="other").total == 0
    counts = job_listing.phase_counts(jobs)
    assert counts["Succeeded"] == 120 and counts["Failed"] == 1 and counts["Running"] == 0


def test_select_over_ten_thousand_jobs():
    """Filtering and one page over 10,000 rows, as the dashboard does per request."""
    jobs = rows(
        *(job_body(f"job-{i}", "Queued" if i % 3 else "Failed", created=i) for i in range(10_000))
    )
    page = job_listing.select(jobs, phases=["Failed"], text="job-99", limit=50)
    assert page.total == len([i for i in range(10_000) if i % 3 == 0 and "job-99" in f"job-{i}"])
    assert page.rows[0].name == "job-9999"
    (queue,) = summary.queue_rows([queue_body("email")], jobs, at(10_000))
    assert (queue.waiting, queue.failed) == (6666, 3334)


def test_a_timeline_takes_the_last_failures_tail_and_the_pods_tails():
    body = job_body(
        "a",
        "Failed",
        history=[
            attempt(1, "Failed", finished=10, exitCode=1, reason="Error"),
            attempt(2, "Failed", finished=20, exitCode=2, reason="Error", output="bad input"),
        ],
        lastFailure={"attempt": 2, "logTail": "line 9\nFATAL"},
    )
    attempts = summary.timeline(body, {1: "first log", 2: "ignored: the status has it"})
    assert [a.log_tail for a in attempts] == ["first log", "line 9\nFATAL"]
    assert attempts[1].output == "bad input" and attempts[1].exit_code == 2
    assert attempts[0].duration_seconds == 2.0


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "<none>"),
        (-5, "<invalid>"),
        (0, "0s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (400 * 86400, "400d"),
        (3 * 365 * 86400, "3y"),
    ],
)
def test_durations_read_as_kubectl_ages(seconds, shown):
    assert wording.human_duration(seconds) == shown


def test_rates_read_short():
    assert [wording.rate(r) for r in (0, 0.25, 12.4, 2500)] == ["0", "0.2/m", "12/m", "2.5k/m"]


def test_json_forms_carry_times_as_rfc3339():
    row = summary.job_row(job_body("a", "Running", created=1))
    assert summary_json.job_json(row)["created"] == "2026-03-01T12:00:01.000Z"
    bucket = throughput.throughput([], T0 + datetime.timedelta(minutes=1), buckets=1)[0]
    assert summary_json.bucket_json(bucket) == {
        "start": "2026-03-01T12:00:00.000Z",
        "succeeded": 0,
        "failed": 0,
        "disrupted": 0,
    }
