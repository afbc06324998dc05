"""An API client for the caller, chosen as kubectl chooses it.

`--kubeconfig` (else $KUBECONFIG, else ~/.kube/config), `--context` (else
the current one) and `-n` (else the context's namespace, else `default`);
inside a pod with no kubeconfig, its ServiceAccount. `-A` means every
namespace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import kubernetes

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class NoClusterError(Exception):
    """No cluster to talk to: the message says why, for a person."""


@dataclass(frozen=True)
class Target:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False


@dataclass(frozen=True)
class Connection:
    client: kubernetes.client.ApiClient
    namespace: str | None
    """The namespace to work in; None: every namespace."""
    context: str | None


def connect(target: Target) -> Connection:
    """An ApiClient and namespace for `target`."""
    explicit = target.kubeconfig or os.environ.get("KUBECONFIG")
    in_cluster = not explicit and not Path("~/.kube/config").expanduser().exists()
    if in_cluster and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        namespace = target.namespace or _service_account_namespace()
        return Connection(
            kubernetes.client.ApiClient(configuration),
            None if target.all_namespaces else namespace,
            None,
        )
    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(target.kubeconfig)  # type: ignore[no-untyped-call]
        client = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=target.kubeconfig, context=target.context, persist_config=False
        )
    except (kubernetes.config.ConfigException, OSError) as error:
        raise NoClusterError(f"cannot load the kubeconfig: {error}") from error
    chosen = next(
        (c for c in contexts if c.get("name") == target.context),
        current if not target.context else None,
    )
    context_namespace = ((chosen or {}).get("context") or {}).get("namespace")
    namespace = target.namespace or context_namespace or "default"
    return Connection(
        client,
        None if target.all_namespaces else namespace,
        (chosen or {}).get("name"),
    )


def _service_account_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"
