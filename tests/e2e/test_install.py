"""The installed chart, looked at the way its user would: pods, RBAC, metrics, kubectl explain."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.cluster.fixtures import KubeCluster
from tests.e2e.conftest import Release, split_image
from tests.e2e.test_chart import OPERATOR_RULES

pytestmark = pytest.mark.cluster


def test_operator_pods_run_the_image_as_uid_10001_and_one_leads(release: Release) -> None:
    """Two ready operator pods, of the image asked for, non-root, never restarted; the Lease
    names one of them, and only that one says it leads (conveyor_leader)."""
    pods = release.operator_pods()
    assert len(pods) == 2
    for pod in pods:
        container = pod["spec"]["containers"][0]
        assert container["image"] == release.image
        assert split_image(release.image)[1] != "latest"
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] is True
        assert status["restartCount"] == 0, release.operator_log()
        assert pod["spec"]["securityContext"]["runAsUser"] == 10001
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert f"--namespace={release.watched[0]}" in container["args"]
    names = {p["metadata"]["name"] for p in pods}
    leader = release.leader()
    assert leader in names
    gauges = {
        name: release.cluster.kubectl(
            "get",
            "--raw",
            f"/api/v1/namespaces/{release.namespace}/pods/{name}:9090/proxy/metrics",
        ).stdout
        for name in names
    }
    leading = {name for name, text in gauges.items() if "\nconveyor_leader 1.0" in text}
    assert leading == {leader}, {
        n: [ln for ln in t.splitlines() if "leader" in ln] for n, t in gauges.items()
    }


def test_metrics_are_served_on_the_metrics_service(
    release: Release, kubectl: Callable[..., str]
) -> None:
    """The Service's `metrics` port answers with Prometheus text (through the API server proxy)."""
    service = f"{release.name}-metrics"
    ports = json.loads(kubectl("get", "svc", service, "-n", release.namespace, "-o", "json"))
    assert ports["spec"]["ports"][0]["name"] == "metrics"
    assert ports["spec"]["ports"][0]["port"] == 9090
    text = kubectl(
        "get",
        "--raw",
        f"/api/v1/namespaces/{release.namespace}/services/{service}:metrics/proxy/metrics",
    )
    assert "\nconveyor_build_info{" in text
    assert "# TYPE conveyor_attempts_started_total counter" in text


def test_service_account_may_do_exactly_what_the_operator_needs(
    release: Release, kubectl: Callable[..., str]
) -> None:
    """`kubectl auth can-i` as the operator: yes in its namespace, no elsewhere or beyond."""
    account = f"system:serviceaccount:{release.namespace}:{release.name}"
    watched = release.watched[0]

    def can(verb: str, resource: str, namespace: str | None = watched, sub: str = "") -> bool:
        """kubectl's answer: exit 0 and "yes", or exit 1 and "no". Anything else (an error,
        or a resource type the server does not know, which kubectl would answer "no" to)
        fails the test rather than passing for a "no"."""
        args = ["auth", "can-i", verb, resource, "--as", account]
        args += ["-n", namespace] if namespace else []
        args += ["--subresource", sub] if sub else []
        proc = release.cluster.kubectl(*args, check=False)
        answer = proc.stdout.strip()
        unknown = "doesn't have a resource type" in proc.stderr
        if proc.returncode == 0 and answer == "yes" and not unknown:
            return True
        if proc.returncode == 1 and answer == "no" and not unknown:
            return False
        pytest.fail(
            f"kubectl {' '.join(args)} exited {proc.returncode}, answered {answer!r}:\n"
            f"{proc.stderr.strip()}",
            pytrace=False,
        )

    for (group, resource), verbs in OPERATOR_RULES.items():
        base, _, sub = resource.partition("/")
        name = f"{base}.{group}" if group else base
        for verb in verbs:
            assert can(verb, name, sub=sub), f"the operator may not {verb} {resource} in {watched}"
    assert can("list", "priorityclasses.scheduling.k8s.io", None)
    assert can("watch", "priorityclasses.scheduling.k8s.io", None)
    # nothing more
    for verb, resource in [
        ("update", "pods"),
        ("patch", "pods"),
        ("get", "secrets"),
        ("list", "configmaps"),
        ("update", "backgroundjobs.conveyor.dev"),
        ("patch", "backgroundjobs.conveyor.dev"),
        ("delete", "jobqueues.conveyor.dev"),
        ("create", "jobqueues.conveyor.dev"),
        ("delete", "events"),
        ("create", "priorityclasses.scheduling.k8s.io"),
    ]:
        assert not can(verb, resource), f"the operator may {verb} {resource}: more than it needs"
    # nor anything in a namespace it does not watch
    assert not can("create", "pods", release.namespace)
    assert not can("list", "backgroundjobs.conveyor.dev", "default")


def test_kubectl_explain_documents_the_api(kubectl: Callable[..., str], release: Release) -> None:
    """`kubectl explain` shows the fields and their descriptions from the chart's CRDs."""
    out = kubectl("explain", "backgroundjob.spec.retry.backoff")
    assert "initialDelaySeconds" in out and "jitter" in out
    assert "Exponential" in out
    out = kubectl("explain", "bgj.spec.dependsOn")
    assert "DependencyFailed" in out
    out = kubectl("explain", "jq.spec.rateLimit")
    assert "periodSeconds" in out
    resources = kubectl("api-resources", "--api-group=conveyor.dev", "-o", "wide")
    assert "bgj" in resources and "jq" in resources and "conveyor" in resources


def test_category_lists_both_kinds(
    kube_cluster: KubeCluster, release: Release, kubectl: Callable[..., str]
) -> None:
    """`kubectl get conveyor` (the CRDs' category) answers, even when empty."""
    out = kube_cluster.kubectl("get", "conveyor", "-n", release.watched[0], check=False)
    assert out.returncode == 0, out.stderr
