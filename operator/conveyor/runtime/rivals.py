"""Other Conveyor operators acting in our namespaces: seen, and reported loudly.

Two releases watching one namespace (or a rolling update without leader
election) each run an admitter for the same queues. Deterministic pod names
keep them from running an attempt twice (the second create is a 409), but
nothing keeps their two admitters within one quota, and neither can prevent
the other. So the operator makes it impossible to miss.

Every pod the operator creates carries its identity in the annotation
`conveyor.dev/operator`: its release, which all its replicas share, so that
a takeover by a follower is not a rival. A pod that appears with another
identity, after this operator has listed, was created by another operator
acting here now. For each (namespace, other operator), at most once every
`REPORT_EVERY`: a Warning event on the job whose pod it was, and a log line.
While another operator was seen in a namespace within `ACTIVE_FOR`, the
queues of that namespace show the condition `OperatorConflict`, and every
foreign pod counts in `conveyor_foreign_pods_total`.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from conveyor.core import decisions
from conveyor.runtime import metrics

log = logging.getLogger(__name__)

REPORT_EVERY = datetime.timedelta(minutes=10)
ACTIVE_FOR = datetime.timedelta(minutes=10)
CONDITION = "OperatorConflict"


class Rivals:
    def __init__(self, identity: str, *, clock: Callable[[], datetime.datetime]) -> None:
        self.identity = identity
        self._clock = clock
        self._seen: dict[tuple[str, str], datetime.datetime] = {}
        self._reported: dict[tuple[str, str], datetime.datetime] = {}

    def saw_pod(self, namespace: str, creator: str | None) -> decisions.Event | None:
        """A pod newly seen in `namespace`, created by `creator`. Returns the event to post
        about its job if another operator made it and was not reported lately."""
        if not creator or creator == self.identity:
            return None
        now = self._clock()
        key = (namespace, creator)
        self._seen[key] = now
        metrics.FOREIGN_PODS.labels(namespace).inc()
        last = self._reported.get(key)
        if last is not None and now - last < REPORT_EVERY:
            return None
        self._reported[key] = now
        message = (
            f"another Conveyor operator ({creator}) creates pods in namespace {namespace}, "
            f"where this one ({self.identity}) acts too: their queues' concurrency and rate "
            "limits cannot hold. Uninstall one, or give them disjoint watchNamespaces."
        )
        log.warning("%s", message)
        return decisions.Event("Warning", "AnotherOperator", message)

    def active(self, namespace: str) -> list[str]:
        """The other operators seen acting in `namespace` within ACTIVE_FOR, by name."""
        since = self._clock() - ACTIVE_FOR
        return sorted(who for (ns, who), at in self._seen.items() if ns == namespace and at > since)

    def until(self, namespace: str) -> datetime.datetime | None:
        """When the last sighting in `namespace` stops counting as active."""
        times = [at for (ns, _), at in self._seen.items() if ns == namespace]
        return max(times) + ACTIVE_FOR if times else None
