"""The chart, rendered without a cluster: CRDs in sync, lint clean, RBAC exact, pod hardened.

These need only the helm binary, so they run in seconds; the tests beside
this file install the same chart into a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import CHART, ROOT, HelmError, run_helm

OPERATOR_RULES = {
    ("conveyor.dev", "backgroundjobs"): {"get", "list", "watch", "create", "delete"},
    ("conveyor.dev", "backgroundjobs/status"): {"patch"},
    ("conveyor.dev", "jobqueues"): {"get", "list", "watch"},
    ("conveyor.dev", "jobqueues/status"): {"patch"},
    ("", "pods"): {"get", "list", "watch", "create", "delete"},
    ("", "pods/log"): {"get"},
    ("", "events"): {"create", "patch"},
}
PRIORITY_CLASS_RULES = {("scheduling.k8s.io", "priorityclasses"): {"get", "list", "watch"}}
LEADER_ELECTION_RULES = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}


def render(*args: str, namespace: str = "conveyor-system") -> list[dict[str, Any]]:
    out = run_helm("template", "conveyor", str(CHART), "-n", namespace, *args)
    return [doc for doc in yaml.safe_load_all(out) if doc]


def rules_of(doc: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = {}
    for rule in doc.get("rules") or []:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                found.setdefault((group, resource), set()).update(rule["verbs"])
    return found


def find(
    docs: Iterable[dict[str, Any]], kind: str, name: str | None = None
) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def test_chart_crds_are_the_generated_ones() -> None:
    """charts/conveyor/crds holds exactly the files of crds/, byte for byte (`make chart-crds`)."""
    generated = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    in_chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert generated, "crds/ is empty"
    assert sorted(in_chart) == sorted(generated), "run `make chart-crds`"
    drifted = [name for name in generated if in_chart[name] != generated[name]]
    assert not drifted, f"{drifted} differ from crds/: run `make chart-crds`"


MONITORING = [
    "--set",
    "metrics.serviceMonitor.enabled=true",
    "--set",
    "metrics.dashboard.enabled=true",
    "--set",
    "metrics.prometheusRule.enabled=true",
]


@pytest.mark.parametrize("monitoring", [[], MONITORING], ids=["plain", "monitoring"])
@pytest.mark.parametrize(
    "mode", [[], ["--set", "watchNamespaces={team-a,team-b}"]], ids=["cluster", "namespaced"]
)
def test_helm_lint_is_clean(mode: list[str], monitoring: list[str]) -> None:
    """`helm lint --strict` finds no error and no warning, in both RBAC modes, with and
    without the ServiceMonitor, dashboard and rules."""
    out = run_helm("lint", "--strict", str(CHART), *mode, *monitoring)
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


def chart_roles(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Roles or RoleBindings of the release itself (not of `helm test`)."""
    return [
        r
        for r in find(docs, kind)
        if "helm.sh/hook" not in (r["metadata"].get("annotations") or {})
    ]


def test_leader_election_has_a_role_for_its_lease_only() -> None:
    """A Role in the release's namespace with exactly the Lease verbs the election uses."""
    for mode in ([], ["--set", "watchNamespaces={team-a}"]):
        docs = render(*mode)
        (role,) = find(docs, "Role", "conveyor-leader-election")
        assert role["metadata"]["namespace"] == "conveyor-system"
        assert rules_of(role) == LEADER_ELECTION_RULES
        (binding,) = find(docs, "RoleBinding", "conveyor-leader-election")
        assert binding["roleRef"]["name"] == "conveyor-leader-election"
    docs = render("--set", "leaderElection.enabled=false")
    assert not find(docs, "Role", "conveyor-leader-election")


def test_cluster_wide_rbac_is_exactly_the_verbs_used() -> None:
    """Default mode: one ClusterRole with exactly the operator's verbs, bound to its account;
    the only Role is the leader election's."""
    docs = render()
    assert [r["metadata"]["name"] for r in chart_roles(docs, "Role")] == [
        "conveyor-leader-election"
    ]
    operator_role = find(docs, "ClusterRole", "conveyor-conveyor-system")
    assert len(operator_role) == 1
    assert rules_of(operator_role[0]) == OPERATOR_RULES
    pcs = find(docs, "ClusterRole", "conveyor-conveyor-system-priorityclasses")
    assert rules_of(pcs[0]) == PRIORITY_CLASS_RULES
    binding = find(docs, "ClusterRoleBinding", "conveyor-conveyor-system")[0]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "conveyor", "namespace": "conveyor-system"}
    ]
    args = find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if a.startswith("--namespace")]


def test_namespaced_rbac_is_a_role_per_watched_namespace() -> None:
    """watchNamespaces: a Role+RoleBinding in each, --namespace each, no operator ClusterRole
    but the PriorityClass one."""
    docs = render("--set", "watchNamespaces={team-a,team-b}")
    roles = [r for r in chart_roles(docs, "Role") if r["metadata"]["name"] == "conveyor"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rules_of(role) == OPERATOR_RULES
    bindings = [b for b in chart_roles(docs, "RoleBinding") if b["metadata"]["name"] == "conveyor"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    cluster_roles = {d["metadata"]["name"]: rules_of(d) for d in find(docs, "ClusterRole")}
    assert "conveyor-conveyor-system" not in cluster_roles
    assert cluster_roles["conveyor-conveyor-system-priorityclasses"] == PRIORITY_CLASS_RULES
    args = find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]


def test_no_wildcards_anywhere() -> None:
    """No rule of the chart, operator's or users', grants `*`."""
    for mode in ([], ["--set", "watchNamespaces={a}"]):
        for doc in render(*mode):
            for rule in doc.get("rules") or []:
                for key in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule.get(key, []), (doc["kind"], doc["metadata"]["name"])


def test_two_replicas_elect_a_leader_roll_without_a_gap_and_spread_out() -> None:
    """2 replicas with leader election, RollingUpdate adding one before removing one, a PDB
    keeping one, preferred anti-affinity; without election, 1 replica and Recreate."""
    docs = render()
    spec = find(docs, "Deployment")[0]["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    args = spec["template"]["spec"]["containers"][0]["args"]
    assert "--leader-election" in args
    assert "--leader-election-name=conveyor" in args
    assert "--leader-election-namespace=conveyor-system" in args
    assert {"--lease-duration=10", "--renew-deadline=7", "--retry-period=2"} <= set(args)
    (pdb,) = find(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    anti = spec["template"]["spec"]["affinity"]["podAntiAffinity"]
    (preferred,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"

    alone = render("--set", "leaderElection.enabled=false")
    spec = find(alone, "Deployment")[0]["spec"]
    assert (spec["replicas"], spec["strategy"]) == (1, {"type": "Recreate"})
    assert "--leader-election" not in spec["template"]["spec"]["containers"][0]["args"]
    assert not find(alone, "PodDisruptionBudget")


def test_operator_pod_is_hardened_and_probed() -> None:
    """Liveness/readiness on kopf's endpoint, metrics on 9090, locked down."""
    docs = render()
    deployment = find(docs, "Deployment")[0]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert pod["enableServiceLinks"] is False
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/conveyor-dev/conveyor-operator:0.1.0"
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert "--metrics-port=9090" in container["args"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "health": 8080,
        "metrics": 9090,
    }
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    service = find(docs, "Service", "conveyor-metrics")[0]
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]


def test_values_schema_refuses_bad_values() -> None:
    """values.schema.json rejects a latest tag, a bad namespace name, unknown keys and
    impossible election periods."""
    for bad in (
        ["--set", "image.tag=latest"],
        ["--set", "watchNamespaces={Not_A_Namespace}"],
        ["--set", "replica=2"],
        ["--set", "replicas=0"],
        ["--set", "leaderElection.retryPeriod=0"],
        ["--set", "operator.logLevel=LOUD"],
    ):
        with pytest.raises(HelmError, match="values don't meet the specifications"):
            render(*bad)


def test_helm_test_runs_in_a_watched_namespace() -> None:
    """The test job goes to the release namespace if watched, else the first watched one."""
    docs = render("--set", "watchNamespaces={jobs}")
    test_pod = next(d for d in find(docs, "Pod") if d["metadata"]["name"] == "conveyor-test")
    env = {e["name"]: e["value"] for e in test_pod["spec"]["containers"][0]["env"]}
    assert env["JOB_NAMESPACE"] == "jobs"
    assert find(docs, "Role", "conveyor-test")[0]["metadata"]["namespace"] == "jobs"
    docs = render()
    test_pod = next(d for d in find(docs, "Pod") if d["metadata"]["name"] == "conveyor-test")
    env = {e["name"]: e["value"] for e in test_pod["spec"]["containers"][0]["env"]}
    assert env["JOB_NAMESPACE"] == "conveyor-system"
