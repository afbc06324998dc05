"""Progress of long setup steps reaches a terminal and a log alike.

`tests/cluster/progress.sh`'s heartbeat (the cold build, debootstrap) and the fixtures'
`run_showing_progress` (up.sh and the image build run from pytest) are what keep a
first `make demo` or `make test` from looking hung; both are checked here on tiny
commands, with their output going to a pipe, as in CI or `| tee`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cluster.fixtures import run_showing_progress

PROGRESS_SH = Path(__file__).resolve().parents[2] / "tests" / "cluster" / "progress.sh"


def test_a_long_step_says_every_heartbeat_that_it_goes_on() -> None:
    """Into a pipe: heartbeats naming the step, its time so far and the log; the step's
    own status is kept."""
    script = f"""
        source {PROGRESS_SH}
        say() {{ echo "[t] $*"; }}
        long "compiling" /tmp/build.log sleep 2.5
        echo "status $?"
        long "failing" "" false || echo "status $?"
    """
    out = subprocess.run(
        ["bash", "-c", script],
        env={"CONVEYOR_HEARTBEAT_SECONDS": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.splitlines()
    beats = [line for line in out if "compiling: still running" in line]
    assert len(beats) >= 2, out
    assert beats[0] == "[t] compiling: still running, 0m01s so far; follow: tail -f /tmp/build.log"
    assert out[-2:] == ["status 0", "status 1"]


def test_a_fixtures_long_command_shows_its_progress_and_keeps_the_rest(
    pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    """Progress lines are shown as they come (past pytest's capture), every line is
    logged, and the result on stdout is returned apart."""
    script = (
        'echo "[build 1s] one" >&2; echo noise >&2; echo REF; echo "[build 2s] two" >&2; exit 3'
    )
    status, out = run_showing_progress(
        ["bash", "-c", script],
        tmp_path / "log",
        pytestconfig,
        progress=("[build",),
        result_on_stdout=True,
    )
    assert (status, out) == (3, "REF\n")
    assert (tmp_path / "log").read_text().splitlines() == [
        "[build 1s] one",
        "noise",
        "[build 2s] two",
    ]
    status, _ = run_showing_progress(
        ["bash", "-c", 'echo "[build 1s] merged"; echo err >&2'],
        tmp_path / "log2",
        pytestconfig,
        progress=("[build",),
    )
    assert status == 0
    assert "err" in (tmp_path / "log2").read_text()
