"""How a job's failed attempts are tried again: the number of attempts and the backoff."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from conveyor.api.v1alpha1.base import ApiModel, cel


class Backoff(ApiModel):
    """How long to wait before the next attempt after a failed one."""

    strategy: Literal["Exponential", "Fixed"] = Field(
        "Exponential",
        description=(
            "Exponential: initialDelaySeconds * multiplier^(n-1) after the n-th failure, "
            "capped at maxDelaySeconds. Fixed: initialDelaySeconds after every failure."
        ),
    )
    initial_delay_seconds: float = Field(
        1,
        ge=0,
        le=86400,
        description="The delay after the first failure, in seconds.",
    )
    multiplier: float = Field(
        2,
        ge=1,
        le=100,
        description="Growth factor of each further delay (Exponential only).",
    )
    max_delay_seconds: float = Field(
        3600,
        ge=0,
        le=604800,
        description="The longest delay, in seconds; must not be less than initialDelaySeconds.",
    )
    jitter: float = Field(
        0,
        ge=0,
        le=1,
        description=(
            "Random spread of each delay, as a fraction: 0.1 makes a 10s delay anything "
            "from 9s to 11s, so that many jobs failing together do not retry together."
        ),
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.maxDelaySeconds >= self.initialDelaySeconds",
                    "maxDelaySeconds must be greater than or equal to initialDelaySeconds",
                    ".maxDelaySeconds",
                )
            ]
        }
    )


class RetryPolicy(ApiModel):
    """When and how a failed attempt is tried again. Unset fields come from the
    queue's defaults, else from the built-in ones (5 attempts, exponential from 1s)."""

    max_attempts: int | None = Field(
        None,
        examples=[5],
        ge=1,
        le=1000,
        description=(
            "Attempts in all, the first included. Failures that are not the job's fault "
            "(pod evicted, preempted, deleted, node lost) do not count."
        ),
    )
    backoff: Backoff | None = Field(None, description="The delay between attempts.")
    non_retryable_exit_codes: list[Annotated[int, Field(ge=1, le=255)]] | None = Field(
        None,
        examples=[[2]],
        max_length=64,
        description=(
            "Exit codes that mean the job itself decided to fail: the job fails at once, "
            "with no further attempt."
        ),
    )
    max_disruptions: int | None = Field(
        None,
        examples=[10],
        ge=0,
        le=1000,
        description=(
            "How many times an attempt may be lost to causes that are not the job's fault "
            "(eviction, preemption, deletion, node loss) before the job fails anyway. "
            "Default 10."
        ),
    )
