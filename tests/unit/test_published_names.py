"""The names a stranger installs are public and agree with each other.

The chart's default image, the release workflow's push, the name build-local.sh
tags on the local cluster and the examples' worker image are one name; the
examples and the chart's `helm test` name busybox as Docker Hub does; the chart's
appVersion is the operator's version. A drift here breaks an install that no
local test would catch (the local cluster has every image under every name).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.cluster.fixtures import BUSYBOX_IMAGE

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "conveyor"


def values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def chart() -> dict:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def images_in(document: object) -> list[str]:
    if isinstance(document, dict):
        found = [v for k, v in document.items() if k == "image" and isinstance(v, str)]
        return found + [i for v in document.values() for i in images_in(v)]
    if isinstance(document, list):
        return [i for v in document for i in images_in(v)]
    return []


def test_the_chart_runs_the_operator_version() -> None:
    assert chart()["appVersion"] == version()


def test_one_public_name_for_the_operator_image() -> None:
    repository = values()["image"]["repository"]
    assert not repository.startswith("conveyor.local/"), "the chart must name a public image"
    build_local = (ROOT / "images" / "operator" / "build-local.sh").read_text()
    assert f"PUBLIC_REPO={repository}\n" in build_local
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert release["env"]["IMAGE"] == repository


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_name_public_images(path: Path) -> None:
    images = [i for d in yaml.safe_load_all(path.read_text()) for i in images_in(d)]
    assert images, f"{path.name} runs no image?"
    operator = f"{values()['image']['repository']}:{chart()['appVersion']}"
    for image in images:
        assert image in (BUSYBOX_IMAGE, operator), f"{path.name}: {image} is not a public name"
        assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest")


def test_helm_test_and_the_tests_use_the_public_busybox() -> None:
    assert values()["test"]["jobImage"] == BUSYBOX_IMAGE == "busybox:1.36"
