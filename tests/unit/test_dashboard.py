"""The chart's Grafana dashboard is a well-formed dashboard that names only documented metrics,
and so do its alerting rules.

Without Grafana or Prometheus: the structure Grafana needs to load it (ids, a grid that fits,
queries on the dashboard's data source, only variables it defines), and every `conveyor_`
metric named here listed in docs/metrics.md. tests/e2e/test_monitoring.py parses each query
with promtool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_metrics_docs import documented

CHART = Path(__file__).resolve().parents[2] / "charts" / "conveyor"
DASHBOARD = CHART / "dashboards" / "conveyor.json"
RULES = CHART / "templates" / "prometheusrule.yaml"
GRID_WIDTH = 24
OTHERS = {"up", "process_cpu_seconds_total"}
"""The metrics it names that are not the operator's own: Prometheus' and the client's."""

SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{")
"""A metric as these queries select it: every selector has label matchers."""
SERIES = re.compile(r"_seconds(_bucket|_sum|_count)$")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Its panels' queries, and its variables' (`label_values(metric{...}, label)`)."""
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])] + [
        v["query"]["query"].replace(",", "{},", 1)
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    ]


def metric_names(exprs: Iterable[str]) -> set[str]:
    """The metrics PromQL expressions select (a histogram's series as its family's name)."""
    return {SERIES.sub("_seconds", name) for expr in exprs for name in SELECTOR.findall(expr)}


def test_every_metric_the_dashboard_names_is_documented(dashboard: dict[str, Any]) -> None:
    named = metric_names(queries(dashboard))
    assert named - OTHERS <= set(documented()), sorted(named - OTHERS - set(documented()))
    assert {"conveyor_queue_jobs", "conveyor_admission_wait_seconds", "conveyor_leader"} <= named


def test_every_metric_the_rules_name_is_documented() -> None:
    named = metric_names(RULES.read_text().split("expr:")[1:])
    assert named == {
        "conveyor_leader",
        "conveyor_queue_oldest_pending_seconds",
        "conveyor_queue_paused",
        "conveyor_attempts_started_total",
        "conveyor_jobs_finished_total",
    }
    assert named <= set(documented()), sorted(named - set(documented()))


def test_panels_have_unique_ids_and_fit_the_grid_without_overlapping(
    dashboard: dict[str, Any],
) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= GRID_WIDTH, panel
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"panel {panel['title']!r} overlaps another"
        taken |= cells


def test_every_panel_queries_the_dashboards_data_source(dashboard: dict[str, Any]) -> None:
    """Each panel but the rows has a title, a description and queries on `${datasource}`,
    with unique refIds, a legend, and only the variables the dashboard defines."""
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "job", "namespace", "queue"} <= variables
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat"}
        assert panel["title"] and panel["description"], panel["id"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["legendFormat"]
            used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval"}
            assert used <= variables, (panel["title"], used - variables)
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            assert target["expr"].count("{") == target["expr"].count("}"), target["expr"]


def test_it_shows_what_a_queue_dashboard_needs(dashboard: dict[str, Any]) -> None:
    """Queue depth, throughput, failure ratio, wait and run-time percentiles, the operator's
    health (up, leader, reconcile errors, work-queue depth)."""
    exprs = "\n".join(queries(dashboard))
    for needed in (
        'phase=~"Pending|Queued"',
        "rate(conveyor_attempts_started_total",
        'conveyor_jobs_finished_total{job=~"$job", namespace=~"$namespace", queue=~"$queue", '
        'phase="Failed"}',
        "histogram_quantile(0.95, sum by (le) (rate(conveyor_admission_wait_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(conveyor_attempt_duration_seconds_bucket",
        'sum(up{job=~"$job"})',
        "sum(conveyor_leader",
        "rate(conveyor_reconcile_errors_total",
        "conveyor_workqueue_depth",
    ):
        assert needed in exprs, needed
    assert dashboard["uid"] == "conveyor"
    assert dashboard["title"] == "Conveyor"
