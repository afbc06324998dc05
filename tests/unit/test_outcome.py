"""outcome.classify: what an attempt's pod means: running, succeeded, failed (counted) or
disrupted (not the job's fault)."""

from __future__ import annotations

import datetime

import pytest

from conveyor.core.outcome import DISRUPTION_POD_REASONS, Outcome, PodView, classify
from tests.unit.factories import at, pod

NOW = at(1000)
TIMEOUT = 300


def decide(view: PodView | None, *, codes: frozenset[int] = frozenset(), now=NOW) -> Outcome:
    return classify(view, now=now, non_retryable_exit_codes=codes, start_timeout_seconds=TIMEOUT)


# ---------------------------------------------------------------- finished pods


def test_succeeded_pod():
    """A Succeeded pod is a success with exit code 0 at its containers' finish time."""
    result = decide(pod(1, "Succeeded", finished_at=at(900), exit_code=0))
    assert result == Outcome("Succeeded", reason="Completed", exit_code=0, finished_at=at(900))


def test_finish_time_defaults_to_now():
    """A finished pod without a container finish time is taken to have finished now."""
    assert decide(pod(1, "Succeeded")).finished_at == NOW


def test_failed_with_exit_code_is_a_counted_retryable_failure():
    """A non-zero exit fails the attempt with the container's reason, retryable."""
    result = decide(
        pod(
            1,
            "Failed",
            finished_at=at(900),
            exit_code=1,
            container_reason="Error",
            container_message="boom",
        ),
        codes=frozenset({2}),
    )
    assert result.kind == "Failed"
    assert result.reason == "Error"
    assert result.exit_code == 1
    assert result.message == "boom"
    assert result.final is False
    assert result.finished_at == at(900)


def test_failed_without_any_reason_says_error():
    """A failed pod with no reason anywhere is reported as Error, with the pod's message."""
    result = decide(pod(1, "Failed", exit_code=3, message="pod says so"))
    assert (result.kind, result.reason, result.message) == ("Failed", "Error", "pod says so")


def test_non_retryable_exit_code_is_final():
    """An exit code listed in nonRetryableExitCodes makes the failure final."""
    result = decide(pod(1, "Failed", exit_code=2, container_reason="Error"), codes=frozenset({2}))
    assert result.kind == "Failed"
    assert result.final is True
    assert result.exit_code == 2


def test_oom_killed():
    """An OOM-killed container is a counted failure with reason OOMKilled and exit code 137."""
    result = decide(pod(1, "Failed", exit_code=137, container_reason="OOMKilled"))
    assert (result.kind, result.reason, result.exit_code, result.final) == (
        "Failed",
        "OOMKilled",
        137,
        False,
    )


def test_deadline_exceeded():
    """A pod stopped by activeDeadlineSeconds is a counted, retryable DeadlineExceeded failure."""
    result = decide(
        pod(1, "Failed", reason="DeadlineExceeded", exit_code=137),
        codes=frozenset({137}),
    )
    assert result.kind == "Failed"
    assert result.reason == "DeadlineExceeded"
    assert result.final is False  # the deadline, not the job, decided
    assert "attemptDeadlineSeconds" in (result.message or "")


def test_deadline_exceeded_keeps_the_pods_message():
    """The kubelet's message about the deadline is passed on."""
    result = decide(pod(1, "Failed", reason="DeadlineExceeded", message="Pod was active too long"))
    assert result.message == "Pod was active too long"


# ---------------------------------------------------------------- disruptions


@pytest.mark.parametrize("reason", sorted(DISRUPTION_POD_REASONS))
def test_node_and_kubelet_reasons_are_disruptions(reason):
    """Eviction, node loss, shutdown and kubelet admission rejections are not the job's fault."""
    result = decide(pod(1, "Failed", reason=reason, message="m", exit_code=1, finished_at=at(5)))
    assert result == Outcome("Disrupted", reason=reason, message="m", finished_at=at(5))


@pytest.mark.parametrize(
    "reason", ["Evicted", "NodeLost", "UnexpectedAdmissionError", "OutOfcpu", "NodeAffinity"]
)
def test_common_disruption_reasons_are_listed(reason):
    """The well-known kubelet/node reasons are in the disruption list."""
    assert reason in DISRUPTION_POD_REASONS


@pytest.mark.parametrize(
    "target", ["PreemptionByScheduler", "DeletionByTaintManager", "TerminationByKubelet"]
)
def test_disruption_target_condition_is_a_disruption(target):
    """A DisruptionTarget condition (preempted, tainted node, kubelet) wins over the exit code."""
    result = decide(
        pod(1, "Failed", exit_code=137, container_reason="Error", disruption_reason=target),
        codes=frozenset({137}),
    )
    assert result.kind == "Disrupted"
    assert result.reason == target
    assert result.final is False


def test_disruption_target_on_a_succeeded_pod_is_still_success():
    """A pod that succeeded before it was disrupted counts as succeeded."""
    result = decide(pod(1, "Succeeded", disruption_reason="PreemptionByScheduler"))
    assert result.kind == "Succeeded"


def test_pod_gone_is_disrupted():
    """A pod that disappeared before it finished is a disruption, PodDeleted, at now."""
    result = decide(None)
    assert result.kind == "Disrupted"
    assert result.reason == "PodDeleted"
    assert result.finished_at == NOW


# ---------------------------------------------------------------- running and starting


@pytest.mark.parametrize("phase", ["Running", "Unknown"])
def test_started_pod_is_running(phase):
    """A started pod is Running, with no start deadline, even long after creation."""
    assert decide(pod(1, phase, created_at=at(0)), now=at(10**6)) == Outcome("Running")


def test_pending_pod_within_the_start_timeout():
    """A pod not started yet is Running until created_at + startTimeoutSeconds."""
    created = NOW - datetime.timedelta(seconds=TIMEOUT - 1)
    result = decide(pod(1, "Pending", created_at=created, waiting_reason="ImagePullBackOff"))
    assert result.kind == "Running"
    assert result.start_deadline == created + datetime.timedelta(seconds=TIMEOUT)


def test_pending_pod_without_creation_time_is_running():
    """A pod whose creation time is unknown is not timed out."""
    view = PodView(name="send-1-1", attempt=1, phase="Pending", created_at=None)
    assert decide(view) == Outcome("Running")


def _timed_out(**fields) -> Outcome:
    created = NOW - datetime.timedelta(seconds=TIMEOUT)  # exactly at the deadline
    return decide(pod(1, "Pending", created_at=created, **fields))


@pytest.mark.parametrize("waiting", ["ImagePullBackOff", "ErrImagePull", "CreateContainerError"])
def test_start_timeout_reports_the_waiting_reason(waiting):
    """Past the timeout, a container stuck waiting fails the attempt with its reason."""
    result = _timed_out(waiting_reason=waiting, waiting_message="pull access denied")
    assert result.kind == "Failed"
    assert result.reason == waiting
    assert result.final is False
    assert result.finished_at == NOW
    assert result.message == f"the pod did not start within {TIMEOUT}s: pull access denied"


def test_start_timeout_unschedulable():
    """Past the timeout, an unschedulable pod fails the attempt as Unschedulable."""
    result = _timed_out(unschedulable_message="0/1 nodes are available: 1 Insufficient cpu.")
    assert result.kind == "Failed"
    assert result.reason == "Unschedulable"
    assert "Insufficient cpu" in (result.message or "")


def test_start_timeout_generic():
    """Past the timeout with nothing more specific, the reason is StartTimeout."""
    result = _timed_out()
    assert (result.kind, result.reason) == ("Failed", "StartTimeout")
    assert result.message == f"the pod did not start within {TIMEOUT}s"


@pytest.mark.parametrize("waiting", ["ContainerCreating", "PodInitializing"])
def test_start_timeout_ignores_normal_starting_reasons(waiting):
    """ContainerCreating is no reason of its own: unschedulable or StartTimeout is reported."""
    assert _timed_out(waiting_reason=waiting).reason == "StartTimeout"
    assert _timed_out(waiting_reason=waiting, unschedulable_message="x").reason == "Unschedulable"


@pytest.mark.parametrize("phase", ["Pending", "Running"])
def test_terminating_pod_is_running(phase):
    """A pod being deleted still runs (and holds its slot) until it is gone."""
    result = decide(pod(1, phase, created_at=at(0), deleting=True), now=at(10**6))
    assert result == Outcome("Running")
