"""The chart's monitoring, rendered without a cluster: the alerting rules pass `promtool check
rules` and fire on made-up series exactly when they should, every PromQL expression of the
Grafana dashboard parses, and both are off by default.

promtool comes from Debian's `prometheus` package, fetched into the cache when it is not on
PATH (`promtool_path`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import CHART, HelmError, promtool_path
from tests.e2e.test_chart import MONITORING, find, render

HERE = Path(__file__).resolve().parent
ALERTS = {
    "ConveyorOperatorDown",
    "ConveyorQueueStalled",
    "ConveyorHighFailureRatio",
    "ConveyorJobWaitingTooLong",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    return promtool_path()


def promtool_run(promtool: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"promtool {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def rule_groups(*values: str) -> dict[str, Any]:
    """The `spec` (its groups) of the chart's PrometheusRule, as a Prometheus rules file."""
    (rule,) = find(render(*MONITORING, *values), "PrometheusRule")
    spec: dict[str, Any] = rule["spec"]
    return spec


def test_monitoring_is_off_by_default() -> None:
    docs = render()
    assert not find(docs, "PrometheusRule")
    assert not [d for d in find(docs, "ConfigMap") if d["metadata"]["name"].endswith("dashboard")]


def test_the_rules_pass_promtool(promtool: str, tmp_path: Path) -> None:
    groups = rule_groups()
    assert {r["alert"] for g in groups["groups"] for r in g["rules"]} == ALERTS
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups))
    out = promtool_run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert "SUCCESS: 4 rules found" in out, out


def test_the_alerts_fire_when_they_should_and_only_then(promtool: str, tmp_path: Path) -> None:
    """promtool's rule unit tests (monitoring/alerts-test.yaml) on the rules rendered with the
    default thresholds: each alert fires on series that call for it, after its `for`, with
    its labels and annotations, and stays quiet on the series beside them that do not."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups()))
    shutil.copy(HERE / "monitoring" / "alerts-test.yaml", tmp_path)
    out = promtool_run(promtool, "test", "rules", "alerts-test.yaml", cwd=tmp_path)
    assert "SUCCESS" in out, out


def test_thresholds_are_values(tmp_path: Path) -> None:
    groups = rule_groups(
        "--set",
        "metrics.prometheusRule.queueStalled.minutes=30",
        "--set-json",  # --set reads 0.5 as a string
        "metrics.prometheusRule.failureRatio.threshold=0.5",
        "--set",
        "metrics.prometheusRule.oldestPending.enabled=false",
        "--set",
        'metrics.prometheusRule.selector=job="conveyor"',
        "--set",
        "metrics.prometheusRule.alertLabels.team=jobs",
    )
    rules = {r["alert"]: r for g in groups["groups"] for r in g["rules"]}
    assert set(rules) == ALERTS - {"ConveyorJobWaitingTooLong"}
    stalled = rules["ConveyorQueueStalled"]["expr"]
    assert "> 1800" in stalled and "[30m]" in stalled
    assert ") > 0.5" in rules["ConveyorHighFailureRatio"]["expr"]
    assert 'conveyor_leader{job="conveyor"}' in rules["ConveyorOperatorDown"]["expr"]
    assert all(r["labels"]["team"] == "jobs" for r in rules.values())


def test_bad_thresholds_are_refused() -> None:
    for bad in (
        "metrics.prometheusRule.failureRatio.threshold=2",
        "metrics.prometheusRule.queueStalled.minutes=0",
        "metrics.prometheusRule.oldestPending.for=soon",
        "metrics.dashboard.namespace=Not_A_Namespace",
    ):
        with pytest.raises(HelmError, match="values don't meet the specifications"):
            render(*MONITORING, "--set", bad)


def test_the_dashboard_is_a_configmap_for_grafanas_sidecar() -> None:
    docs = render(*MONITORING, "--set", "metrics.dashboard.annotations.grafana_folder=Jobs")
    (configmap,) = [
        d for d in find(docs, "ConfigMap") if d["metadata"]["name"].endswith("dashboard")
    ]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Jobs"}
    assert configmap["metadata"]["namespace"] == "conveyor-system"
    assert json.loads(configmap["data"]["conveyor.json"]) == json.loads(
        (CHART / "dashboards" / "conveyor.json").read_text()
    )


GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    '"$job"': '"conveyor"',
    '"$namespace"': '".*"',
    '"$queue"': '".*"',
}


def test_every_dashboard_query_parses(promtool: str, tmp_path: Path) -> None:
    """Each PromQL expression of the dashboard, its Grafana variables replaced by values, as a
    recording rule that `promtool check rules` parses."""
    dashboard = json.loads((CHART / "dashboards" / "conveyor.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = []
    for n, expr in enumerate(exprs):
        query = expr
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        assert "$" not in query, f"an unknown variable in {expr}"
        rules.append({"record": f"dashboard:query_{n}", "expr": query})
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    out = promtool_run(promtool, "check", "rules", "queries.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(exprs)} rules found" in out, out
