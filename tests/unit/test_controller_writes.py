"""What the controller writes, and what it does not: echoes, refusals, TTLs, events in order."""

from __future__ import annotations

from conveyor.runtime import kube_errors
from conveyor.runtime.cache import Resource
from tests.unit.world import NAMESPACE, World, scenario


@scenario
async def test_the_echo_of_its_own_write_is_not_reconciled(world: World) -> None:
    """A job in a paused queue is looked at once (new: its queue's pass says it waits, and
    Queued is written); the watch event of that write is not a second look. A user's
    change is."""
    world.queue("held", paused=True)
    world.job("waits", queue="held")
    await world.start()
    await world.advance(1)
    assert world.phase("waits") == "Queued"
    assert world.reconciles == ["waits"]
    world.update_job("waits", priority=5)
    await world.settle()
    assert world.reconciles == ["waits", "waits"]


@scenario
async def test_a_refused_pod_becomes_invalid_spec_and_frees_the_slot(world: World) -> None:
    """The API server refuses the pod (422): InvalidSpec with its message and a Warning event,
    no attempt counted, and the next job of the queue gets the slot."""
    world.queue("q", concurrency=1)
    world.api.fail(
        "create_pod",
        kube_errors.ApiError(
            422, 'Pod "bad-1" is invalid: spec.containers[0].image: Required value'
        ),
        when=lambda _namespace, name: name == "bad-1",
    )
    world.job("bad", queue="q")
    await world.advance(1)
    world.job("good", queue="q")
    await world.start()
    await world.advance(1)
    condition = world.condition("bad", "InvalidSpec")
    assert condition is not None and condition["status"] == "True"
    assert "image: Required value" in condition["message"]
    assert world.status("bad").get("attempts", 0) == 0
    assert "InvalidSpec" in world.event_reasons("bad")
    assert world.pods() == ["good-1"]


@scenario
async def test_a_spec_the_models_refuse_is_reported_and_the_rest_goes_on(world: World) -> None:
    """A spec the CRD let through but the models refuse: InvalidSpec, Pending, one event."""
    world.api.create(
        Resource.JOBS,
        {
            "metadata": {"name": "odd", "namespace": NAMESPACE},
            "spec": {"template": {"spec": {"containers": "not a list"}}},
        },
    )
    world.job("fine")
    await world.start()
    status = world.status("odd")
    assert status["phase"] == "Pending"
    assert world.condition("odd", "InvalidSpec") is not None
    assert world.event_reasons("odd") == ["InvalidSpec"]
    assert world.pods() == ["fine-1"]


@scenario
async def test_ttl_deletes_the_job_after_its_final_status_and_events(world: World) -> None:
    """ttlSecondsAfterFinished 30: Succeeded is written first; the job goes 30 s later."""
    world.job("brief", ttlSecondsAfterFinished=30)
    await world.start()
    await world.finish_all()
    assert world.phase("brief") == "Succeeded"
    await world.advance(29)
    assert world.api.get(Resource.JOBS, NAMESPACE, "brief") is not None
    await world.advance(1)
    assert world.api.get(Resource.JOBS, NAMESPACE, "brief") is None
    writes = [
        (c.method, (c.body or {}).get("phase"))
        for c in world.api.calls
        if c.name == "brief" and c.method in ("patch_job_status", "delete_job")
    ]
    assert writes[-2:] == [("patch_job_status", "Succeeded"), ("delete_job", None)]
    assert world.pods() == []  # its pod went with it


@scenario
async def test_ttl_zero_deletes_right_after_the_final_status(world: World) -> None:
    world.job("gone", ttlSecondsAfterFinished=0)
    await world.start()
    await world.finish_all()
    assert world.api.get(Resource.JOBS, NAMESPACE, "gone") is None
    methods = [c.method for c in world.api.calls if c.name == "gone"]
    assert methods.index("delete_job") > max(
        i for i, m in enumerate(methods) if m == "patch_job_status"
    )
    assert "Succeeded" in world.event_reasons("gone")


@scenario
async def test_one_jobs_events_are_posted_and_named_in_the_order_they_happened(
    world: World,
) -> None:
    """Attempt 1 fails, attempt 2 fails, attempt 3 succeeds: Started, AttemptFailed, Started,
    AttemptFailed, Started, Succeeded; event names sort the same way (kubectl describe)."""
    world.job(
        "flaky",
        retry={"maxAttempts": 3, "backoff": {"strategy": "Fixed", "initialDelaySeconds": 1}},
    )
    for i in range(20):  # neighbours, so that the posters are busy
        world.job(f"other-{i}")
    await world.start()
    world.api.logs[(NAMESPACE, "flaky-1")] = "boom"
    await world.finish_all(exit_code=1)
    await world.advance(1)
    world.api.logs[(NAMESPACE, "flaky-2")] = "line 1\nboom again"
    world.finish("flaky-2", exit_code=1)
    await world.advance(1.5)
    world.finish("flaky-3")
    await world.settle()
    events = [e for e in world.api.events if e.object_name == "flaky"]
    assert [e.reason for e in events] == [
        "Started",
        "AttemptFailed",
        "Started",
        "AttemptFailed",
        "Started",
        "Succeeded",
    ]
    assert [e.name for e in events] == sorted(e.name for e in events)
    assert all(e.name.startswith("flaky.") for e in events)
    last_failure = world.status("flaky")["lastFailure"]
    assert (last_failure["attempt"], last_failure["logTail"]) == (2, "line 1\nboom again")


@scenario
async def test_a_pod_a_namespace_policy_forbids_fails_the_job_with_that_reason(
    world: World,
) -> None:
    """A 403 from admission (PodSecurity): the job fails at once, PodForbidden, with the API
    server's message; the queue's slot goes to the next job."""
    world.queue("q", concurrency=1)
    world.api.fail(
        "create_pod",
        kube_errors.ApiError(
            403,
            'pods "root-1" is forbidden: violates PodSecurity "restricted:latest": '
            'privileged (container "worker" must not set securityContext.privileged=true)',
        ),
        when=lambda _namespace, name: name == "root-1",
    )
    world.job("root", queue="q")
    await world.advance(1)
    world.job("next", queue="q")
    await world.start()
    await world.advance(1)
    status = world.status("root")
    assert status["phase"] == "Failed"
    failed = world.condition("root", "Failed")
    assert failed is not None and failed["reason"] == "PodForbidden"
    assert "violates PodSecurity" in failed["message"]
    assert status.get("attempts", 0) == 0
    assert world.pods() == ["next-1"]


@scenario
async def test_a_403_of_the_operators_own_permissions_is_retried_not_blamed_on_the_job(
    world: World,
) -> None:
    """RBAC refuses the operator (someone edited its Role): the job is not failed; the create
    is tried again with backoff and succeeds once the permission is back."""
    world.api.fail(
        "create_pod",
        kube_errors.ApiError(
            403,
            'pods is forbidden: User "system:serviceaccount:conveyor-system:conveyor" cannot '
            'create resource "pods" in API group "" in the namespace "shop"',
        ),
        times=2,
    )
    world.job("patient")
    await world.start()
    assert world.phase("patient") is None
    for _ in range(3):
        await world.advance(5)
    assert world.phase("patient") == "Running"
    assert world.pods() == ["patient-1"]


@scenario
async def test_a_template_field_of_the_wrong_type_is_flagged_naming_the_field(
    world: World,
) -> None:
    """env given as a string (the CRD keeps any container field): InvalidSpec, which names
    the field; no traceback loop, no attempt."""
    world.job(
        "typo",
        template={"spec": {"containers": [{"name": "w", "image": "busybox", "env": "A=1"}]}},
    )
    await world.start()
    condition = world.condition("typo", "InvalidSpec")
    assert condition is not None
    assert "spec.template.spec.containers[0].env must be a list" in condition["message"]
    assert world.api.count("create_pod") == 0
    assert world.api.failed == []


@scenario
async def test_a_namespace_being_deleted_is_left_alone(world: World) -> None:
    """Creates refused because the namespace terminates: no retry, no failure recorded."""
    world.api.fail(
        "create_pod",
        kube_errors.NamespaceTerminatingError(
            "unable to create new content in namespace shop because it is being terminated"
        ),
    )
    world.job("late")
    await world.start()
    await world.advance(120)
    assert len(world.api.failed) == 1
    assert world.phase("late") is None


@scenario
async def test_the_workers_termination_message_becomes_the_jobs_result(world: World) -> None:
    """The pod status the watch delivers carries the termination message: it is written on
    the attempt and as status.result, with no other API call."""
    world.job("report")
    await world.start()
    world.api.finish_pod(NAMESPACE, "report-1", message='{"rows": 42}')
    await world.settle()
    status = world.status("report")
    assert status["phase"] == "Succeeded"
    assert status["result"] == '{"rows": 42}'
    assert status["history"][-1]["output"] == '{"rows": 42}'
    assert world.api.count("read_log_tail") == 0


@scenario
async def test_a_job_sent_to_an_idle_queue_starts_within_its_first_look(world: World) -> None:
    """Its queue's line is empty and nothing else waits: its own reconcile admits it and
    creates its pod, without a pass of the queue in between; the next look is the pod's."""
    world.queue("q", concurrency=2)
    await world.start()
    world.job("first", queue="q")
    await world.settle()
    assert world.pods("first") == ["first-1"]
    assert world.phase("first") == "Running"
    assert world.reconciles == ["first", "first"]
