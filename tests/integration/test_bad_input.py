"""Bad input, catalogued: every malformed manifest is refused at apply naming its field, or
accepted and flagged at once with a condition that says why; the operator goes on.

Each case is applied the way a user applies it (`kubectl apply`, which validates
fields strictly), to the real API server, in one namespace the test operator
watches. A case is either `refused` (kubectl fails, and its message contains the
given text, which names the field) or `flagged` (accepted, and the job soon has
the given condition, True, whose message contains the given text). At the end a
good job still runs, and the operator logged no traceback meanwhile.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.cluster.fixtures import BUSYBOX_IMAGE, KubeCluster, fresh_namespace
from tests.cluster.fixtures import TEST_PREFIX as PREFIX
from tests.integration.conftest import Jobs, OperatorProcess, condition

pytestmark = pytest.mark.cluster

MIB = 1024 * 1024
CONTAINER = {"name": "worker", "image": BUSYBOX_IMAGE, "command": ["true"]}


@dataclass(frozen=True)
class Case:
    name: str
    body: dict[str, Any]
    refused: str | None = None
    """kubectl's error names this (the field)."""
    flagged: tuple[str, str] | None = None
    """(condition type, text of its message): accepted, and flagged so."""
    also: list[dict[str, Any]] = field(default_factory=list)
    """Objects applied first (a dependency cycle's other half, a queue elsewhere)."""


def job(name: str, **spec: Any) -> dict[str, Any]:
    body_spec: dict[str, Any] = {"template": {"spec": {"containers": [dict(CONTAINER)]}}}
    body_spec.update(spec)
    return {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {"name": name},
        "spec": body_spec,
    }


def with_container(job_name: str, **fields: Any) -> dict[str, Any]:
    """A job whose one container has these fields."""
    return job(job_name, template={"spec": {"containers": [{**CONTAINER, **fields}]}})


def queue(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "JobQueue",
        "metadata": {"name": name},
        "spec": spec,
    }


def backoff(**fields: Any) -> dict[str, Any]:
    return {"backoff": {"strategy": "Exponential", "initialDelaySeconds": 1, **fields}}


def with_metadata(body: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["metadata"].update(metadata)
    return body


def without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    node = body
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body


CASES = [
    # ------------------------------------------------------------ types, ranges, enums
    Case("priority-word", job("priority-word", priority="high"), refused="spec.priority"),
    Case("priority-huge", job("priority-huge", priority=2_000_000_000), refused="spec.priority"),
    Case("queue-upper", job("queue-upper", queue="Email"), refused="spec.queue"),
    Case("queue-long", job("queue-long", queue="q" * 64), refused="spec.queue"),
    Case("queue-1mib", job("queue-1mib", queue="q" * MIB), refused="spec.queue"),
    Case("queue-path", job("queue-path", queue="other/email"), refused="spec.queue"),
    Case(
        "attempts-zero",
        job("attempts-zero", retry={"maxAttempts": 0}),
        refused="spec.retry.maxAttempts",
    ),
    Case(
        "attempts-word",
        job("attempts-word", retry={"maxAttempts": "five"}),
        refused="spec.retry.maxAttempts",
    ),
    Case(
        "strategy-linear",
        job("strategy-linear", retry={"backoff": {"strategy": "Linear"}}),
        refused="spec.retry.backoff.strategy",
    ),
    Case(
        "jitter-two",
        job("jitter-two", retry=backoff(jitter=2)),
        refused="spec.retry.backoff.jitter",
    ),
    Case(
        "delay-negative",
        job("delay-negative", retry=backoff(initialDelaySeconds=-1)),
        refused="spec.retry.backoff.initialDelaySeconds",
    ),
    Case(
        "max-below-initial",
        job("max-below-initial", retry=backoff(initialDelaySeconds=60, maxDelaySeconds=10)),
        refused="spec.retry.backoff.maxDelaySeconds",
    ),
    Case(
        "multiplier-half",
        job("multiplier-half", retry=backoff(multiplier=0.5)),
        refused="spec.retry.backoff.multiplier",
    ),
    Case(
        "exit-code-word",
        job("exit-code-word", retry={"nonRetryableExitCodes": ["two"]}),
        refused="spec.retry.nonRetryableExitCodes",
    ),
    Case(
        "exit-code-range",
        job("exit-code-range", retry={"nonRetryableExitCodes": [300]}),
        refused="spec.retry.nonRetryableExitCodes",
    ),
    Case(
        "deadline-zero",
        job("deadline-zero", attemptDeadlineSeconds=0),
        refused="spec.attemptDeadlineSeconds",
    ),
    Case(
        "job-deadline-zero",
        job("job-deadline-zero", jobDeadlineSeconds=0),
        refused="spec.jobDeadlineSeconds",
    ),
    Case(
        "both-deadline-names",
        job("both-deadline-names", attemptDeadlineSeconds=5, activeDeadlineSeconds=5),
        refused="spec.activeDeadlineSeconds",
    ),
    Case(
        "start-timeout-zero",
        job("start-timeout-zero", startTimeoutSeconds=0),
        refused="spec.startTimeoutSeconds",
    ),
    Case("start-at-word", job("start-at-word", startAt="tomorrow"), refused="spec.startAt"),
    Case("delay-minus", job("delay-minus", delaySeconds=-5), refused="spec.delaySeconds"),
    Case("suspend-word", job("suspend-word", suspend="yes"), refused="spec.suspend"),
    Case(
        "ttl-negative",
        job("ttl-negative", ttlSecondsAfterFinished=-1),
        refused="spec.ttlSecondsAfterFinished",
    ),
    Case(
        "class-spaces",
        job("class-spaces", priorityClassName="Not Valid"),
        refused="spec.priorityClassName",
    ),
    Case(
        "policy-sometimes",
        job("policy-sometimes", every="1h", concurrencyPolicy="Sometimes"),
        refused="spec.concurrencyPolicy",
    ),
    Case(
        "missed-never",
        job("missed-never", every="1h", missedRunsPolicy="Never"),
        refused="spec.missedRunsPolicy",
    ),
    Case(
        "history-negative",
        job("history-negative", every="1h", successfulRunsHistoryLimit=-1),
        refused="spec.successfulRunsHistoryLimit",
    ),
    Case("every-word", job("every-word", every="soon"), refused="spec.every"),
    Case("every-zero", job("every-zero", every="0s"), refused="spec.every"),
    # ------------------------------------------------------------ exclusive fields
    Case(
        "start-at-and-delay",
        job("start-at-and-delay", startAt="2030-01-01T00:00:00Z", delaySeconds=5),
        refused="spec.delaySeconds",
    ),
    Case(
        "schedule-and-every",
        job("schedule-and-every", schedule="@hourly", every="1h"),
        refused="spec.every",
    ),
    Case(
        "schedule-and-start-at",
        job("schedule-and-start-at", schedule="@hourly", startAt="2030-01-01T00:00:00Z"),
        refused="spec.startAt",
    ),
    Case(
        "every-and-delay",
        job("every-and-delay", every="1h", delaySeconds=5),
        refused="spec.delaySeconds",
    ),
    Case(
        "zone-without-schedule",
        job("zone-without-schedule", every="1h", timeZone="Europe/Berlin"),
        refused="spec.timeZone",
    ),
    # ------------------------------------------------------------ names, shapes, sizes
    Case("name-too-long", job("n" * 53), refused="metadata.name"),
    Case("name-non-ascii", job("jöb"), refused="metadata.name"),
    Case(
        "annotation-300kib",
        with_metadata(job("annotation-300kib"), annotations={"big": "x" * (300 * 1024)}),
        refused="metadata.annotations",
    ),
    Case("no-template", without(job("no-template"), "spec", "template"), refused="spec.template"),
    Case(
        "no-containers",
        job("no-containers", template={"spec": {}}),
        refused="spec.template.spec.containers",
    ),
    Case(
        "empty-containers",
        job("empty-containers", template={"spec": {"containers": []}}),
        refused="spec.template.spec.containers",
    ),
    Case(
        "restart-on-failure",
        job(
            "restart-on-failure",
            template={"spec": {"containers": [CONTAINER], "restartPolicy": "OnFailure"}},
        ),
        refused="spec.template.spec.restartPolicy",
    ),
    Case(
        "container-name-long",
        with_container("container-name-long", name="c" * 64),
        refused="spec.template.spec.containers[0].name",
    ),
    Case("unknown-field", job("unknown-field", retires={"maxAttempts": 3}), refused="retires"),
    # ------------------------------------------------------------ dependencies
    Case("depends-self", job("depends-self", dependsOn=["depends-self"]), refused="spec.dependsOn"),
    Case("depends-bad-name", job("depends-bad-name", dependsOn=["Bad_Name"]), refused="dependsOn"),
    Case(
        "depends-cycle",
        job("depends-cycle", dependsOn=["cycle-other"]),
        flagged=("Blocked", "cycle"),
        also=[job("cycle-other", dependsOn=["depends-cycle"])],
    ),
    Case(
        "depends-missing",
        job("depends-missing", dependsOn=["never-created"]),
        flagged=("Blocked", "never-created"),
    ),
    # ------------------------------------------------------------ the operator's checks
    Case("cron-61", job("cron-61", schedule="61 * * * *"), flagged=("InvalidSpec", "61")),
    Case(
        "cron-hashed",
        job("cron-hashed", schedule="H * * * *"),
        flagged=("InvalidSpec", "H"),
    ),
    Case(
        "zone-mars",
        job("zone-mars", schedule="0 9 * * *", timeZone="Mars/Olympus"),
        flagged=("InvalidSpec", "Mars/Olympus"),
    ),
    Case(
        "queue-elsewhere",
        job("queue-elsewhere", queue="only-elsewhere"),
        flagged=("QueueNotFound", "only-elsewhere"),
    ),
    # ------------------------------------------------------------ pods the API refuses
    Case(
        "cpu-word",
        with_container("cpu-word", resources={"limits": {"cpu": "lots"}}),
        flagged=("InvalidSpec", "quantities must match"),
    ),
    Case(
        "image-empty",
        with_container("image-empty", image=""),
        flagged=("InvalidSpec", "image"),
    ),
    Case(
        "container-upper",
        with_container("container-upper", name="Worker"),
        flagged=("InvalidSpec", "containers[0].name"),
    ),
    Case(
        "template-typo",
        with_container("template-typo", resource={"limits": {"cpu": "1"}}),
        flagged=("InvalidSpec", "resource"),
    ),
    Case(
        "env-string",
        with_container("env-string", env="A=1"),
        flagged=("InvalidSpec", "env must be a list"),
    ),
    Case(
        "mount-without-volume",
        with_container("mount-without-volume", volumeMounts=[{"name": "v", "mountPath": "/v"}]),
        flagged=("InvalidSpec", "volumeMounts"),
    ),
    Case(
        "labels-string",
        job(
            "labels-string",
            template={"metadata": {"labels": "a=b"}, "spec": {"containers": [CONTAINER]}},
        ),
        flagged=("InvalidSpec", "metadata.labels"),
    ),
    Case(
        "ports-word",
        with_container("ports-word", ports="eighty"),
        flagged=("InvalidSpec", "ports"),
    ),
    # ------------------------------------------------------------ JobQueues
    Case("queue-concurrency-minus", queue("q-minus", concurrency=-1), refused="spec.concurrency"),
    Case("queue-concurrency-word", queue("q-word", concurrency="two"), refused="spec.concurrency"),
    Case("queue-rate-zero", queue("q-rate", rateLimit={"max": 0}), refused="spec.rateLimit.max"),
    Case(
        "queue-rate-no-max",
        queue("q-rate-no-max", rateLimit={"periodSeconds": 5}),
        refused="spec.rateLimit.max",
    ),
    Case(
        "queue-period-zero",
        queue("q-period", rateLimit={"max": 1, "periodSeconds": 0}),
        refused="spec.rateLimit.periodSeconds",
    ),
    Case("queue-paused-word", queue("q-paused", paused="no"), refused="spec.paused"),
    Case(
        "queue-defaults-attempts",
        queue("q-defaults", defaults={"retry": {"maxAttempts": 0}}),
        refused="spec.defaults.retry.maxAttempts",
    ),
    Case(
        "queue-defaults-class",
        queue("q-class", defaults={"priorityClassName": "Bad Name"}),
        refused="spec.defaults.priorityClassName",
    ),
    Case("queue-unknown-field", queue("q-typo", concurency=3), refused="concurency"),
    Case("queue-name-upper", queue("Q_1"), refused="metadata.name"),
]


@pytest.fixture(scope="module")
def catalogue(
    kube_cluster: KubeCluster, conveyor_operator: OperatorProcess
) -> Iterator[tuple[Jobs, int]]:
    """One namespace for the whole catalogue, and where the operator's log was at its start."""
    name = f"{PREFIX}bad-input-{uuid.uuid4().hex[:6]}"
    with fresh_namespace(kube_cluster, name) as namespace:
        yield Jobs(kube_cluster, namespace), conveyor_operator.log_path.stat().st_size


def apply(cluster: KubeCluster, namespace: str, body: dict[str, Any]) -> Any:
    return cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(body), check=False, timeout=60
    )


def test_the_catalogue_has_fifty_cases_of_both_kinds() -> None:
    kinds = {c.body["kind"] for c in CASES}
    assert len(CASES) >= 50 and kinds == {"BackgroundJob", "JobQueue"}
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_refused_naming_its_field_or_flagged_at_once(
    catalogue: tuple[Jobs, int], kube_cluster: KubeCluster, case: Case
) -> None:
    jobs, _ = catalogue
    for other in case.also:
        assert apply(kube_cluster, jobs.namespace, other).returncode == 0
    applied = apply(kube_cluster, jobs.namespace, case.body)
    if case.refused is not None:
        assert applied.returncode != 0, f"{case.name} was accepted: {applied.stdout}"
        assert case.refused in applied.stderr, applied.stderr[:2000]
        return
    assert case.flagged is not None
    assert applied.returncode == 0, applied.stderr[:2000]
    kind, text = case.flagged
    status = jobs.wait(
        case.body["metadata"]["name"],
        lambda s: (c := condition(s, kind)) is not None and c["status"] == "True",
        timeout=30,
        desc=f"condition {kind}",
    )
    message = condition(status, kind)["message"]  # type: ignore[index]
    assert text in message, message
    assert jobs.pods(case.body["metadata"]["name"]) == []


def test_after_all_that_a_good_job_runs_and_nothing_crashed(
    catalogue: tuple[Jobs, int], conveyor_operator: OperatorProcess
) -> None:
    """Run last in this module: the operator is alive, a good job succeeds, and the operator
    logged no traceback since the catalogue began."""
    jobs, log_start = catalogue
    jobs.create("good-after-all", "echo fine")
    jobs.wait_phase("good-after-all", "Succeeded", timeout=60)
    conveyor_operator.check()
    with conveyor_operator.log_path.open("rb") as log:
        log.seek(log_start)
        since = log.read().decode(errors="replace")
    assert "Traceback" not in since, since[since.index("Traceback") - 2000 :][:6000]


RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def test_a_namespace_enforcing_restricted_fails_a_privileged_job_and_runs_a_compliant_one(
    kube_cluster: KubeCluster, conveyor_operator: OperatorProcess
) -> None:
    """PodSecurity `restricted` refuses the privileged job's pod (403): the job fails at once
    with PodForbidden and the policy's message, instead of waiting; a compliant job runs."""
    name = f"{PREFIX}restricted-{uuid.uuid4().hex[:6]}"
    with fresh_namespace(kube_cluster, name) as namespace:
        kube_cluster.kubectl(
            "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
        )
        jobs = Jobs(kube_cluster, namespace)
        apply(kube_cluster, namespace, with_container("root", securityContext={"privileged": True}))
        status = jobs.wait_phase("root", "Failed", timeout=60)
        failed = condition(status, "Failed")
        assert failed is not None and failed["reason"] == "PodForbidden"
        assert "violates PodSecurity" in failed["message"]
        assert status.get("attempts", 0) == 0 and jobs.pods("root") == []
        compliant = with_container("compliant", securityContext=RESTRICTED)
        assert apply(kube_cluster, namespace, compliant).returncode == 0
        jobs.wait_phase("compliant", "Succeeded", timeout=60)


def test_a_job_cannot_read_another_namespaces_secret(
    kube_cluster: KubeCluster, conveyor_operator: OperatorProcess
) -> None:
    """A job names a Secret that exists only in another namespace: its pod is created in the
    job's own namespace, where that Secret is not, so it never starts; the attempt fails
    with the kubelet's reason once its start timeout passes, and nothing of the Secret
    reaches the job's namespace."""
    suffix = uuid.uuid4().hex[:6]
    with (
        fresh_namespace(kube_cluster, f"{PREFIX}owner-{suffix}") as owner,
        fresh_namespace(kube_cluster, f"{PREFIX}thief-{suffix}") as thief,
    ):
        kube_cluster.kubectl(
            "create", "secret", "generic", "token", "-n", owner, "--from-literal=key=s3cret"
        )
        jobs = Jobs(kube_cluster, thief)
        reader = {
            **CONTAINER,
            "command": ["sh", "-c", "echo $KEY"],
            "env": [
                {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "token", "key": "key"}}}
            ],
        }
        body = job(
            "reader",
            template={"spec": {"containers": [reader]}},
            retry={"maxAttempts": 1},
            startTimeoutSeconds=10,
        )
        assert apply(kube_cluster, thief, body).returncode == 0
        status = jobs.wait_phase("reader", "Failed", timeout=90)
        assert status["lastFailure"]["reason"] == "CreateContainerConfigError", status
        assert 'secret "token" not found' in status["lastFailure"]["message"]
        assert [p.metadata.namespace for p in jobs.pods("reader")] == [thief]
        secrets = kube_cluster.core.list_namespaced_secret(thief).items
        assert [s.metadata.name for s in secrets] == []
