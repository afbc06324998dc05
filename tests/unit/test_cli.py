"""kubectl conveyor: what it prints (cli.format) and how it reads kubectl's flags (cli.main)."""

from __future__ import annotations

import io

import pytest

from conveyor.cli import format as fmt
from conveyor.cli import main as cli
from conveyor.core import summary
from tests.unit.dashboard_data import attempt, job_body, queue_body
from tests.unit.factories import at


def test_tables_align_like_kubectl():
    text = fmt.table(["NAME", "PHASE"], [["a", "Running"], ["longer-name", "Failed"]])
    assert text.splitlines() == [
        "NAME          PHASE",
        "a             Running",
        "longer-name   Failed",
    ]


def test_the_queues_table():
    jobs = [
        summary.job_row(job_body("a", "Queued", created=0)),
        summary.job_row(job_body("b", "Failed", history=[attempt(1, "Failed", finished=100)])),
    ]
    rows = summary.queue_rows([queue_body("email", paused=True, concurrency=3)], jobs, at(120))
    lines = fmt.queues_table(rows).splitlines()
    assert lines[0].split() == [
        "QUEUE", "WAITING", "DELAYED", "RUNNING", "SUCCEEDED", "FAILED", "RATE",
        "OLDEST", "WAITING", "PAUSED",
    ]  # fmt: skip
    assert lines[1].split() == ["email", "1", "0", "0", "0", "1", "0.2/m", "2m", "true"]
    wide = fmt.queues_table(rows, wide=True, all_namespaces=True).splitlines()
    assert wide[0].startswith("NAMESPACE   QUEUE")
    assert wide[1].split()[-4:] == ["0", "0.2/m", "3", "<none>"]


def test_the_jobs_table_wide():
    row = summary.job_row(
        job_body(
            "send-1",
            "BackingOff",
            created=0,
            attemptsSummary="1/5",
            nextAttemptAt="2026-03-01T12:10:00Z",
            lastFailure={"reason": "Error", "exitCode": 1},
        )
    )
    lines = fmt.jobs_table([row], at(300), wide=True).splitlines()
    assert lines[0].split()[:6] == ["NAME", "QUEUE", "PHASE", "ATTEMPTS", "LAST", "FAILURE"]
    cells = lines[1].split()
    assert cells[:6] == ["send-1", "email", "BackingOff", "1/5", "Error", "5m"]
    assert cells[6:9] == ["1", "<none>", "in"]


def test_describe_shows_attempts_as_a_timeline():
    body = job_body(
        "send-1",
        "Succeeded",
        created=0,
        attemptsSummary="2/5",
        result='{"sent": 3}',
        history=[
            attempt(1, "Failed", started=1, finished=4, exitCode=1, reason="Error"),
            attempt(2, "Succeeded", started=10, finished=70, exitCode=0, output='{"sent": 3}'),
        ],
        lastFailure={"attempt": 1, "logTail": "a\nb\nconnection refused"},
        conditions=[{"type": "Succeeded", "status": "True", "reason": "Completed"}],
        spec={"dependsOn": ["charge-1"]},
    )
    events = [{"type": "Normal", "reason": "Started", "message": "attempt 1 started",
               "lastTimestamp": "2026-03-01T12:00:01Z"}]  # fmt: skip
    text = fmt.describe(
        body,
        attempts=summary.timeline(body),
        events=events,
        dependencies={"charge-1": "Succeeded"},
        runs=[],
        now=at(100),
    )
    assert 'Result:       {"sent": 3}' in text
    assert "Depends on:   charge-1 (Succeeded)" in text
    assert "  #1  pod-1  Failed (Error)  exit code 1  started 2026-03-01T12:00:01Z" in text
    assert "ran 3s" in text
    assert "      │ connection refused" in text
    assert "  #2  pod-2  Succeeded  exit code 0" in text
    assert '      output:  {"sent": 3}' in text
    assert "Reason:       Completed: " in text
    assert text.splitlines()[-1].split()[:3] == ["99s", "Normal", "Started"]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_usage_errors_exit_1_with_the_reason_on_stderr():
    code, out, err = run("frobnicate")
    assert code == 1 and out == ""
    assert "invalid choice: 'frobnicate'" in err
    code, _, err = run()
    assert code == 1 and "queues" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "shop", "--context", "dev", "jobs", "-q", "email"],
        ["jobs", "-q", "email", "-n", "shop", "--context", "dev"],
        ["--context", "dev", "jobs", "--namespace=shop", "--queue", "email"],
    ],
)
def test_kubectls_flags_read_before_or_after_the_command(argv):
    args = cli.parser().parse_args(argv)
    assert (args.namespace, args.context, args.queue, args.command) == (
        "shop",
        "dev",
        "email",
        "jobs",
    )


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path):
    code, _, err = run("queues", "--kubeconfig", str(tmp_path / "nope"))
    assert code == 1
    assert err.startswith("error: ")
