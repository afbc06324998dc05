"""Job results: a worker's termination message kept on its attempt and, once it succeeded, on
the job (status.result), bounded as Kubernetes bounds it."""

from __future__ import annotations

from conveyor.api.v1alpha1 import RESULT_BYTES, BackgroundJobStatus
from tests.unit.factories import advance, around, at, job, pod, spec


def running(retry=None):
    view = job(spec(retry=retry) if retry else spec())
    view, _ = advance(view, around(view, at(0)))
    view, _ = advance(view, around(view, at(0), admit=True))
    return view


def test_the_succeeded_attempts_termination_message_is_the_jobs_result():
    """What the worker wrote to /dev/termination-log is on its attempt and in status.result."""
    view = running()
    done = pod(1, "Succeeded", finished_at=at(5), exit_code=0, container_message='{"sent": 3}')
    _, decision = advance(view, around(view, at(6), pods={1: done}))
    assert decision.status.phase == "Succeeded"
    assert decision.status.result == '{"sent": 3}'
    assert decision.status.history[-1].output == '{"sent": 3}'


def test_a_failed_attempt_keeps_its_output_and_the_job_has_no_result_yet():
    """A failed attempt's termination message stays on that attempt; the result is the
    succeeded attempt's alone."""
    view = running(retry={"maxAttempts": 2})
    failed = pod(
        1,
        "Failed",
        finished_at=at(6),
        exit_code=1,
        container_reason="Error",
        container_message="quota exceeded",
    )
    view, decision = advance(view, around(view, at(6), pods={1: failed}))
    assert decision.status.phase == "BackingOff"
    assert decision.status.history[-1].output == "quota exceeded"
    assert decision.status.result is None
    view, _ = advance(view, around(view, at(20), admit=True))
    done = pod(2, "Succeeded", finished_at=at(25), exit_code=0, container_message="ok")
    _, decision = advance(view, around(view, at(26), pods={2: done}))
    assert decision.status.result == "ok"
    assert [h.output for h in decision.status.history] == ["quota exceeded", "ok"]


def test_no_termination_message_no_result():
    """A worker that wrote nothing leaves output and result unset (not an empty string)."""
    view = running()
    done = pod(1, "Succeeded", finished_at=at(5), exit_code=0, container_message="")
    _, decision = advance(view, around(view, at(6), pods={1: done}))
    assert decision.status.result is None
    assert decision.status.history[-1].output is None


def test_the_result_is_bounded_to_4096_bytes_without_splitting_a_character():
    """A longer message (another runtime, a fallback to logs) is clipped to 4096 bytes."""
    view = running()
    message = "€" * 2000  # 6000 bytes
    done = pod(1, "Succeeded", finished_at=at(5), exit_code=0, container_message=message)
    _, decision = advance(view, around(view, at(6), pods={1: done}))
    result = decision.status.result
    assert result is not None
    assert len(result.encode()) <= RESULT_BYTES
    assert set(result) == {"€"}
    # what is written validates against the model (and so the CRD's maxLength)
    BackgroundJobStatus.model_validate(decision.status.model_dump(by_alias=True, mode="json"))
