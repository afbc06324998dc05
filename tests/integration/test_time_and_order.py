"""Delayed jobs, recurring jobs and dependencies on the real cluster.

No test sleeps for a fixed time: waiting is always for a condition (a phase, a run's
existence, or the clock passing a computed instant), with a timeout. The cron test waits
for the next wall-clock minute, the only one that does.

When and in which order things happened is read from what the API server says, never
from times the operator writes itself: `metadata.creationTimestamp` (whole seconds,
rounded down, so a stamp S means created in [S, S + 1)) and the test's own watches
(`ObjectWatch`), whose events come in the API server's order. Where a bound is tight,
the instants compared with are whole seconds too, so that comparing stamps is exact.
"""

from __future__ import annotations

import datetime
import itertools
import math
import time
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cluster.fixtures import KubeCluster, wait_for
from tests.integration.conftest import Jobs, ObjectWatch, OperatorProcess, condition, parse_time

pytestmark = pytest.mark.cluster


def _rfc3339(moment: float) -> str:
    return (
        datetime.datetime.fromtimestamp(moment, datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _stamp(jobs: Jobs, pod: str) -> int:
    """The pod's creationTimestamp, in unix seconds (the API server's, whole seconds)."""
    created = jobs.core.read_namespaced_pod(pod, jobs.namespace).metadata.creation_timestamp
    return int(created.timestamp())


def _runs(jobs: Jobs, parent: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = jobs.custom.list_namespaced_custom_object(
        "conveyor.dev",
        "v1alpha1",
        jobs.namespace,
        "backgroundjobs",
        label_selector=f"conveyor.dev/recurring-job={parent}",
    )["items"]
    return sorted(items, key=lambda j: j["metadata"]["name"])


def _scheduled(run_name: str) -> int:
    """The scheduled time in a run's name, `<job>-<unix seconds>`."""
    return int(run_name.rsplit("-", 1)[1])


def _reasons(jobs: Jobs, name: str) -> list[str]:
    return [e.reason for e in jobs.events(name)]


def _wait_until(moment: float) -> None:
    wait_for(
        lambda: time.time() >= moment, timeout=max(1.0, moment - time.time() + 5), interval=0.05
    )


RunWatches = Callable[[str], ObjectWatch]


@pytest.fixture
def run_watches(jobs: Jobs) -> Iterator[RunWatches]:
    """`run_watches(parent)` watches the runs of `parent` until the test ends."""
    started: list[ObjectWatch] = []

    def start(parent: str) -> ObjectWatch:
        watch = jobs.watch_runs(parent)
        started.append(watch)
        return watch

    yield start
    for watch in started:
        watch.stop()


# ---------------------------------------------------------------- delayed jobs


def test_a_delayed_job_starts_within_a_second_of_its_time(jobs: Jobs) -> None:
    """startAt: the job waits in Delayed, and its pod is created in [startAt, startAt + 1).

    startAt is a whole second, so that holds exactly when the pod's creationTimestamp is
    startAt: a stamp below means created early, above means a second or more late."""
    start_at = math.ceil(time.time()) + 4
    jobs.create("later", "true", startAt=_rfc3339(start_at))
    status = jobs.wait("later", lambda s: s.get("phase") == "Delayed", desc="delayed")
    assert parse_time(status["nextAttemptAt"]) == start_at
    jobs.wait_phase("later", "Succeeded", timeout=30)
    assert _stamp(jobs, "later-1") == start_at


def test_delay_seconds_counts_from_creation(jobs: Jobs) -> None:
    """delaySeconds 3: the pod is created in [C + 3, C + 5), C the job's creationTimestamp
    (the only creation time the operator knows: whole seconds). Both ends whole seconds:
    the pod's stamp is C + 3 or C + 4."""
    created = jobs.create("snooze", "true", delaySeconds=3)
    jobs.wait_phase("snooze", "Succeeded", timeout=30)
    creation = int(parse_time(created["metadata"]["creationTimestamp"]))
    assert _stamp(jobs, "snooze-1") - creation in (3, 4)


def test_a_delay_survives_an_operator_restart(
    jobs: Jobs, conveyor_operator: OperatorProcess
) -> None:
    """The wake-up is recomputed from the status after a restart: the pod is still created
    in [startAt, startAt + 1) (startAt a whole second: its stamp is startAt)."""
    start_at = math.ceil(time.time()) + 10
    jobs.create("patient", "true", startAt=_rfc3339(start_at))
    jobs.wait("patient", lambda s: s.get("phase") == "Delayed", desc="delayed")
    conveyor_operator.restart()
    assert time.time() < start_at - 1, "the restart took too long for this test to mean much"
    jobs.wait_phase("patient", "Succeeded", timeout=30)
    assert _stamp(jobs, "patient-1") == start_at


# ---------------------------------------------------------------- recurring jobs


def test_every_creates_runs_on_time_with_deterministic_names(jobs: Jobs) -> None:
    """every: 3s creates <job>-<creation + 3k>, each in the second after its time (stamp
    equal to it: the times are whole seconds, the anchor being the job's creationTimestamp);
    the runs succeed, belong to the parent, do not recur; the parent lists them."""
    created = jobs.create("tick", "true", every="3s", successfulRunsHistoryLimit=10)
    anchor = int(parse_time(created["metadata"]["creationTimestamp"]))
    wait_for(lambda: len(_runs(jobs, "tick")) >= 3, timeout=30, desc="three runs")
    names = [r["metadata"]["name"] for r in _runs(jobs, "tick")][:3]
    assert names == [f"tick-{anchor + 3 * k}" for k in (1, 2, 3)]
    for run in _runs(jobs, "tick")[:3]:
        scheduled = _scheduled(run["metadata"]["name"])
        assert parse_time(run["metadata"]["annotations"]["conveyor.dev/scheduled-at"]) == scheduled
        stamp = int(parse_time(run["metadata"]["creationTimestamp"]))
        assert stamp - scheduled in (0, 1), f"{run['metadata']['name']} created at {stamp}"
        assert run["metadata"]["ownerReferences"][0]["name"] == "tick"
        assert run["spec"].get("every") is None
    for name in names:
        jobs.wait_phase(name, "Succeeded", timeout=60)
    status = jobs.status("tick")
    assert status["lastScheduleTime"] and status["nextScheduleTime"]


def test_cron_schedules_fire_on_the_minute_in_utc_and_in_a_time_zone(jobs: Jobs) -> None:
    """Two five-field schedules naming the next minute boundary B: `M H * * *` in UTC, and
    the same instant in Asia/Kathmandu's local time (+05:45: hour and minute both differ
    from UTC, so a zone ignored would not fire at B). Each creates <job>-<B> within 2 s
    after B (creationTimestamp B or B + 1), which succeeds; the next run is a day later.

    One wait of at most a minute (plus the 5 s it leaves to create the jobs) serves both."""
    now = time.time()
    boundary = (int(now) // 60 + 1) * 60
    if boundary - now < 5:
        boundary += 60
    utc = datetime.datetime.fromtimestamp(boundary, datetime.UTC)
    local = utc.astimezone(zoneinfo.ZoneInfo("Asia/Kathmandu"))
    assert (local.hour, local.minute) != (utc.hour, utc.minute)
    schedules = {
        "utc-daily": {"schedule": f"{utc.minute} {utc.hour} * * *"},
        "kathmandu-daily": {
            "schedule": f"{local.minute} {local.hour} * * *",
            "timeZone": "Asia/Kathmandu",
        },
    }
    for name, fields in schedules.items():
        jobs.create(name, "true", **fields)
    assert time.time() < boundary - 1, "creating the jobs took too long for this test"
    for name in schedules:
        run = f"{name}-{boundary}"
        try:
            body = wait_for(
                lambda run=run: jobs.get(run),
                timeout=boundary - time.time() + 30,
                interval=0.5,
                desc=f"run {run}",
            )
        except TimeoutError as error:
            raise AssertionError(f"{error}\n{name}: {jobs.dump(name)}") from None
        stamp = int(parse_time(body["metadata"]["creationTimestamp"]))
        assert stamp - boundary in (0, 1), f"{run} created at {stamp}, due at {boundary}"
    for name in schedules:
        jobs.wait_phase(f"{name}-{boundary}", "Succeeded", timeout=60)
        assert [r["metadata"]["name"] for r in _runs(jobs, name)] == [f"{name}-{boundary}"]
        status = jobs.status(name)
        assert parse_time(status["lastScheduleTime"]) == boundary
        assert parse_time(status["nextScheduleTime"]) == boundary + 86400


def test_forbid_never_has_two_runs_active_at_once(
    jobs: Jobs, run_watches: RunWatches, pod_watch: ObjectWatch
) -> None:
    """concurrencyPolicy Forbid, every 2 s, runs of 5 s: the test's watches follow every run
    and pod from before the first; across four runs, never two runs active (nor two pods
    live) at once, and the runs due meanwhile are skipped with RunSkipped events."""
    runs = run_watches("exclusive")
    jobs.create(
        "exclusive",
        "sleep 5",
        every="2s",
        concurrencyPolicy="Forbid",
        successfulRunsHistoryLimit=10,
    )
    wait_for(
        lambda: sum("Succeeded" in r["phases"] for r in runs.snapshot().values()) >= 4,
        timeout=120,
        desc="four runs succeeded",
    )
    assert runs.max_live == 1, f"{runs.max_live} runs active at once: {runs.snapshot()}"
    assert pod_watch.max_live == 1, f"{pod_watch.max_live} pods live at once"
    assert "RunSkipped" in _reasons(jobs, "exclusive")
    times = [_scheduled(n) for n in runs.names()]
    assert all(b - a > 2 for a, b in itertools.pairwise(times)), times


def test_allow_lets_runs_overlap(
    jobs: Jobs, run_watches: RunWatches, pod_watch: ObjectWatch
) -> None:
    """concurrencyPolicy Allow, every 2 s, runs of 6 s: each run is created on time while
    the earlier ones still run: two runs active and two pods Running at once. Once
    suspended, every run that was created succeeds."""
    runs = run_watches("overlap")
    jobs.create("overlap", "sleep 6", every="2s", concurrencyPolicy="Allow")
    wait_for(
        lambda: runs.max_live >= 2 and pod_watch.max_in_phase.get("Running", 0) >= 2,
        timeout=60,
        desc="two runs active and two pods running at once",
    )
    jobs.patch("overlap", {"spec": {"suspend": True}})
    jobs.wait(
        "overlap",
        lambda s: (c := condition(s, "Suspended")) is not None and c["status"] == "True",
        desc="suspended",
    )
    created = runs.names()
    times = [_scheduled(n) for n in created]
    assert times == list(range(times[0], times[-1] + 1, 2)), f"a run was skipped: {times}"
    for name in created:
        jobs.wait_phase(name, "Succeeded", timeout=60)


def test_replace_deletes_the_active_run_and_its_pod(
    jobs: Jobs, run_watches: RunWatches, pod_watch: ObjectWatch
) -> None:
    """concurrencyPolicy Replace, every 5 s, runs of 60 s: when the second run is due, the
    first (its pod running) is deleted, with a RunReplaced event naming it; its pod is
    deleted too, and the new run is the only active one."""
    runs = run_watches("fresh")
    jobs.create("fresh", "sleep 60", every="5s", concurrencyPolicy="Replace")
    first = wait_for(runs.names, timeout=30, desc="a first run")[0]
    pod = f"{first}-1"
    wait_for(
        lambda: "Running" in pod_watch.snapshot().get(pod, {}).get("phases", []),
        timeout=30,
        desc=f"pod {pod} running",
    )
    replaced = wait_for(
        lambda: [e.message for e in jobs.events("fresh") if e.reason == "RunReplaced"],
        timeout=30,
        desc="a replaced run",
    )
    assert first in replaced[0], replaced
    wait_for(lambda: runs.snapshot()[first]["deleted"], timeout=30, desc=f"run {first} deleted")
    from kubernetes.client.rest import ApiException

    with pytest.raises(ApiException) as gone:
        jobs.get(first)
    assert gone.value.status == 404
    wait_for(
        lambda: pod_watch.snapshot()[pod]["terminating"],
        timeout=30,
        desc=f"pod {pod} deleted or terminating",
    )
    second = f"fresh-{_scheduled(first) + 5}"
    assert second in runs.names()
    jobs.wait(
        "fresh",
        lambda s: first not in s.get("active", []) and len(s.get("active", [])) == 1,
        desc=f"one active run, not {first}",
    )


@pytest.mark.parametrize(
    "case",
    [
        (
            "Succeeded",
            "true",
            {"successfulRunsHistoryLimit": 2, "failedRunsHistoryLimit": 5},
            2,
        ),
        (
            "Failed",
            "exit 1",
            {
                "failedRunsHistoryLimit": 1,
                "successfulRunsHistoryLimit": 5,
                "retry": {"maxAttempts": 1},
            },
            1,
        ),
    ],
    ids=["succeeded", "failed"],
)
def test_history_limits_delete_all_but_the_newest_finished_runs(
    jobs: Jobs, run_watches: RunWatches, case: tuple[str, str, dict[str, Any], int]
) -> None:
    """every 1 s, runs that all end `phase`, that phase's history limit `keep` (the other
    limit higher, so the wrong one applied would keep too many): the watch sees at least
    keep + 3 runs created and finished; once suspended and settled, exactly the newest
    `keep` remain, every other one was deleted, and none before it had finished."""
    phase, script, spec, keep = case
    runs = run_watches("pruned")
    jobs.create("pruned", script, every="1s", **spec)
    wait_for(
        lambda: sum(phase in r["phases"] for r in runs.snapshot().values()) >= keep + 3,
        timeout=90,
        desc=f"{keep + 3} runs {phase}",
    )
    jobs.patch("pruned", {"spec": {"suspend": True}})

    def settled() -> dict[str, dict[str, Any]] | None:
        seen = runs.snapshot()
        if any(r["deleted"] is None and phase not in r["phases"] for r in seen.values()):
            return None  # a run still going (the last ones before the suspend)
        newest = sorted(seen, key=_scheduled)[-keep:]
        remaining = [n for n, r in seen.items() if r["deleted"] is None]
        return seen if sorted(remaining, key=_scheduled) == newest else None

    seen = wait_for(settled, timeout=60, desc=f"only the newest {keep} runs kept")
    assert seen is not None and len(seen) >= keep + 3
    kept = sorted(seen, key=_scheduled)[-keep:]
    assert [r["metadata"]["name"] for r in _runs(jobs, "pruned")] == sorted(kept)
    for name, record in seen.items():
        assert record["phases"][-1] == phase, (name, record)


@pytest.mark.parametrize("policy", ["RunAll", "RunLatest", "Skip"])
def test_runs_missed_while_the_operator_was_down_follow_the_policy(
    jobs: Jobs, conveyor_operator: OperatorProcess, run_watches: RunWatches, policy: str
) -> None:
    """every 6 s. After the first run L the operator is killed, and two scheduled times
    (L + 6, L + 12) pass while it is down; restarted, it creates RunAll: both, RunLatest:
    L + 12 only, Skip: neither, and in every case the next on-time run L + 18.

    It is restarted 0.5 s after L + 12 (for Skip, 2.5 s: more than the 2 s within which a
    run still counts as on time), so it decides before L + 18, when these answers differ."""
    name = f"catchup-{policy.lower()}"
    runs = run_watches(name)
    jobs.create(
        name,
        "true",
        every="6s",
        missedRunsPolicy=policy,
        maxMissedRuns=10,
        successfulRunsHistoryLimit=10,
    )
    wait_for(runs.names, timeout=30, desc="a first run")
    conveyor_operator.kill()
    try:
        before = runs.names()
        last = max(_scheduled(n) for n in before)
        missed = [last + 6, last + 12]
        _wait_until(missed[-1] + (2.5 if policy == "Skip" else 0.5))
        assert runs.names() == before, "a run was created while the operator was down"
    finally:
        conveyor_operator.start()
    restarted = time.time()
    on_time = last + 18
    wait_for(
        lambda: f"{name}-{on_time}" in runs.names(),
        timeout=on_time - time.time() + 30,
        desc=f"the on-time run {name}-{on_time}",
    )
    created = sorted(_scheduled(n) for n in runs.names() if n not in before)
    expected = {"RunAll": missed, "RunLatest": missed[-1:], "Skip": []}[policy]
    assert [t for t in created if t < on_time] == expected, (
        f"missed {missed}, created {created}; the operator was restarted at "
        f"{restarted - last:.1f} s after L"
    )
    assert jobs.status(name)["nextScheduleTime"]


def test_forbid_does_not_count_a_run_that_finished_while_the_operator_was_down(
    jobs: Jobs, conveyor_operator: OperatorProcess, run_watches: RunWatches, pod_watch: ObjectWatch
) -> None:
    """concurrencyPolicy Forbid, missedRunsPolicy RunLatest, every 6 s: the operator is
    killed once the first run L has its pod; the pod succeeds while it is down, across
    L + 6 and L + 12. Restarted 0.5 s after L + 12, with nothing active, it must create
    L + 12, not skip it (RunSkipped) because L's status, last written before the outage,
    still says Running."""
    name = "forbid-catchup"
    runs = run_watches(name)
    jobs.create(name, "true", every="6s", concurrencyPolicy="Forbid", successfulRunsHistoryLimit=10)
    first = wait_for(runs.names, timeout=30, desc="a first run")[0]
    wait_for(lambda: f"{first}-1" in pod_watch.names(), timeout=30, desc=f"pod {first}-1")
    conveyor_operator.kill()
    try:
        assert runs.names() == [first], "the operator was killed too late for this test"
        last = _scheduled(first)
        wait_for(
            lambda: "Succeeded" in pod_watch.snapshot()[f"{first}-1"]["phases"],
            timeout=30,
            desc=f"pod {first}-1 succeeded while the operator is down",
        )
        _wait_until(last + 12.5)
    finally:
        conveyor_operator.start()
    # A run after L + 12 says the catch-up was decided. It is L + 18 if L + 12's pod finished
    # within its 6 s, else (Forbid skips L + 18 while L + 12 runs, on a loaded machine) L + 24.
    wait_for(
        lambda: any(_scheduled(n) > last + 12 for n in runs.names()),
        timeout=last + 24 - time.time() + 30,
        desc=f"an on-time run after {name}-{last + 12}",
    )
    created = sorted(_scheduled(n) for n in runs.names())
    assert last + 12 in created, (
        f"created {created}, missed {[last + 6, last + 12]}; events: "
        f"{[(e.reason, e.message) for e in jobs.events(name)]}"
    )


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


def test_order_fulfilment_charge_and_reserve_then_ship(jobs: Jobs, pod_watch: ObjectWatch) -> None:
    """Fan-in: ship waits in Blocked for both charge and reserve, then runs after them: the
    API server created ship's pod after it had both their pods Succeeded (the watch's
    order is the API server's)."""
    jobs.create("ship", "true", dependsOn=["charge", "reserve"])
    status = jobs.wait("ship", lambda s: s.get("phase") == "Blocked", desc="blocked")
    message = condition(status, "Blocked")["message"]
    assert "charge" in message and "reserve" in message and "not found" in message
    jobs.create("charge", "sleep 1")
    jobs.create("reserve", "sleep 2")
    jobs.wait_phase("ship", "Succeeded", timeout=60)
    pods = pod_watch.snapshot()
    for dep in ("charge-1", "reserve-1"):
        assert pods["ship-1"]["order"] > pods[dep]["reached"]["Succeeded"], pods


def test_a_chain_runs_in_order(jobs: Jobs, pod_watch: ObjectWatch) -> None:
    """A → B → C: each pod is created after the one before it succeeded."""
    jobs.create("c", "true", dependsOn=["b"])
    jobs.create("b", "true", dependsOn=["a"])
    jobs.create("a", "true")
    jobs.wait_phase("c", "Succeeded", timeout=60)
    pods = pod_watch.snapshot()
    assert pod_watch.names() == ["a-1", "b-1", "c-1"]
    assert pods["b-1"]["order"] > pods["a-1"]["reached"]["Succeeded"], pods
    assert pods["c-1"]["order"] > pods["b-1"]["reached"]["Succeeded"], pods


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


def test_a_job_submitted_while_down_after_its_dependency_finished_starts_never_blocked(
    jobs: Jobs, conveyor_operator: OperatorProcess
) -> None:
    """A restarted operator admits before the finished jobs are listed (`watches`): the
    dependent of a finished job waits for that list, then starts. It is never written
    Blocked for a dependency it had not seen yet."""
    jobs.create("compile", "true")
    jobs.wait_phase("compile", "Succeeded", timeout=60)
    conveyor_operator.kill()
    try:
        jobs.create("publish", "true", dependsOn=["compile"])
    finally:
        conveyor_operator.start()
    status = jobs.wait_phase("publish", "Succeeded", timeout=60)
    assert condition(status, "Blocked") is None, status["conditions"]
    assert "WaitingForDependencies" not in {e.reason for e in jobs.events("publish")}
