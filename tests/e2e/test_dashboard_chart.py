"""The chart's dashboard, rendered without a cluster: off by default, one value turns it on,
read-only unless actions, RBAC exact, reachable by port-forward only."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import CHART, HelmError, run_helm
from tests.e2e.test_chart import find, render, rules_of

ON = ("--set", "dashboard.enabled=true")
READ = {
    ("conveyor.dev", "backgroundjobs"): {"get", "list", "watch"},
    ("conveyor.dev", "jobqueues"): {"get", "list", "watch"},
    ("", "pods"): {"list"},
    ("", "pods/log"): {"get"},
    ("", "events"): {"list"},
}


def dashboard_docs(*args: str) -> list[dict]:
    return [
        d
        for d in render(*args)
        if (d["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "dashboard"
    ]


def test_off_by_default() -> None:
    assert dashboard_docs() == []


def test_one_value_turns_it_on_read_only() -> None:
    docs = dashboard_docs(*ON)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]
    (role,) = find(docs, "ClusterRole")
    assert rules_of(role) == READ
    (deployment,) = find(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "conveyor-dashboard"
    (container,) = pod["containers"]
    assert container["command"] == ["/opt/conveyor/bin/kubectl-conveyor"]
    args = container["args"]
    assert args[0] == "dashboard" and "--all-namespaces" in args
    assert "--address=127.0.0.1" in args  # only port-forward reaches it
    assert "--allow-actions" not in args
    assert container["readinessProbe"]["httpGet"]["port"] == "health"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (service,) = find(docs, "Service")
    assert service["spec"]["type"] == "ClusterIP"


def test_actions_add_patch_and_nothing_else() -> None:
    docs = dashboard_docs(*ON, "--set", "dashboard.actions=true")
    (role,) = find(docs, "ClusterRole")
    assert rules_of(role) == {
        **READ,
        ("conveyor.dev", "backgroundjobs"): {"get", "list", "watch", "patch"},
        ("conveyor.dev", "jobqueues"): {"get", "list", "watch", "patch"},
    }
    args = find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--allow-actions" in args


def test_watched_namespaces_get_a_role_each() -> None:
    docs = dashboard_docs(*ON, "--set", "watchNamespaces={team-a,team-b}")
    roles = find(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert not find(docs, "ClusterRole")
    args = find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespaces=team-a,team-b" in args


def test_the_operators_selectors_do_not_select_the_dashboard() -> None:
    """Neither the operator's Deployment, its PDB nor its metrics Service selects the
    dashboard's pod (nor the dashboard's Service the operator's)."""
    docs = render(*ON)
    dashboard = find(docs, "Deployment", "conveyor-dashboard")[0]
    dashboard_labels = dashboard["spec"]["template"]["metadata"]["labels"]
    operator = find(docs, "Deployment", "conveyor")[0]
    operator_labels = operator["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict, labels: dict) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    assert not selects(operator["spec"]["selector"]["matchLabels"], dashboard_labels)
    for service in find(docs, "Service"):
        wanted = service["spec"]["selector"]
        is_dashboard = service["metadata"]["name"] == "conveyor-dashboard"
        assert selects(wanted, dashboard_labels) == is_dashboard
        assert selects(wanted, operator_labels) == (not is_dashboard)
    for pdb in find(docs, "PodDisruptionBudget"):
        assert not selects(pdb["spec"]["selector"]["matchLabels"], dashboard_labels)


@pytest.mark.parametrize(
    "mode",
    [[], ["--set", "dashboard.actions=true"], ["--set", "watchNamespaces={team-a,team-b}"]],
)
def test_helm_lint_is_clean_with_the_dashboard(mode: list[str]) -> None:
    out = run_helm("lint", "--strict", str(CHART), *ON, *mode)
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


@pytest.mark.parametrize(
    "values",
    [
        ["--set", "dashboard.enabled=yes"],
        ["--set", "dashboard.port=0"],
        ["--set", "dashboard.listen=0.0.0.0"],
    ],
)
def test_the_schema_refuses_bad_dashboard_values(values: list[str]) -> None:
    with pytest.raises(HelmError):
        run_helm("template", "conveyor", str(CHART), *values)
