"""The wait before the next attempt of a job whose previous attempt failed.

Design notes:

* The delay is a function of the number of *counted* failures only. Which
  failures count (an evicted pod does not, a non-zero exit does) is decided
  elsewhere; keeping this module ignorant of it makes the arithmetic testable on
  its own and the same for every caller.

* The cap is applied before jitter. Were it applied after, every job that has
  failed often enough would wait exactly `maximum` seconds, and a burst of jobs
  failing together (a database outage, say) would keep retrying in lockstep
  forever, which is what jitter exists to prevent. So the un-jittered delay is
  never above `maximum`, and the jittered one never above
  `maximum * (1 + jitter)`; the CRD's description of `jitter` ("0.1 makes a 10s
  delay anything from 9s to 11s") promises exactly that spread.

* The cap applies to both strategies. For `Fixed` it changes nothing on objects
  the API server accepted (a CEL rule keeps `maxDelaySeconds >=
  initialDelaySeconds`), but it keeps "never above `maximum`" true for every
  input rather than most.

* A job can fail a great many times (`maxAttempts` is bounded, but a caller may
  pass anything), and `multiplier ** failures` overflows a float long before
  that. Whether the delay has reached the cap is therefore decided on
  logarithms first; the power is only computed when its result is below the cap,
  so it cannot overflow, and small counts stay exact (1, 2, 4, 8, 16 rather than
  7.999999).

* Randomness is injected so that tests can pin it, and it is drawn only when
  `jitter > 0`, so a caller without jitter consumes no random numbers at all.
  Jitter scales the delay by a factor uniform in [1 - jitter, 1 + jitter]; with
  `jitter <= 1` that factor is never negative, so neither is the delay.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable
from typing import Literal

from conveyor.api.v1alpha1 import Backoff

__all__ = ["delay_for", "delay_seconds"]


def delay_seconds(
    *,
    strategy: Literal["Exponential", "Fixed"],
    initial: float,
    multiplier: float,
    maximum: float,
    jitter: float,
    failures: int,
    random: Callable[[], float] = _random.random,
) -> float:
    """Seconds to wait after the `failures`-th counted failure (the first is 1).

    Fixed waits `initial`; Exponential waits `initial * multiplier**(failures-1)`.
    Either is capped at `maximum`, then spread by a factor uniform in
    [1 - jitter, 1 + jitter] drawn from `random()` (a float in [0, 1)). The
    result lies in [0, maximum * (1 + jitter)].

    Raises ValueError for arguments outside their domain: `failures < 1`,
    negative or non-finite delays, `multiplier < 1`, `jitter` outside [0, 1], or
    a `random()` that returned something outside [0, 1].
    """
    if failures < 1:
        raise ValueError(f"failures must be at least 1, got {failures}")
    for name, value in (("initial", initial), ("maximum", maximum)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    if not (math.isfinite(multiplier) and multiplier >= 1):
        raise ValueError(f"multiplier must be a finite number >= 1, got {multiplier}")
    if not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be within [0, 1], got {jitter}")

    if strategy == "Fixed":
        base = min(initial, maximum)
    elif strategy == "Exponential":
        base = _capped_exponential(initial, multiplier, maximum, failures - 1)
    else:
        raise ValueError(f"unknown backoff strategy {strategy!r}")

    if jitter == 0:
        return base
    draw = random()
    if not 0 <= draw <= 1:
        raise ValueError(f"random() must return a number within [0, 1), got {draw}")
    return base * (1 - jitter + 2 * jitter * draw)


def _capped_exponential(initial: float, multiplier: float, maximum: float, steps: int) -> float:
    if initial == 0 or maximum == 0:
        return 0.0
    if steps == 0 or multiplier == 1:
        return min(initial, maximum)
    # An int past 2**1000 cannot become a float; that many steps are past any cap anyway.
    log_delay = math.log(initial) + min(steps, 1 << 1000) * math.log(multiplier)
    if log_delay >= math.log(maximum):
        return maximum
    try:
        grown = initial * multiplier**steps
    except OverflowError:
        # The power alone overflows although the product does not (a tiny `initial`).
        grown = math.exp(log_delay)
    # min() absorbs the logarithms' rounding right at the cap.
    return min(grown, maximum)


def delay_for(
    backoff: Backoff,
    failures: int,
    random: Callable[[], float] = _random.random,
) -> float:
    """`delay_seconds` for a `Backoff` from the API (defaults already applied)."""
    return delay_seconds(
        strategy=backoff.strategy,
        initial=backoff.initial_delay_seconds,
        multiplier=backoff.multiplier,
        maximum=backoff.max_delay_seconds,
        jitter=backoff.jitter,
        failures=failures,
        random=random,
    )
