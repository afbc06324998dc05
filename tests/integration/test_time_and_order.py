"""Delayed jobs, recurring jobs and dependencies on the real cluster.

No test waits for a wall-clock minute: recurring jobs here use `every`, and
waiting is always for a condition (a phase, a run's existence, or the clock
passing a computed instant), with a timeout.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest

from tests.cluster.fixtures import KubeCluster, wait_for
from tests.integration.conftest import Jobs, OperatorProcess, condition, parse_time

pytestmark = pytest.mark.cluster


def _rfc3339(moment: float) -> str:
    return (
        datetime.datetime.fromtimestamp(moment, datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _created_at(jobs: Jobs, pod: str) -> float:
    meta = jobs.core.read_namespaced_pod(pod, jobs.namespace).metadata
    return parse_time(meta.annotations["conveyor.dev/created-at"])


def _runs(jobs: Jobs, parent: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = jobs.custom.list_namespaced_custom_object(
        "conveyor.dev",
        "v1alpha1",
        jobs.namespace,
        "backgroundjobs",
        label_selector=f"conveyor.dev/recurring-job={parent}",
    )["items"]
    return sorted(items, key=lambda j: j["metadata"]["name"])


def _wait_until(moment: float) -> None:
    wait_for(
        lambda: time.time() >= moment, timeout=max(1.0, moment - time.time() + 5), interval=0.05
    )


# ---------------------------------------------------------------- delayed jobs


def test_a_delayed_job_starts_within_a_second_of_its_time(jobs: Jobs) -> None:
    """startAt: the job waits in Delayed, and its pod is created less than 1s after startAt."""
    start_at = time.time() + 4
    jobs.create("later", "true", startAt=_rfc3339(start_at))
    status = jobs.wait("later", lambda s: s.get("phase") == "Delayed", desc="delayed")
    assert parse_time(status["nextAttemptAt"]) == pytest.approx(start_at, abs=0.01)
    jobs.wait_phase("later", "Succeeded", timeout=30)
    lateness = _created_at(jobs, "later-1") - start_at
    assert 0 <= lateness < 1.0, f"pod created {lateness:.3f}s after startAt"


def test_delay_seconds_counts_from_creation(jobs: Jobs) -> None:
    """delaySeconds: the pod is created that many seconds after the job."""
    created = jobs.create("snooze", "true", delaySeconds=3)
    jobs.wait_phase("snooze", "Succeeded", timeout=30)
    creation = parse_time(created["metadata"]["creationTimestamp"])  # whole seconds
    lateness = _created_at(jobs, "snooze-1") - (creation + 3)
    assert 0 <= lateness < 2.0, f"pod created {lateness:.3f}s after the delay ended"


def test_a_delay_survives_an_operator_restart(
    jobs: Jobs, conveyor_operator: OperatorProcess
) -> None:
    """The wake-up is recomputed from the status after a restart."""
    start_at = time.time() + 10
    jobs.create("patient", "true", startAt=_rfc3339(start_at))
    jobs.wait("patient", lambda s: s.get("phase") == "Delayed", desc="delayed")
    conveyor_operator.restart()
    assert time.time() < start_at - 1, "the restart took too long for this test to mean much"
    jobs.wait_phase("patient", "Succeeded", timeout=30)
    lateness = _created_at(jobs, "patient-1") - start_at
    assert 0 <= lateness < 1.0


# ---------------------------------------------------------------- recurring jobs


def test_every_creates_runs_on_time_with_deterministic_names(jobs: Jobs) -> None:
    """every: 3s creates <job>-<creation + 3k>; the runs succeed; the parent lists them."""
    created = jobs.create("tick", "true", every="3s", successfulRunsHistoryLimit=10)
    anchor = int(parse_time(created["metadata"]["creationTimestamp"]))
    wait_for(lambda: len(_runs(jobs, "tick")) >= 3, timeout=30, desc="three runs")
    names = [r["metadata"]["name"] for r in _runs(jobs, "tick")][:3]
    assert names == [f"tick-{anchor + 3 * k}" for k in (1, 2, 3)]
    for run in _runs(jobs, "tick")[:3]:
        scheduled = parse_time(run["metadata"]["annotations"]["conveyor.dev/scheduled-at"])
        created_run = parse_time(run["metadata"]["creationTimestamp"])
        assert -1.0 <= created_run - scheduled < 2.0
        assert run["metadata"]["ownerReferences"][0]["name"] == "tick"
        assert run["spec"].get("every") is None
    status = jobs.status("tick")
    assert status["lastScheduleTime"] and status["nextScheduleTime"]


def test_forbid_skips_runs_while_one_is_active(jobs: Jobs) -> None:
    """concurrencyPolicy Forbid: a run due while another is active is skipped, with an event."""
    jobs.create("exclusive", "sleep 5", every="2s", concurrencyPolicy="Forbid")
    wait_for(
        lambda: "RunSkipped" in [e.reason for e in jobs.events("exclusive")],
        timeout=30,
        desc="a skipped run",
    )
    runs = _runs(jobs, "exclusive")
    active = [
        r for r in runs if (r.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    assert len(active) <= 1


def test_replace_deletes_the_active_run(jobs: Jobs) -> None:
    """concurrencyPolicy Replace: the next run replaces the one still active."""
    jobs.create("fresh", "sleep 60", every="3s", concurrencyPolicy="Replace")
    wait_for(
        lambda: "RunReplaced" in [e.reason for e in jobs.events("fresh")],
        timeout=30,
        desc="a replaced run",
    )
    wait_for(
        lambda: len(jobs.status("fresh").get("active", [])) == 1,
        timeout=30,
        desc="one active run",
    )


def test_history_limits_prune_finished_runs(jobs: Jobs) -> None:
    """Only the newest successfulRunsHistoryLimit succeeded runs are kept."""
    jobs.create("pruned", "true", every="1s", successfulRunsHistoryLimit=2)
    wait_for(
        lambda: "RunCreated" in [e.reason for e in jobs.events("pruned")][4:],
        timeout=30,
        desc="five runs created",
    )

    def pruned() -> bool:
        done = [
            r for r in _runs(jobs, "pruned") if (r.get("status") or {}).get("phase") == "Succeeded"
        ]
        return len(done) <= 2

    wait_for(pruned, timeout=30, desc="at most two succeeded runs kept")


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("RunAll", "all"), ("RunLatest", "latest"), ("Skip", "none")],
)
def test_runs_missed_while_the_operator_was_down_follow_the_policy(
    jobs: Jobs, conveyor_operator: OperatorProcess, policy: str, expected: str
) -> None:
    """Stop the operator across scheduled times; after the restart exactly the policy's runs
    are created."""
    name = f"catchup-{policy.lower()}"
    jobs.create(name, "true", every="3s", missedRunsPolicy=policy, maxMissedRuns=10)
    wait_for(lambda: len(_runs(jobs, name)) >= 1, timeout=30, desc="a first run")
    conveyor_operator.kill()
    try:
        before = {r["metadata"]["name"] for r in _runs(jobs, name)}
        last = max(int(n.rsplit("-", 1)[1]) for n in before)
        resume_at = last + 3 * 3 + 1.5  # three scheduled times pass while it is down
        _wait_until(resume_at)
        assert {r["metadata"]["name"] for r in _runs(jobs, name)} == before
    finally:
        conveyor_operator.start()
    missed_times = [last + 3 * k for k in (1, 2, 3)]

    def created_after_restart() -> list[int]:
        names = {r["metadata"]["name"] for r in _runs(jobs, name)} - before
        return sorted(int(n.rsplit("-", 1)[1]) for n in names)

    # The catch-up happens whenever the restarted operator gets to it, so on-time runs may
    # follow; what each policy decides shows in which of the missed times were created.
    created = wait_for(created_after_restart, timeout=30, desc="runs after the restart")
    if expected == "all":
        wait_for(
            lambda: set(missed_times) <= set(created_after_restart()),
            timeout=10,
            desc=f"every missed run of {missed_times}",
        )
    elif expected == "latest":
        assert created[0] >= missed_times[-1], (missed_times, created)
    else:
        assert not set(missed_times) & set(created), (missed_times, created)
    assert jobs.status(name)["nextScheduleTime"]


def test_an_invalid_schedule_is_reported_not_crashed_on(jobs: Jobs) -> None:
    """A cron expression the schema lets through but cron refuses → InvalidSpec; others go on."""
    jobs.create("bad-cron", "true", schedule="61 * * * *")
    jobs.create("bad-zone", "true", schedule="0 9 * * *", timeZone="Mars/Olympus")
    jobs.create("bystander", "true")
    for name, word in (("bad-cron", "61"), ("bad-zone", "Mars/Olympus")):
        status = jobs.wait(
            name, lambda s: (c := condition(s, "InvalidSpec")) is not None and c["status"] == "True"
        )
        assert word in condition(status, "InvalidSpec")["message"]
    jobs.wait_phase("bystander", "Succeeded")


def test_the_schema_refuses_what_it_can(jobs: Jobs, kube_cluster: KubeCluster) -> None:
    """A zero interval, or schedule with startAt, is refused at apply."""
    from kubernetes.client.rest import ApiException

    for name, extra in (
        ("zero", {"every": "0s"}),
        ("both", {"schedule": "@hourly", "startAt": "2030-01-01T00:00:00Z"}),
        ("restart", {}),
    ):
        body = jobs.job_body(name, "true", **extra)
        if name == "restart":
            body["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
        with pytest.raises(ApiException) as refused:
            jobs.custom.create_namespaced_custom_object(
                "conveyor.dev", "v1alpha1", jobs.namespace, "backgroundjobs", body
            )
        assert refused.value.status == 422


# ---------------------------------------------------------------- dependencies


def test_order_fulfilment_charge_and_reserve_then_ship(jobs: Jobs) -> None:
    """Fan-in: ship waits in Blocked for both charge and reserve, then runs after them."""
    jobs.create("ship", "true", dependsOn=["charge", "reserve"])
    status = jobs.wait("ship", lambda s: s.get("phase") == "Blocked", desc="blocked")
    message = condition(status, "Blocked")["message"]
    assert "charge" in message and "reserve" in message and "not found" in message
    jobs.create("charge", "sleep 1")
    jobs.create("reserve", "sleep 2")
    jobs.wait_phase("ship", "Succeeded", timeout=60)
    ship_start = _created_at(jobs, "ship-1")
    for dep in ("charge", "reserve"):
        done = parse_time(jobs.status(dep)["completionTime"])
        assert ship_start >= done - 1.0


def test_a_chain_runs_in_order(jobs: Jobs) -> None:
    """A → B → C: each starts after the one before succeeded."""
    jobs.create("c", "true", dependsOn=["b"])
    jobs.create("b", "true", dependsOn=["a"])
    jobs.create("a", "true")
    jobs.wait_phase("c", "Succeeded", timeout=60)
    starts = [_created_at(jobs, f"{n}-1") for n in "abc"]
    assert starts == sorted(starts)


def test_a_failed_dependency_fails_its_dependents(jobs: Jobs) -> None:
    """When a dependency fails for good, the dependent fails with DependencyFailed."""
    jobs.create("pay", "exit 1", retry={"maxAttempts": 1})
    jobs.create("deliver", "true", dependsOn=["pay"])
    status = jobs.wait_phase("deliver", "Failed", timeout=60)
    assert condition(status, "Failed")["reason"] == "DependencyFailed"
    assert "pay" in condition(status, "Failed")["message"]
    assert jobs.pods("deliver") == []


def test_a_dependency_cycle_is_reported(jobs: Jobs) -> None:
    """x → y → x is named in a Blocked condition, never a silent wait."""
    jobs.create("x", "true", dependsOn=["y"])
    jobs.create("y", "true", dependsOn=["x"])
    for name in ("x", "y"):
        status = jobs.wait(
            name,
            lambda s: (
                (c := condition(s, "Blocked")) is not None and c["reason"] == "DependencyCycle"
            ),
        )
        assert "x" in condition(status, "Blocked")["message"]
