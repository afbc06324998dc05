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
    ("", "events"): {"create"},
}
PRIORITY_CLASS_RULES = {("scheduling.k8s.io", "priorityclasses"): {"get", "list", "watch"}}


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


@pytest.mark.parametrize("mode", [[], ["--set", "watchNamespaces={team-a,team-b}"]])
def test_helm_lint_is_clean(mode: list[str]) -> None:
    """`helm lint --strict` finds no error and no warning, in both RBAC modes."""
    out = run_helm("lint", "--strict", str(CHART), *mode)
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


def test_cluster_wide_rbac_is_exactly_the_verbs_used() -> None:
    """Default mode: one ClusterRole with exactly the operator's verbs, bound to its account."""
    docs = render()
    assert not find(docs, "Role") or all(
        r["metadata"]["annotations"].get("helm.sh/hook") == "test" for r in find(docs, "Role")
    )
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
    roles = [
        r
        for r in find(docs, "Role")
        if "helm.sh/hook" not in (r["metadata"].get("annotations") or {})
    ]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rules_of(role) == OPERATOR_RULES
    bindings = [
        b
        for b in find(docs, "RoleBinding")
        if "helm.sh/hook" not in (b["metadata"].get("annotations") or {})
    ]
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


def test_operator_pod_is_hardened_and_probed() -> None:
    """1 replica, Recreate, liveness/readiness on kopf's endpoint, metrics on 9090, locked down."""
    docs = render()
    deployment = find(docs, "Deployment")[0]
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["enableServiceLinks"] is False
    container = pod["containers"][0]
    assert container["image"] == "conveyor.local/conveyor-operator:0.1.0"
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
    """values.schema.json rejects a latest tag, a bad namespace name and unknown keys."""
    for bad in (
        ["--set", "image.tag=latest"],
        ["--set", "watchNamespaces={Not_A_Namespace}"],
        ["--set", "replicas=2"],
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
