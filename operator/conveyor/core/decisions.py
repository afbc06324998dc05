"""What the job's state machine reads and what it decides: the vocabulary around `step`.

`lifecycle.step` takes a `JobView` (the job as last written) and its
`Surroundings` (its pods, its queue, its dependencies, whether it may start),
and returns a `Decision`: the status to write, the `Action`s for the runtime to
carry out, the `Event`s to post and when to look again. The runtime builds
the inputs and carries out the outputs; the recurring jobs' rules and the
event recorder speak the same words. They live apart from the rules so that
each part of the state machine, and each reader of its decisions, can name
them without importing the rules.
"""

from __future__ import annotations

import datetime
import random as random_module
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from conveyor.api.v1alpha1 import BackgroundJobSpec, BackgroundJobStatus, Phase
from conveyor.core import outcome
from conveyor.core.effective import Effective

TERMINAL: frozenset[str] = frozenset({"Succeeded", "Failed"})

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class JobView:
    """The parts of a BackgroundJob object the lifecycle reads."""

    name: str
    namespace: str
    generation: int | None
    created_at: datetime.datetime
    spec: BackgroundJobSpec
    status: BackgroundJobStatus
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Surroundings:
    """What the job's neighbours look like, as the runtime last saw them."""

    now: datetime.datetime
    effective: Effective | None
    invalid: str | None = None
    """Why the operator cannot act on this spec, for the user to fix; None when valid."""
    queue_exists: bool = True
    dependencies: Mapping[str, str | None] = field(default_factory=dict)
    """dependsOn name → its phase ('' when it has none yet), None when it does not exist."""
    dependency_cycle: Sequence[str] | None = None
    pods: Mapping[int, outcome.PodView] = field(default_factory=dict)
    admit: bool = False
    """The queue admits this job now: start the next attempt if it is ready."""
    random: Callable[[], float] = random_module.random


@dataclass(frozen=True)
class CreatePod:
    attempt: int


@dataclass(frozen=True)
class DeletePod:
    name: str


@dataclass(frozen=True)
class DeleteJob:
    pass


Action = CreatePod | DeletePod | DeleteJob


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status: BackgroundJobStatus
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    wake_at: datetime.datetime | None = None
    wants_admission: bool = False


def is_terminal(phase: Phase | str | None) -> bool:
    return phase in TERMINAL
