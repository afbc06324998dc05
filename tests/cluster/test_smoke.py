"""Smoke tests of the local cluster: pods run from local images, exit codes
surface, priorities schedule, RBAC refuses, the kubernetes Service answers."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.cluster.fixtures import BUSYBOX_IMAGE, KubeCluster, KubectlError, wait_for

pytestmark = pytest.mark.cluster


def busybox_pod(name: str, script: str, **spec: object) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": BUSYBOX_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", script],
                }
            ],
            **spec,
        },
    }


def test_pod_succeeds_and_logs(kube_cluster: KubeCluster, namespace: str, kubectl) -> None:
    pod = busybox_pod("hello", "echo hello-from-conveyor")
    kube_cluster.core.create_namespaced_pod(namespace, pod)
    kube_cluster.wait_for_pod_phase(namespace, "hello", {"Succeeded"})
    assert "hello-from-conveyor" in kubectl("logs", "-n", namespace, "hello")


def test_pod_exit_code_is_reported(kube_cluster: KubeCluster, namespace: str) -> None:
    kube_cluster.core.create_namespaced_pod(namespace, busybox_pod("fails", "echo failing; exit 3"))
    pod = kube_cluster.wait_for_pod_phase(namespace, "fails", {"Failed"})
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated is not None
    assert terminated.exit_code == 3


def test_pod_with_priority_class_is_scheduled(
    kube_cluster: KubeCluster, namespace: str, request: pytest.FixtureRequest
) -> None:
    from kubernetes import client

    scheduling = kube_cluster.api(client.SchedulingV1Api)
    pc_name = f"conveyor-smoke-{uuid.uuid4().hex[:6]}"
    scheduling.create_priority_class(
        client.V1PriorityClass(
            metadata=client.V1ObjectMeta(name=pc_name), value=1000, description="smoke test"
        )
    )
    request.addfinalizer(lambda: scheduling.delete_priority_class(pc_name))

    kube_cluster.core.create_namespaced_pod(
        namespace, busybox_pod("prio", "echo prioritized", priorityClassName=pc_name)
    )
    pod = kube_cluster.wait_for_pod_phase(namespace, "prio", {"Succeeded"})
    assert pod.spec.priority == 1000
    assert pod.spec.node_name
    scheduled = [c for c in pod.status.conditions if c.type == "PodScheduled"]
    assert scheduled and scheduled[0].status == "True"


def test_rbac_refuses_service_account_without_rights(
    kube_cluster: KubeCluster, namespace: str, kubectl
) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = kube_cluster.core
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    subject = f"system:serviceaccount:{namespace}:nobody"

    with pytest.raises(KubectlError) as denied:
        kubectl("auth", "can-i", "list", "pods", "-n", namespace, f"--as={subject}")
    assert denied.value.stdout.strip() == "no"

    token_request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
    )
    token = core.create_namespaced_service_account_token(
        "nobody", namespace, token_request
    ).status.token
    with kube_cluster.client_for_token(token) as sa_client:
        with pytest.raises(ApiException) as exc:
            client.CoreV1Api(sa_client).list_namespaced_pod(namespace)
        assert exc.value.status == 403  # authenticated (not 401), but not allowed

        # Control: the same token works once a Role allows it.
        rbac = kube_cluster.api(client.RbacAuthorizationV1Api)
        rbac.create_namespaced_role(
            namespace,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="pod-reader"),
                rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])],
            ),
        )
        rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="nobody-reads-pods"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"
                ),
                subjects=[
                    client.RbacV1Subject(kind="ServiceAccount", name="nobody", namespace=namespace)
                ],
            ),
        )
        wait_for(
            lambda: client.CoreV1Api(sa_client).list_namespaced_pod(namespace) is not None,
            timeout=30,
            desc="RBAC to allow the pod-reader binding",
        )


def test_kubernetes_service_reaches_api_server(
    kube_cluster: KubeCluster, namespace: str, kubectl
) -> None:
    """In-cluster clients use https://$KUBERNETES_SERVICE_HOST (10.0.0.1); there is no
    kube-proxy, up.sh DNATs that one address to the API server.

    Plain HTTP to the TLS port draws the API server's (Go's) distinctive answer;
    busybox-static's wget segfaults, so nc sends the request.
    """
    if os.environ.get("CONVEYOR_SERVICE_DNAT") == "0":
        pytest.skip("CONVEYOR_SERVICE_DNAT=0")
    script = (
        r'printf "GET /version HTTP/1.0\r\n\r\n" '
        "| nc -w 10 $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT"
    )
    kube_cluster.core.create_namespaced_pod(namespace, busybox_pod("in-cluster", script))
    kube_cluster.wait_for_pod_phase(namespace, "in-cluster", {"Succeeded"})
    logs = kubectl("logs", "-n", namespace, "in-cluster")
    assert "Client sent an HTTP request to an HTTPS server" in logs
