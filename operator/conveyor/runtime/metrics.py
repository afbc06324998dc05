"""Prometheus metrics, named as Prometheus and controller-runtime name theirs.

Operators of controllers graph `controller_runtime_reconcile_*` and
`workqueue_*`; the same names with a `conveyor_` prefix mean the same here
(docs/metrics.md lists every metric). Labels are of bounded cardinality:
namespace, queue, phase, result, reason, kind; never a job's name.

Two kinds of metric, kept apart by what they cost:

- **Events** (counters and histograms) are counted where they happen: one
  increment, or one observation, on a child whose labels are bound once
  where the label values are few and known (the kinds of work key). The
  histograms are `LoopHistogram`s: everything that observes them runs on the
  event loop, and so does the scrape, so an observation needs no lock and
  costs less than a prometheus_client counter increment (its histograms cost
  four or five).
- **State** (how many jobs each queue holds by phase, its oldest waiting
  job, whether it is paused, the work queue's depth) is not kept in gauges
  at all: a gauge set on each change keeps its last value when nothing sets
  it again (a phase that drops to zero, a queue deleted, a leader that
  became a follower). `StateCollector` reads it from the acting
  controller's cache when Prometheus scrapes, so it is always what the
  cache says now, costs nothing between scrapes, and a queue that goes
  takes its series with it. Only the replica that acts reports it, so a
  sum over replicas counts each job once.

The scrape is served on the event loop (`serve`), the only thread that
touches the cache, so the state it reads is one consistent moment.
"""

from __future__ import annotations

import bisect
import itertools
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from prometheus_client import REGISTRY, Counter, Gauge, Info, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

import conveyor

# No `_created` series beside each counter and histogram: as many series again, unused.
disable_created_metrics()  # type: ignore[no-untyped-call]

# ------------------------------------------------------------ buckets (seconds)

FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""A reconcile, or a key's wait in the work queue: milliseconds, seconds when it struggles."""
WAIT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
"""A job's wait for its queue: from a moment to hours behind a busy queue."""
RUN_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
"""An attempt's run: from a second to a day."""

# ------------------------------------------------------------ histograms of the event loop


class Observations:
    """One labelled series of a `LoopHistogram`: its bucket counts (not cumulative) and sum."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect.bisect_left(self._bounds, amount)] += 1
        self.sum += amount


class LoopHistogram(Collector):
    """A Prometheus histogram observed and scraped on the event loop only (see the module's
    docstring): a bucket found by bisection and counted, no lock."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._bounds = tuple(sorted(float(b) for b in buckets))
        self._series: dict[tuple[str, ...], Observations] = {}
        REGISTRY.register(self)

    def labels(self, *values: str) -> Observations:
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, not {values}")
            series = self._series[values] = Observations(self._bounds)
        return series

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        bounds = [*(repr(b) for b in self._bounds), "+Inf"]  # as prometheus_client writes le
        for values, series in list(self._series.items()):
            cumulative = itertools.accumulate(series.counts)
            family.add_metric(list(values), list(zip(bounds, cumulative, strict=True)), series.sum)
        return [family]


# ------------------------------------------------------------ reconciles and the work queue

RECONCILES = Counter(
    "conveyor_reconcile_total",
    "Reconciles by kind of key and result (success, error, requeue_after)",
    ["kind", "result"],
)
RECONCILE_ERRORS = Counter(
    "conveyor_reconcile_errors_total", "Reconciles that raised (and were retried)", ["kind"]
)
RECONCILE_TIME = LoopHistogram(
    "conveyor_reconcile_time_seconds",
    "Time spent per reconcile",
    ["kind"],
    buckets=FAST_BUCKETS,
)
WORKQUEUE_ADDS = Counter(
    "conveyor_workqueue_adds_total", "Keys added to the work queue (not already waiting)", ["kind"]
)
WORKQUEUE_QUEUE_DURATION = LoopHistogram(
    "conveyor_workqueue_queue_duration_seconds",
    "Time a key waited in the work queue, ready, before a worker took it",
    ["kind"],
    buckets=FAST_BUCKETS,
)
WORKQUEUE_WORK_DURATION = LoopHistogram(
    "conveyor_workqueue_work_duration_seconds",
    "Time a worker spent on a key",
    ["kind"],
    buckets=FAST_BUCKETS,
)
WORKQUEUE_RETRIES = Counter(
    "conveyor_workqueue_retries_total", "Keys added again after their reconcile failed", ["kind"]
)

# ------------------------------------------------------------ jobs and attempts

ATTEMPTS_STARTED = Counter(
    "conveyor_attempts_started_total", "Attempts started (pods created)", ["namespace", "queue"]
)
ATTEMPTS_FINISHED = Counter(
    "conveyor_attempts_finished_total",
    "Attempts that ended, by result (Succeeded, Failed, Disrupted) and reason",
    ["namespace", "queue", "result", "reason"],
)
JOBS_FINISHED = Counter(
    "conveyor_jobs_finished_total",
    "Jobs that reached Succeeded or Failed",
    ["namespace", "queue", "phase"],
)
ADMISSION_WAIT = LoopHistogram(
    "conveyor_admission_wait_seconds",
    "From a job's creation (or its startAt, if later) to its first attempt's pod created",
    ["namespace", "queue"],
    buckets=WAIT_BUCKETS,
)
ATTEMPT_DURATION = LoopHistogram(
    "conveyor_attempt_duration_seconds",
    "From an attempt's pod created to the attempt's end, by result",
    ["namespace", "queue", "result"],
    buckets=RUN_BUCKETS,
)

# ------------------------------------------------------------ the operator

BUILD_INFO = Info("conveyor_build", "The operator's version and Python")
BUILD_INFO.info({"version": conveyor.__version__, "python": platform.python_version()})
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
API_ERRORS = Counter(
    "conveyor_api_request_errors_total",
    "API requests that failed, by verb, resource and HTTP status (none: no response)",
    ["verb", "resource", "code"],
)

FOREIGN_PODS = Counter(
    "conveyor_foreign_pods_total",
    "Pods created by another Conveyor operator in a namespace this one acts in",
    ["namespace"],
)


def api_error(verb: str, resource: str, status: int | None) -> None:
    """Count a failed API request (`status` None: it got no response)."""
    API_ERRORS.labels(verb, resource, str(status) if status else "none").inc()


_REASON = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")


def reason_label(reason: str | None) -> str:
    """A reason as a label value: Kubernetes' reasons are short CamelCase words; anything
    else (a message where a reason should be) is "Other", so it cannot grow the series."""
    if not reason:
        return ""
    return reason if _REASON.fullmatch(reason) else "Other"


# ------------------------------------------------------------ state, read at scrape time


@dataclass(frozen=True)
class QueueState:
    namespace: str
    name: str
    jobs: Mapping[str, int]
    """Its jobs by phase (phases it has none in may be missing: they read 0)."""
    oldest_pending_seconds: float
    """0 when none waits."""
    paused: bool


class State(Protocol):
    """What the acting controller reports when Prometheus scrapes."""

    def queue_states(self) -> Iterable[QueueState]: ...
    def work_queue_depth(self) -> Mapping[str, int]: ...


PHASES = ("Pending", "Blocked", "Delayed", "Queued", "Running", "BackingOff", "Succeeded", "Failed")


class StateCollector(Collector):
    """The gauges of the acting controller's state, read at each scrape (none while no
    controller acts here)."""

    def __init__(self) -> None:
        self._state: State | None = None

    def follow(self, state: State | None) -> None:
        """Report this controller's state from now on (None: this replica does not act)."""
        self._state = state

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        state = self._state
        families = self._families()
        if state is None:
            return families
        jobs, oldest, paused, depth = families
        for queue in state.queue_states():
            labels = [queue.namespace, queue.name]
            for phase in PHASES:
                jobs.add_metric([*labels, phase], queue.jobs.get(phase, 0))
            oldest.add_metric(labels, queue.oldest_pending_seconds)
            paused.add_metric(labels, 1 if queue.paused else 0)
        for kind, keys in state.work_queue_depth().items():
            depth.add_metric([kind], keys)
        return families

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        queue = ["namespace", "queue"]
        return [
            GaugeMetricFamily(
                "conveyor_queue_jobs", "Jobs of a queue by phase", labels=[*queue, "phase"]
            ),
            GaugeMetricFamily(
                "conveyor_queue_oldest_pending_seconds",
                "Age of the queue's oldest waiting (Pending or Queued) job; 0 when none waits",
                labels=queue,
            ),
            GaugeMetricFamily(
                "conveyor_queue_paused", "1 while the queue admits nothing new", labels=queue
            ),
            GaugeMetricFamily(
                "conveyor_workqueue_depth",
                "Keys ready in the work queue, waiting for a worker",
                labels=["kind"],
            ),
        ]


STATE = StateCollector()
REGISTRY.register(STATE)


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The registry's metrics as the scraper asked for them (Prometheus or OpenMetrics text),
    and their content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(REGISTRY), content_type


async def serve(port: int, host: str = "0.0.0.0") -> web.AppRunner:
    """Serve /metrics on the running event loop; stop it with the runner's `cleanup()`."""

    async def scrape(request: web.Request) -> web.Response:
        body, content_type = exposition(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
