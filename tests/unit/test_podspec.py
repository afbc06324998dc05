"""podspec.render_pod: the pod of one attempt, named, labelled, owned and configured."""

from __future__ import annotations

from conveyor.api.v1alpha1 import API_VERSION, JobDefaults
from conveyor.core import naming
from conveyor.core.podspec import render_pod
from tests.unit.factories import JOB, NAMESPACE, QUEUE, at, effective, job, spec

UID = "0b7c6a1e-1111-2222-3333-444455556666"

TEMPLATE = {
    "metadata": {"labels": {"app": "mailer", "tier": 2}, "annotations": {"team": "shop"}},
    "spec": {
        "containers": [
            {
                "name": "worker",
                "image": "registry.example/mailer:1.4",
                "command": ["send-email", "--order", "123"],
                "env": [
                    {"name": "MODE", "value": "fast"},
                    {"name": "CONVEYOR_ATTEMPT", "value": "spoofed"},
                    {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                ],
            },
            {"name": "sidecar", "image": "busybox:1.36"},
        ],
        "nodeSelector": {"disk": "ssd"},
        "priorityClassName": "from-template",
    },
}


def render(attempt: int = 3, *, defaults: JobDefaults | None = None, **fields):
    job_spec = spec(template=TEMPLATE, **fields)
    view = job(job_spec)
    return render_pod(
        view, uid=UID, attempt=attempt, effective=effective(job_spec, defaults), now=at(0)
    )


def env_of(container) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_name_and_namespace():
    """The pod is named <job>-<attempt> in the job's namespace."""
    pod = render(3)
    assert pod["apiVersion"] == "v1"
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["name"] == f"{JOB}-3" == naming.pod_name(JOB, 3)
    assert pod["metadata"]["namespace"] == NAMESPACE


def test_labels_and_annotations():
    """Our labels (job, queue, attempt, managed-by) join the template's; values are strings."""
    meta = render(3)["metadata"]
    assert meta["labels"] == {
        "app": "mailer",
        "tier": "2",
        naming.LABEL_JOB: JOB,
        naming.LABEL_QUEUE: QUEUE,
        naming.LABEL_ATTEMPT: "3",
        naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
    }
    assert meta["annotations"]["team"] == "shop"
    assert meta["annotations"][naming.ANNOTATION_CREATED_AT] == "2026-03-01T12:00:00.000Z"


def test_job_without_queue_gets_the_empty_queue_label():
    """A job with no queue is labelled with the no-queue key."""
    assert render(queue=None)["metadata"]["labels"][naming.LABEL_QUEUE] == naming.NO_QUEUE


def test_owner_reference():
    """The job owns its pod as controller, so deleting the job deletes the pod."""
    (owner,) = render()["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": API_VERSION,
        "kind": "BackgroundJob",
        "name": JOB,
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_restart_policy_never_even_when_unset():
    """restartPolicy is Never whether the template leaves it unset or says Never."""
    assert render()["spec"]["restartPolicy"] == "Never"
    never = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "restartPolicy": "Never"}}
    job_spec = spec(template=never)
    pod = render_pod(job(job_spec), uid=UID, attempt=1, effective=effective(job_spec), now=at(0))
    assert pod["spec"]["restartPolicy"] == "Never"


def test_env_added_to_every_container_and_user_env_kept():
    """Every container gets CONVEYOR_* (ours win over same-named ones); other env is kept."""
    pod = render(3, retry={"maxAttempts": 4})
    for container in pod["spec"]["containers"]:
        env = env_of(container)
        assert env["CONVEYOR_JOB_NAME"] == JOB
        assert env["CONVEYOR_NAMESPACE"] == NAMESPACE
        assert env["CONVEYOR_ATTEMPT"] == "3"
        assert env["CONVEYOR_MAX_ATTEMPTS"] == "4"
        assert env["CONVEYOR_QUEUE"] == QUEUE
        names = [e["name"] for e in container["env"]]
        assert len(names) == len(set(names))
    worker = env_of(pod["spec"]["containers"][0])
    assert worker["MODE"] == "fast"
    assert worker["SECRET"] == {"secretKeyRef": {"name": "s", "key": "k"}}


def test_template_fields_pass_through():
    """Fields Conveyor does not model (command, nodeSelector) reach the pod unchanged."""
    pod = render()
    assert pod["spec"]["nodeSelector"] == {"disk": "ssd"}
    assert pod["spec"]["containers"][0]["command"] == ["send-email", "--order", "123"]
    assert pod["spec"]["containers"][0]["image"] == "registry.example/mailer:1.4"


def test_deadline_and_priority_class_from_effective():
    """activeDeadlineSeconds and priorityClassName come from the effective settings."""
    pod = render(activeDeadlineSeconds=600, priorityClassName="high")
    assert pod["spec"]["activeDeadlineSeconds"] == 600
    assert pod["spec"]["priorityClassName"] == "high"


def test_deadline_and_priority_class_from_queue_defaults():
    """Unset on the job, they come from the queue's defaults."""
    defaults = JobDefaults(active_deadline_seconds=60, priority_class_name="normal")
    pod = render(defaults=defaults)
    assert pod["spec"]["activeDeadlineSeconds"] == 60
    assert pod["spec"]["priorityClassName"] == "normal"


def test_unset_deadline_and_priority_class():
    """With no effective deadline the pod has none; the template's priorityClassName stays."""
    pod = render()
    assert "activeDeadlineSeconds" not in pod["spec"]
    assert pod["spec"]["priorityClassName"] == "from-template"


def test_render_is_pure():
    """Rendering twice gives the same pod and leaves the job's template untouched."""
    job_spec = spec(template=TEMPLATE)
    view = job(job_spec)
    before = job_spec.model_dump()
    first = render_pod(view, uid=UID, attempt=1, effective=effective(job_spec), now=at(0))
    second = render_pod(view, uid=UID, attempt=1, effective=effective(job_spec), now=at(0))
    assert first == second
    assert job_spec.model_dump() == before


def test_init_containers_learn_the_attempt_too():
    """An init container (a migration, a lock) sees the same CONVEYOR_* environment."""
    template = {
        "spec": {
            "initContainers": [{"name": "prepare", "image": "busybox:1.36"}],
            "containers": [{"name": "worker", "image": "busybox:1.36"}],
        }
    }
    job_spec = spec(template=template)
    pod = render_pod(job(job_spec), uid=UID, attempt=2, effective=effective(job_spec), now=at(0))
    (init,) = pod["spec"]["initContainers"]
    assert env_of(init)["CONVEYOR_ATTEMPT"] == "2"
    assert env_of(init)["CONVEYOR_JOB_NAME"] == JOB
