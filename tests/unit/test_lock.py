"""The lock (requirements/*.txt) agrees with pyproject.toml.

Every install of the dependencies (the image, CI, `make venv`) comes from the lock,
so a dependency added to pyproject.toml without `make lock` would be missing from
all of them, and a range narrowed without it would be a lie. These tests read the
files only: no index, no network.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"
PROJECT = "conveyor-operator (pyproject.toml)"


@dataclass
class Pin:
    version: str
    hashes: int = 0
    via: set[str] = field(default_factory=set)


def read_lock(path: Path) -> dict[str, Pin]:
    """name → its pin, hashes counted, and what required it (uv's `# via` notes)."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", line):
            current = pins[canonicalize_name(match[1])] = Pin(match[2])
        elif current is not None and "--hash=sha256:" in line:
            current.hashes += 1
        elif (
            current is not None
            and (via := re.match(r"^\s+#\s+(?:via\s+)?(\S.*)$", line))
            and via[1] != "via"
        ):
            current.via.add(via[1].strip())
    return pins


def pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def runtime() -> list[Requirement]:
    return [Requirement(r) for r in pyproject()["project"]["dependencies"]]


def extras() -> list[Requirement]:
    optional = pyproject()["project"]["optional-dependencies"]
    return [Requirement(r) for name in ("test", "lint") for r in optional[name]]


def build_requires() -> list[Requirement]:
    return [Requirement(r) for r in pyproject()["build-system"]["requires"]]


def assert_satisfied(requirements: list[Requirement], lock: str) -> None:
    pins = read_lock(LOCKS / lock)
    wrong = []
    for requirement in requirements:
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            wrong.append(f"{requirement} is not in requirements/{lock}")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            wrong.append(f"{requirement}: requirements/{lock} pins {pin.version}")
    assert not wrong, "; ".join(wrong) + ": run `make lock`"


def test_the_image_lock_has_every_runtime_dependency_in_its_range() -> None:
    assert_satisfied(runtime(), "operator.txt")


def test_the_dev_lock_has_every_dependency_and_tool_in_its_range() -> None:
    assert_satisfied(runtime() + extras() + build_requires(), "dev.txt")


def test_the_build_lock_has_what_builds_the_wheel() -> None:
    assert_satisfied(build_requires(), "build.txt")
    listed = {
        Requirement(line).name
        for line in (LOCKS / "build.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert listed == {r.name for r in build_requires()}, (
        "requirements/build.in must list pyproject.toml's [build-system] requires"
    )


def test_no_pin_is_left_of_a_removed_dependency() -> None:
    """The packages the lock says pyproject.toml asked for are the ones it does ask for."""
    direct = {n for n, pin in read_lock(LOCKS / "operator.txt").items() if PROJECT in pin.via}
    assert direct == {canonicalize_name(r.name) for r in runtime()}, "run `make lock`"
    direct = {n for n, pin in read_lock(LOCKS / "dev.txt").items() if PROJECT in pin.via}
    assert direct == {canonicalize_name(r.name) for r in runtime() + extras()}, "run `make lock`"


def test_one_version_of_each_package_in_every_lock() -> None:
    dev = read_lock(LOCKS / "dev.txt")
    for lock in ("operator.txt", "build.txt"):
        for name, pin in read_lock(LOCKS / lock).items():
            assert name in dev, f"{name} of requirements/{lock} is not in dev.txt"
            assert dev[name].version == pin.version, (
                f"{name}: {pin.version} in requirements/{lock}, {dev[name].version} in dev.txt"
            )


@pytest.mark.parametrize("lock", ["operator.txt", "build.txt", "dev.txt"])
def test_every_pin_has_a_hash(lock: str) -> None:
    pins = read_lock(LOCKS / lock)
    assert pins
    assert not [n for n, pin in pins.items() if pin.hashes == 0], "pip --require-hashes needs them"
