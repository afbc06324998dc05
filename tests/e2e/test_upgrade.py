"""Upgrading from the previous chart, as docs/upgrade.md says: CRDs first, then the chart.

The previous chart is the chart as it was at the commit `PREVIOUS_CHART` names (the
main commit this chart's changes started from; bump it with each release), taken out of
git with `git archive`, with that commit's CRDs and the operator image built from that
commit's own sources by that commit's own build-local.sh. Jobs started under it must
carry on under the new operator: the one running across the upgrade finishes with one
attempt, the new operator flags the deprecated field it uses, a recurring job reads
like a CronJob, and the new chart's `helm test` passes.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.cluster.fixtures import KubeCluster, run_showing_progress, show, table, wait_for
from tests.e2e.conftest import (
    CACHE,
    CHART,
    JOB_IMAGE,
    ROOT,
    Namespaces,
    Release,
    _is_local_cluster,
    split_image,
)
from tests.e2e.test_lifecycle import job_manifest

pytestmark = pytest.mark.cluster

PREVIOUS_CHART = os.environ.get(
    "CONVEYOR_PREVIOUS_CHART_REF", "889b2498ce12e6e9258a0dacb8a6bdbc48b5b12a"
)
"""The commit whose chart (and operator) an upgrade starts from."""
BUILD_LOCAL = "images/operator/build-local.sh"


@pytest.fixture(scope="module")
def previous(previous_tree: Path, previous_image: str) -> tuple[Path, str]:
    """The previous chart's directory and its operator image."""
    return previous_tree / "charts" / "conveyor", previous_image


@pytest.fixture(scope="module")
def previous_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as it was at PREVIOUS_CHART (`git archive`)."""
    tree = tmp_path_factory.mktemp("previous")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS_CHART],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.fail(f"git archive {PREVIOUS_CHART} failed: {archive.stderr.decode()}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


@pytest.fixture(scope="module")
def previous_image(
    previous_tree: Path,
    kube_cluster: KubeCluster,
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The previous operator image: $CONVEYOR_PREVIOUS_IMAGE, else built from the previous
    tree by its own build-local.sh (the local cluster only). Built as an archive only and
    imported apart (import-image.sh --no-persist), so that the previous script's pruning
    of older tags cannot remove the image this session's release runs."""
    if image := os.environ.get("CONVEYOR_PREVIOUS_IMAGE"):
        return image
    if not _is_local_cluster(kube_cluster):
        pytest.fail("set CONVEYOR_PREVIOUS_IMAGE to the previous operator image", pytrace=False)
    log = tmp_path_factory.mktemp("previous-image") / "build-local.log"
    show(pytestconfig, f"\n[tests] the previous operator image ({PREVIOUS_CHART[:12]}; log {log})")
    env_python = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "python"
    build = ["env", f"PYTHON={env_python}", "bash", str(previous_tree / BUILD_LOCAL)]
    status, out = run_showing_progress(
        [*build, "--no-import"], log, pytestconfig, progress=("[image",), result_on_stdout=True
    )
    if status != 0:
        pytest.fail(
            "the previous build-local.sh failed:\n" + "\n".join(log.read_text().splitlines()[-30:]),
            pytrace=False,
        )
    ref = out.strip().splitlines()[-1]
    archive = CACHE / "images" / "extra" / "conveyor.local_conveyor-operator.tar"
    imported = subprocess.run(
        ["bash", str(ROOT / "tests/cluster/import-image.sh"), "--archive", str(archive),
         "--no-persist"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if imported.returncode != 0:
        pytest.fail(f"importing the previous image failed:\n{imported.stderr}", pytrace=False)
    return ref


def test_helm_upgrade_from_the_previous_chart_loses_no_job(
    previous: tuple[Path, str],
    operator_image: str,
    helm: Callable[..., str],
    *,
    kubectl: Callable[..., str],
    e2e_namespaces: Namespaces,
    kube_cluster: KubeCluster,
    tmp_path: Path,
) -> None:
    """Previous CRDs and chart installed, jobs started; then the new CRDs, `helm upgrade` to
    this chart and image: the running job finishes with one attempt and is flagged for its
    deprecated field, a recurring job is Scheduled or Running with its columns, and the new
    chart's `helm test` passes."""
    old_chart, previous_image = previous
    operator_ns = e2e_namespaces.create("upgrade", "pod-security.kubernetes.io/enforce=restricted")
    jobs_ns = e2e_namespaces.create("upgrade-jobs")
    repository, tag = split_image(previous_image)
    old_values = tmp_path / "old-values.yaml"
    old_values.write_text(
        yaml.safe_dump(
            {
                "image": {"repository": repository, "tag": tag},
                "watchNamespaces": [jobs_ns],
                "test": {"jobImage": JOB_IMAGE},
                "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}},
            }
        )
    )
    # as a user of the previous version had it: its CRDs, its chart
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(old_chart / "crds"))
    helm(
        "install",
        "conveyor",
        str(old_chart),
        "-n",
        operator_ns,
        "-f",
        str(old_values),
        "--wait",
        "--timeout",
        "3m",
    )
    release = Release(
        name="conveyor",
        namespace=operator_ns,
        watched=[jobs_ns],
        image=operator_image,
        cluster=kube_cluster,
        helm=helm,
        values_file=tmp_path / "new-values.yaml",
    )
    try:
        for manifest in (
            job_manifest("across", "sleep 20; echo done", activeDeadlineSeconds=300),
            job_manifest("ticks", "true", every="5s", concurrencyPolicy="Forbid"),
        ):
            kubectl("apply", "-n", jobs_ns, "-f", "-", input=manifest)
        kubectl(
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "bgj/across",
            "-n",
            jobs_ns,
            "--timeout=90s",
            timeout=120,
        )
        old_pods = {p["metadata"]["name"] for p in release.operator_pods()}

        # docs/upgrade.md: CRDs first, then the chart
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
        kubectl(
            "wait",
            "--for=condition=Established",
            "crd/backgroundjobs.conveyor.dev",
            "crd/jobqueues.conveyor.dev",
            "--timeout=60s",
        )
        release.upgrade([jobs_ns])
        assert not {p["metadata"]["name"] for p in release.operator_pods()} & old_pods
        history = json.loads(helm("history", "conveyor", "-n", operator_ns, "-o", "json"))
        assert [h["chart"] for h in history][-1].startswith("conveyor-")
        assert history[-1]["status"] == "deployed" and len(history) == 2

        kubectl(
            "wait",
            "--for=condition=Succeeded",
            "bgj/across",
            "-n",
            jobs_ns,
            "--timeout=120s",
            timeout=150,
        )
        status = json.loads(kubectl("get", "bgj", "across", "-n", jobs_ns, "-o", "json"))["status"]
        assert status["attempts"] == 1, status  # the upgrade did not run it twice
        deprecated = {c["type"]: c for c in status["conditions"]}.get("Deprecated")
        assert deprecated is not None and "attemptDeadlineSeconds" in deprecated["message"]

        ticks = wait_for(
            lambda: (
                (
                    s := json.loads(kubectl("get", "bgj", "ticks", "-n", jobs_ns, "-o", "json"))[
                        "status"
                    ]
                ).get("phase")
                in ("Scheduled", "Running")
                and "activeCount" in s
                and s
            ),
            timeout=60,
            desc="ticks written by the new operator",
        )
        assert ticks["lastScheduleTime"]
        (row,) = table(kubectl("get", "bgj", "ticks", "-n", jobs_ns))
        assert row["SUSPEND"] == "false" and row["LAST SCHEDULE"] not in ("", "<none>")

        out = helm("test", "conveyor", "-n", operator_ns, "--timeout", "3m")
        assert "Phase:          Succeeded" in out
    finally:
        if release.installed():
            release.uninstall()
