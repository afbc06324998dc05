"""docs/metrics.md lists every metric the operator serves, with its type and labels."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY, Metric
from prometheus_client.metrics import MetricWrapperBase

import conveyor.runtime.controller  # noqa: F401 (every module that binds metrics)
from conveyor.runtime import metrics

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "metrics.md"
ROW = re.compile(r"^\| `(conveyor_\w+)` \| (\w+) \|([^|]*)\|", re.MULTILINE)


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    """{name: (type, labels)} of the tables in docs/metrics.md."""
    found = {}
    for name, kind, labels in ROW.findall(DOC.read_text()):
        assert name not in found, f"{name} is listed twice"
        found[name] = (
            kind,
            frozenset(label.strip() for label in labels.split(",") if label.strip()),
        )
    return found


def served_name(family: Metric) -> tuple[str, str]:
    """A family's name and type as the text exposition shows them."""
    if family.type == "counter":
        return f"{family.name}_total", "counter"
    if family.type == "info":
        return f"{family.name}_info", "gauge"
    return family.name, family.type


def served() -> dict[str, tuple[str, frozenset[str]]]:
    """{name: (type, labels)} of every conveyor_ metric in the registry."""
    wrappers = [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]
    labels_of = {wrapper._name: frozenset(wrapper._labelnames) for wrapper in wrappers}
    for histogram in vars(metrics).values():
        if isinstance(histogram, metrics.LoopHistogram):
            labels_of[histogram.name] = frozenset(histogram.labelnames)
    labels_of["conveyor_build"] = frozenset({"version", "python"})
    for family in metrics.StateCollector().describe():
        labels_of[family.name] = frozenset(family._labelnames)
    found = {}
    for family in REGISTRY.collect():
        if family.name.startswith("conveyor_"):
            name, kind = served_name(family)
            found[name] = (kind, labels_of[family.name])
    return found


def test_every_metric_served_is_documented_with_its_type_and_labels() -> None:
    assert served() == documented()
