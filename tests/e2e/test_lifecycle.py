"""The release's life as its user lives it: helm test, helm upgrade, helm uninstall."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.cluster.fixtures import KubeCluster, wait_for
from tests.e2e.conftest import (
    JOB_IMAGE,
    Namespaces,
    Release,
    assert_only_release_acted,
)

pytestmark = pytest.mark.cluster


def job_manifest(name: str, script: str, **spec: object) -> str:
    """A BackgroundJob running `script` in the job image, with more `spec` fields."""
    return json.dumps(
        {
            "apiVersion": "conveyor.dev/v1alpha1",
            "kind": "BackgroundJob",
            "metadata": {"name": name},
            "spec": {
                "template": {
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {
                                "name": "worker",
                                "image": JOB_IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["sh", "-c", script],
                            }
                        ],
                    }
                },
                **spec,
            },
        }
    )


def test_helm_test_runs_a_job_to_success(release: Release) -> None:
    """`helm test` passes, and cleans up after itself (hooks are not removed by uninstall)."""
    out = release.helm("test", release.name, "-n", release.namespace, "--timeout", "3m")
    assert "Phase:          Succeeded" in out
    assert "Failed" not in out
    leftovers = release.cluster.kubectl(
        "get",
        "pods,serviceaccounts",
        "-n",
        release.namespace,
        "-o",
        "name",
        "-l",
        "app.kubernetes.io/component=test",
    ).stdout
    assert not leftovers.strip()


def test_helm_upgrade_watches_a_new_namespace_and_loses_no_job(
    release: Release, e2e_namespaces: Namespaces, kubectl: Callable[..., str]
) -> None:
    """A job running across `helm upgrade` (which replaces the operator pod) finishes with one
    attempt; a namespace added by the upgrade gets its Role and its jobs run."""
    first = release.watched[0]
    kubectl(
        "apply", "-n", first, "-f", "-", input=job_manifest("across-upgrade", "sleep 6; echo done")
    )
    kubectl(
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "bgj/across-upgrade",
        "-n",
        first,
        "--timeout=90s",
        timeout=120,
    )
    old_pods = {p["metadata"]["name"] for p in release.operator_pods()}

    second = e2e_namespaces.create("jobs2")
    release.upgrade([first, second])

    pods = release.operator_pods()
    assert not {p["metadata"]["name"] for p in pods} & old_pods
    for pod in pods:
        assert f"--namespace={second}" in pod["spec"]["containers"][0]["args"]
    assert kubectl("get", "role", release.name, "-n", second, "-o", "name")
    history = json.loads(
        release.helm("history", release.name, "-n", release.namespace, "-o", "json")
    )
    assert history[-1]["status"] == "deployed" and len(history) >= 2

    kubectl("apply", "-n", second, "-f", "-", input=job_manifest("after-upgrade", "echo hi"))
    kubectl(
        "wait",
        "--for=condition=Succeeded",
        "bgj/after-upgrade",
        "-n",
        second,
        "--timeout=120s",
        timeout=150,
    )
    kubectl(
        "wait",
        "--for=condition=Succeeded",
        "bgj/across-upgrade",
        "-n",
        first,
        "--timeout=120s",
        timeout=150,
    )
    status = json.loads(kubectl("get", "bgj", "across-upgrade", "-n", first, "-o", "json"))[
        "status"
    ]
    assert status["attempts"] == 1, status  # the restart did not run it twice
    assert_only_release_acted(release.cluster, second, release)


def test_the_leader_pod_deleted_hands_over_and_no_job_runs_twice(
    release: Release, kubectl: Callable[..., str]
) -> None:
    """`kubectl delete pod` of the leader while a job runs: it releases the Lease on its way
    out, the other replica holds it within seconds and finishes the job with its one attempt,
    and the Deployment brings the second replica back."""
    namespace = release.watched[0]
    kubectl("apply", "-n", namespace, "-f", "-", input=job_manifest("across-takeover", "sleep 5"))
    kubectl(
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "bgj/across-takeover",
        "-n",
        namespace,
        "--timeout=90s",
        timeout=120,
    )
    leader = release.leader()
    assert leader in {p["metadata"]["name"] for p in release.operator_pods()}
    kubectl("delete", "pod", leader, "-n", release.namespace, "--wait=false")
    successor = wait_for(
        lambda: (holder := release.leader()) not in ("", leader) and holder,
        timeout=60,
        desc="another replica holding the lease",
    )
    kubectl("apply", "-n", namespace, "-f", "-", input=job_manifest("after-takeover", "true"))
    for job in ("across-takeover", "after-takeover"):
        kubectl(
            "wait",
            "--for=condition=Succeeded",
            f"bgj/{job}",
            "-n",
            namespace,
            "--timeout=120s",
            timeout=150,
        )
    status = json.loads(kubectl("get", "bgj", "across-takeover", "-n", namespace, "-o", "json"))
    assert status["status"]["attempts"] == 1, status
    assert release.leader() == successor
    wait_for(lambda: len(release.operator_pods()) == 2, timeout=120, desc="two replicas again")
    assert_only_release_acted(release.cluster, namespace, release)


def test_install_test_uninstall_leaves_nothing_behind(
    make_release: Callable[[str, list[str]], Release],
    e2e_namespaces: Namespaces,
    kube_cluster: KubeCluster,
    kubectl: Callable[..., str],
) -> None:
    """A release watching its own namespace: install, helm test, uninstall; then no Deployment,
    pod, ServiceAccount, Service, Role(Binding) or ClusterRole(Binding) of it remains, while the
    CRDs (and so users' jobs) stay."""
    namespace = e2e_namespaces.create("solo")
    rel = make_release(namespace, [namespace])
    rel.install()
    out = rel.helm("test", rel.name, "-n", namespace, "--timeout", "3m")
    assert "Phase:          Succeeded" in out
    kubectl("apply", "-n", namespace, "-f", "-", input=job_manifest("users-job", "echo mine"))
    kubectl(
        "wait",
        "--for=condition=Succeeded",
        "bgj/users-job",
        "-n",
        namespace,
        "--timeout=120s",
        timeout=150,
    )

    rel.uninstall()
    selector = f"app.kubernetes.io/instance={rel.name}"
    kubectl(
        "wait", "--for=delete", "pod", "-l", selector, "-n", namespace, "--timeout=90s", timeout=120
    )
    left = kubectl(
        "get",
        "deployments,replicasets,pods,serviceaccounts,services,roles,rolebindings",
        "-n",
        namespace,
        "-l",
        selector,
        "-o",
        "name",
    )
    assert not left.strip(), left
    cluster_scoped = kubectl(
        "get", "clusterroles,clusterrolebindings", "-o", "name", "-l", selector
    )
    ours = [n for n in cluster_scoped.split() if namespace in n]
    assert not ours, ours
    assert not rel.installed()
    for crd in ("backgroundjobs.conveyor.dev", "jobqueues.conveyor.dev"):
        kubectl("get", "crd", crd)
    # the user's job is the user's: still there, still Succeeded
    wait_for(
        lambda: kubectl("get", "bgj", "users-job", "-n", namespace, "-o", "name"),
        timeout=10,
        desc="users-job kept",
    )
