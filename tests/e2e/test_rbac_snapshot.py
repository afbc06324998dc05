"""What the chart's ServiceAccount may do, as the API server answers it, against a snapshot.

`test_chart.py` checks the rendered rules; this asks the API server itself
(`kubectl auth can-i --list`) in both install modes, and compares with the
committed answer in `tests/e2e/snapshots/`, so that any widening of the
operator's permissions shows in a review as a changed snapshot. Only the
chart's RBAC objects are applied (no operator runs), under a release name of
their own. What every ServiceAccount may do anyway (discovery, self reviews)
is read from a ServiceAccount with no bindings and left out, so the snapshot
holds what the chart grants, on any cluster.

After an intended change of the chart's RBAC:
`CONVEYOR_UPDATE_SNAPSHOTS=1 pytest tests/e2e/test_rbac_snapshot.py`.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest
import yaml

from tests.cluster.fixtures import KubeCluster
from tests.e2e.conftest import CHART, Namespaces, run_helm

pytestmark = pytest.mark.cluster

SNAPSHOTS = Path(__file__).parent / "snapshots"
RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def can_i_list(cluster: KubeCluster, account: str, namespace: str) -> set[str]:
    """`kubectl auth can-i --list` as `account` in `namespace`, one normalised line a rule."""
    out = cluster.kubectl("auth", "can-i", "--list", "--as", account, "-n", namespace).stdout
    lines = out.splitlines()[1:]  # the header
    return {" ".join(re.split(r"\s{2,}", line.strip())) for line in lines if line.strip()}


def granted(cluster: KubeCluster, release_ns: str, account: str, where: dict[str, str]) -> str:
    """The rules the chart grants `account`, per namespace role (watched, release, other)."""
    nobody = f"system:serviceaccount:{release_ns}:default"
    sections = []
    for label, namespace in where.items():
        rules = can_i_list(cluster, account, namespace) - can_i_list(cluster, nobody, namespace)
        sections.append(f"# in {label}\n" + "".join(f"{rule}\n" for rule in sorted(rules)))
    return "\n".join(sections)


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_the_service_account_may_do_what_the_snapshot_says(
    kube_cluster: KubeCluster, e2e_namespaces: Namespaces, mode: str
) -> None:
    """In each mode: the account's rules in a watched namespace, in its own namespace (the
    Lease) and in a namespace it does not watch, equal the committed snapshot."""
    tag = uuid.uuid4().hex[:5]
    release_ns = e2e_namespaces.create(f"rbac-{tag}")
    watched = e2e_namespaces.create(f"rbac-w-{tag}")
    other = e2e_namespaces.create(f"rbac-o-{tag}")
    name = f"rbac-{tag}"
    args = ["--set", f"watchNamespaces={{{watched}}}"] if mode == "namespaced" else []
    rendered = run_helm("template", name, str(CHART), "-n", release_ns, *args)
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in RBAC_KINDS]
    hooks = [d for d in docs if "helm.sh/hook" in (d["metadata"].get("annotations") or {})]
    kept = [d for d in docs if d not in hooks]
    for doc in kept:
        if not doc["kind"].startswith("Cluster"):
            doc["metadata"].setdefault("namespace", release_ns)
    objects = yaml.safe_dump_all(kept)
    kube_cluster.kubectl("apply", "-f", "-", input=objects)
    (service_account,) = [d["metadata"]["name"] for d in kept if d["kind"] == "ServiceAccount"]
    try:
        account = f"system:serviceaccount:{release_ns}:{service_account}"
        where = {"a watched namespace": watched, "its own namespace": release_ns}
        if mode == "namespaced":
            where["a namespace it does not watch"] = other
        found = granted(kube_cluster, release_ns, account, where)
        snapshot = SNAPSHOTS / f"rbac-{mode}.txt"
        if os.environ.get("CONVEYOR_UPDATE_SNAPSHOTS") == "1":
            snapshot.parent.mkdir(exist_ok=True)
            snapshot.write_text(found)
        assert snapshot.exists(), f"no snapshot: CONVEYOR_UPDATE_SNAPSHOTS=1 writes {snapshot}"
        assert found == snapshot.read_text(), (
            f"the chart's RBAC in {mode} mode changed; if intended, update the snapshot with "
            "CONVEYOR_UPDATE_SNAPSHOTS=1. Now:\n" + found
        )
    finally:
        kube_cluster.kubectl("delete", "-f", "-", input=objects, check=False)
