"""Retry delays: the documented formula, its bounds, and jitter's spread."""

from __future__ import annotations

import math
import sys
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.api.v1alpha1 import Backoff
from conveyor.core.backoff import delay_for, delay_seconds

Strategy = Literal["Exponential", "Fixed"]

strategies = st.sampled_from(["Exponential", "Fixed"])
initials = st.floats(min_value=0, max_value=86_400, allow_nan=False)
multipliers = st.floats(min_value=1, max_value=100, allow_nan=False)
maximums = st.floats(min_value=0, max_value=604_800, allow_nan=False)
jitters = st.floats(min_value=0, max_value=1, allow_nan=False)
failure_counts = st.integers(min_value=1, max_value=10_000)
draws = st.floats(min_value=0, max_value=1, exclude_max=True, allow_nan=False)


def exponential(failures: int, *, jitter: float = 0.0, draw: float = 0.5) -> float:
    return delay_seconds(
        strategy="Exponential",
        initial=1,
        multiplier=2,
        maximum=3600,
        jitter=jitter,
        failures=failures,
        random=lambda: draw,
    )


def test_exponential_from_one_second_doubles() -> None:
    assert [exponential(n) for n in range(1, 6)] == [1, 2, 4, 8, 16]


def test_exponential_stops_at_the_cap() -> None:
    assert exponential(12) == 2048
    assert exponential(13) == 3600
    assert exponential(1000) == 3600


@given(initial=initials, maximum=maximums, failures=failure_counts)
def test_fixed_is_constant(initial: float, maximum: float, failures: int) -> None:
    delay = delay_seconds(
        strategy="Fixed",
        initial=initial,
        multiplier=3,
        maximum=maximum,
        jitter=0,
        failures=failures,
    )
    assert delay == min(initial, maximum)


def test_fixed_ignores_the_multiplier() -> None:
    delays = {
        delay_seconds(strategy="Fixed", initial=7, multiplier=5, maximum=100, jitter=0, failures=n)
        for n in range(1, 50)
    }
    assert delays == {7}


@given(
    strategy=strategies,
    initial=initials,
    multiplier=multipliers,
    maximum=maximums,
    failures=failure_counts,
)
def test_never_above_the_cap_without_jitter(
    strategy: Strategy, initial: float, multiplier: float, maximum: float, failures: int
) -> None:
    delay = delay_seconds(
        strategy=strategy,
        initial=initial,
        multiplier=multiplier,
        maximum=maximum,
        jitter=0,
        failures=failures,
    )
    assert 0 <= delay <= maximum


@given(
    strategy=strategies,
    initial=initials,
    multiplier=multipliers,
    maximum=maximums,
    failures=st.integers(min_value=1, max_value=5_000),
)
def test_monotonic_in_failures_without_jitter(
    strategy: Strategy, initial: float, multiplier: float, maximum: float, failures: int
) -> None:
    def at(n: int) -> float:
        return delay_seconds(
            strategy=strategy,
            initial=initial,
            multiplier=multiplier,
            maximum=maximum,
            jitter=0,
            failures=n,
        )

    assert at(failures) <= at(failures + 1)


@given(
    strategy=strategies,
    initial=initials,
    multiplier=multipliers,
    maximum=maximums,
    jitter=jitters,
    failures=failure_counts,
    draw=draws,
)
def test_jitter_stays_within_its_spread_of_the_plain_delay(
    *,
    strategy: Strategy,
    initial: float,
    multiplier: float,
    maximum: float,
    jitter: float,
    failures: int,
    draw: float,
) -> None:
    arguments = {
        "strategy": strategy,
        "initial": initial,
        "multiplier": multiplier,
        "maximum": maximum,
        "failures": failures,
    }
    plain = delay_seconds(jitter=0, **arguments)  # type: ignore[arg-type]
    jittered = delay_seconds(jitter=jitter, random=lambda: draw, **arguments)  # type: ignore[arg-type]
    slack = 1e-9 * max(plain, 1)
    assert jittered >= 0
    assert plain * (1 - jitter) - slack <= jittered <= plain * (1 + jitter) + slack
    assert jittered <= maximum * (1 + jitter) + slack


def test_injected_random_gives_exact_values() -> None:
    assert exponential(4, jitter=0.5, draw=0.0) == 4.0
    assert exponential(4, jitter=0.5, draw=0.5) == 8.0
    assert exponential(4, jitter=0.5, draw=0.75) == 10.0
    assert exponential(4, jitter=0.25, draw=0.25) == 7.0


def test_jitter_spreads_capped_delays() -> None:
    assert exponential(50, jitter=0.1, draw=0.0) == pytest.approx(3240)
    assert exponential(50, jitter=0.1, draw=0.5) == 3600
    assert exponential(50, jitter=0.1, draw=0.999999) == pytest.approx(3960, rel=1e-6)


def test_full_jitter_never_goes_negative() -> None:
    assert exponential(3, jitter=1.0, draw=0.0) == 0.0


def test_random_is_not_drawn_without_jitter() -> None:
    def forbidden() -> float:
        raise AssertionError("random() was called")

    assert exponential(3, jitter=0.0, draw=0.0) == 4
    delay = delay_seconds(
        strategy="Exponential",
        initial=1,
        multiplier=2,
        maximum=60,
        jitter=0,
        failures=3,
        random=forbidden,
    )
    assert delay == 4


@pytest.mark.parametrize("failures", [1_100, 10**6, 10**18, 10**400])
def test_huge_failure_counts_do_not_overflow(failures: int) -> None:
    delay = delay_seconds(
        strategy="Exponential",
        initial=1,
        multiplier=100,
        maximum=604_800,
        jitter=0,
        failures=failures,
    )
    assert delay == 604_800


def test_tiny_initial_with_a_huge_power_does_not_overflow() -> None:
    delay = delay_seconds(
        strategy="Exponential",
        initial=1e-300,
        multiplier=10,
        maximum=1e300,
        jitter=0,
        failures=591,
    )
    assert math.isfinite(delay)
    assert delay == pytest.approx(1e290, rel=1e-9)


def test_multiplier_one_is_constant() -> None:
    delays = {
        delay_seconds(
            strategy="Exponential", initial=3, multiplier=1, maximum=10, jitter=0, failures=n
        )
        for n in (1, 2, 100, sys.maxsize)
    }
    assert delays == {3}


def test_zero_initial_or_zero_maximum_waits_nothing() -> None:
    for initial, maximum in ((0, 10), (5, 0)):
        delay = delay_seconds(
            strategy="Exponential",
            initial=initial,
            multiplier=2,
            maximum=maximum,
            jitter=0.5,
            failures=10,
            random=lambda: 0.9,
        )
        assert delay == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"failures": 0}, "failures"),
        ({"initial": -1.0}, "initial"),
        ({"initial": math.inf}, "initial"),
        ({"maximum": math.nan}, "maximum"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": 1.5}, "jitter"),
        ({"jitter": math.nan}, "jitter"),
        ({"strategy": "Linear"}, "strategy"),
        ({"random": lambda: 1.5}, "random"),
    ],
)
def test_invalid_arguments_are_refused(overrides: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "strategy": "Exponential",
        "initial": 1.0,
        "multiplier": 2.0,
        "maximum": 60.0,
        "jitter": 0.5,
        "failures": 3,
        "random": lambda: 0.5,
    }
    arguments.update(overrides)
    with pytest.raises(ValueError, match=message):
        delay_seconds(**arguments)  # type: ignore[arg-type]


def test_delay_for_reads_the_api_model() -> None:
    backoff = Backoff.model_validate(
        {
            "strategy": "Exponential",
            "initialDelaySeconds": 2,
            "multiplier": 3,
            "maxDelaySeconds": 100,
            "jitter": 0.5,
        }
    )
    assert [delay_for(backoff, n, random=lambda: 0.5) for n in range(1, 6)] == [
        2,
        6,
        18,
        54,
        100,
    ]
    assert delay_for(backoff, 2, random=lambda: 0.0) == 3


def test_delay_for_uses_the_api_defaults() -> None:
    backoff = Backoff()
    assert [delay_for(backoff, n) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert delay_for(backoff, 100) == 3600
    fixed = Backoff(strategy="Fixed", initial_delay_seconds=30)
    assert {delay_for(fixed, n) for n in (1, 5, 500)} == {30}
