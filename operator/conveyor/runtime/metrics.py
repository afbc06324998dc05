"""Prometheus metrics: what a queue dashboard needs, per namespace and queue.

Counters of attempts started and finished (by result) and of jobs finished
(by phase), the jobs of each queue by phase, the age of its oldest waiting
job, and how long reconciles take and how many wait to run: enough for the
seed's monitoring list (throughput, failures, depth, stalls) without asking
the API server.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

ATTEMPTS_STARTED = Counter(
    "conveyor_attempts_started_total", "Attempts started (pods created)", ["namespace", "queue"]
)
ATTEMPTS_FINISHED = Counter(
    "conveyor_attempts_finished_total",
    "Attempts that ended, by result (Succeeded, Failed, Disrupted)",
    ["namespace", "queue", "result"],
)
JOBS_FINISHED = Counter(
    "conveyor_jobs_finished_total",
    "Jobs that reached Succeeded or Failed",
    ["namespace", "queue", "phase"],
)
QUEUE_JOBS = Gauge(
    "conveyor_queue_jobs", "Jobs of a queue by phase", ["namespace", "queue", "phase"]
)
QUEUE_OLDEST_PENDING = Gauge(
    "conveyor_queue_oldest_pending_seconds",
    "Age of the queue's oldest waiting job",
    ["namespace", "queue"],
)
RECONCILE_SECONDS = Histogram("conveyor_reconcile_seconds", "Time spent per reconcile", ["kind"])
WORK_QUEUE_DEPTH = Gauge("conveyor_work_queue_depth", "Keys waiting for a reconciler")
RETRIES = Counter(
    "conveyor_work_queue_retries_total", "Reconciles that failed and were retried", ["kind"]
)
LEADER = Gauge(
    "conveyor_leader",
    "1 while this replica may act (it holds the lease, or runs without election), else 0",
)
WATCH_HEALTHY = Gauge(
    "conveyor_watch_healthy",
    "1 while the watch lists (or failed only a moment ago), 0 while the operator holds back",
    ["watch"],
)
EVENTS_DROPPED = Counter(
    "conveyor_events_dropped_total", "Kubernetes Events not posted because too many were waiting"
)

FOREIGN_PODS = Counter(
    "conveyor_foreign_pods_total",
    "Pods created by another Conveyor operator in a namespace this one acts in",
    ["namespace"],
)


def serve(port: int) -> None:
    start_http_server(port)
