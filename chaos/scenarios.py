"""The fault-injection scenarios, each a line of the table (see `harness` for the verdict)."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import yaml
from bench.cluster import Kwok, log, pod_placement
from tests.cluster.operator import OperatorProcess

from chaos import harness
from chaos.harness import FLAKY, Context, PodLedger, Row, job, queue, seconds, wait_until
from chaos.proxy import Blackhole, FaultyApi


async def kill_nine(ctx: Context) -> Row:
    """SIGKILL the operator at random moments while jobs with retries run through a queue."""
    kills, jobs, concurrency = (5, 100, 10) if ctx.quick else (20, 500, 20)
    rng = random.Random(20)
    namespace = await harness.fresh_namespace(ctx.kube, "kill")
    ledger = PodLedger(ctx.kube, namespace)
    await ledger.start()
    operator = ctx.operator("kill", [namespace])
    operator.start()
    recover: list[float] = []
    try:
        await harness.create_all(
            ctx.kube,
            namespace,
            [queue("q", concurrency=concurrency)]
            + [job(f"j{i}", FLAKY.format(sleep=1), queue="q") for i in range(jobs)],
        )
        for k in range(kills):
            await asyncio.sleep(rng.uniform(1.0, 4.0))
            if await harness.all_finished(ctx.kube, namespace, jobs):
                log(f"[kill] all jobs finished after {k} kills")
                break
            operator.kill()
            killed = time.monotonic()
            operator.start()
            try:
                await wait_until(
                    _async(lambda k=killed: ledger.created_after(k)), 60, "a pod after the restart"
                )
                recover.append(time.monotonic() - killed)
            except TimeoutError:
                if not await harness.all_finished(ctx.kube, namespace, jobs):
                    raise
        await wait_until(
            lambda: harness.all_finished(ctx.kube, namespace, jobs), 900, "every job to end", 2
        )
        verdict = await harness.verdict(ctx.kube, namespace, max_attempts=3, ledger=ledger)
        over = max(0, ledger.most_live.get("q", 0) - concurrency)
        return Row(
            "kill -9 of the operator at random moments",
            jobs=verdict.jobs,
            faults=f"{len(recover)} x SIGKILL",
            lost=len(verdict.lost),
            duplicated=len(verdict.duplicated),
            over_quota=over,
            recover=f"first pod after restart: {seconds(recover)}",
            notes=f"concurrency {concurrency}; most pods alive at once "
            f"{ledger.most_live.get('q')}; a third of the jobs fail their first attempt",
            passed=not verdict.lost and not verdict.duplicated and not over,
        )
    finally:
        operator.stop()
        await ledger.stop()
        await harness.delete_namespace(ctx.kube, namespace)


def _async(check: Any) -> Any:
    async def run() -> bool:
        return bool(check())

    return run


async def takeovers(ctx: Context) -> list[Row]:
    """Two replicas; the leader stopped gracefully, killed, or cut off from the API server."""
    trials = 3 if ctx.quick else 10
    namespace = await harness.fresh_namespace(ctx.kube, "lead")
    ledger = PodLedger(ctx.kube, namespace)
    await ledger.start()
    proxies = {name: Blackhole(ctx.kube.server) for name in ("a", "b")}
    replicas: dict[str, OperatorProcess] = {}
    for name, proxy in proxies.items():
        await proxy.start()
        config = proxy.kubeconfig(ctx.kubeconfig, ctx.log_dir / f"kubeconfig-{name}")
        replicas[name] = ctx.operator(
            f"lead-{name}",
            [namespace],
            "--leader-election",
            f"--leader-election-namespace={namespace}",
            kubeconfig=config,
            POD_NAME=name,
        )
    for replica in replicas.values():
        replica.start()
    concurrency = 10
    await harness.create_all(ctx.kube, namespace, [queue("q", concurrency=concurrency)])
    submitted = 0
    stop_feeding = asyncio.Event()

    async def feed() -> None:
        nonlocal submitted
        while not stop_feeding.is_set():
            await harness.create_all(
                ctx.kube, namespace, [job(f"t{submitted}", "sleep 1", queue="q")]
            )
            submitted += 1
            await asyncio.sleep(1.0)  # about what ten real pods of a second each sustain here

    feeder = asyncio.create_task(feed())
    times: dict[str, list[float]] = {"graceful": [], "kill": [], "cut": []}
    try:
        await wait_until(lambda: _has_leader(ctx, namespace, replicas), 60, "a first leader", 0.2)
        for _ in range(trials):
            for kind in ("graceful", "kill", "cut"):
                leader = await harness.lease_holder(ctx.kube, namespace)
                other = "b" if leader == "a" else "a"
                began = time.monotonic()
                if kind == "graceful":
                    replicas[leader].terminate()
                elif kind == "kill":
                    replicas[leader].kill()
                else:
                    proxies[leader].partition()
                await wait_until(
                    lambda o=other: _leads(ctx, namespace, replicas, o),
                    60,
                    f"{other} taking over ({kind})",
                    0.1,
                )
                times[kind].append(time.monotonic() - began)
                if kind == "cut":
                    proxies[leader].heal()
                else:
                    replicas[leader].stop()
                    replicas[leader].start()
                log(f"[takeover] {kind}: {other} leads after {times[kind][-1]:.1f} s")
                await asyncio.sleep(2)  # let the new leader carry some work
        stop_feeding.set()
        await feeder
        await wait_until(
            lambda: harness.all_finished(ctx.kube, namespace, submitted), 900, "every job", 1
        )
        verdict = await harness.verdict(ctx.kube, namespace, max_attempts=3, ledger=ledger)
        over = max(0, ledger.most_live.get("q", 0) - concurrency)
        goals = {"graceful": ("p50", 2.0), "kill": ("max", 15.0), "cut": ("max", 15.0)}
        rows = []
        for kind, label in (
            ("graceful", "leader stopped gracefully (SIGTERM; the lease is released)"),
            ("kill", "leader killed (kill -9)"),
            ("cut", "leader cut off from the API server (a blackholing proxy)"),
        ):
            stat, goal = goals[kind]
            values = sorted(times[kind])
            figure = values[len(values) // 2] if stat == "p50" else values[-1]
            rows.append(
                Row(
                    label,
                    jobs=verdict.jobs,
                    faults=f"{len(values)} trials",
                    lost=len(verdict.lost),
                    duplicated=len(verdict.duplicated),
                    over_quota=over,
                    recover=f"takeover {seconds(values)}",
                    notes=f"goal {stat} ≤ {goal:.0f} s: {'met' if figure <= goal else 'MISSED'}; "
                    "default lease 10 s, renew 7 s, retry 2 s; jobs submitted throughout",
                    passed=not verdict.lost and not verdict.duplicated and not over,
                )
            )
        return rows
    finally:
        stop_feeding.set()
        feeder.cancel()
        for replica in replicas.values():
            replica.stop()
        for proxy in proxies.values():
            await proxy.stop()
        await ledger.stop()
        await harness.delete_namespace(ctx.kube, namespace)


async def _has_leader(ctx: Context, namespace: str, replicas: dict[str, OperatorProcess]) -> bool:
    holder = await harness.lease_holder(ctx.kube, namespace)
    return holder in replicas and await _leads(ctx, namespace, replicas, holder)


async def _leads(
    ctx: Context, namespace: str, replicas: dict[str, OperatorProcess], name: str
) -> bool:
    if await harness.lease_holder(ctx.kube, namespace) != name:
        return False
    text = await asyncio.to_thread(replicas[name].scrape)
    return "\nconveyor_leader 1.0" in text


async def control_plane_restarts(ctx: Context) -> list[Row]:
    """kube-apiserver, then etcd, restarted with their state while jobs run."""
    rows = []
    for component in ("kube-apiserver", "etcd"):
        jobs = 40 if ctx.quick else 100
        namespace = await harness.fresh_namespace(ctx.kube, component.split("-")[-1])
        ledger = PodLedger(ctx.kube, namespace)
        await ledger.start()
        operator = ctx.operator(f"restart-{component}", [namespace])
        operator.start()
        try:
            await harness.create_all(
                ctx.kube,
                namespace,
                [queue("q", concurrency=10)]
                + [job(f"j{i}", FLAKY.format(sleep=1), queue="q") for i in range(jobs)],
            )
            await wait_until(
                lambda n=namespace, j=jobs: _done_at_least(ctx, n, j // 3),
                300,
                "a third of the jobs",
                1,
            )
            began = time.monotonic()
            await asyncio.to_thread(harness.component, "restart", component)
            back = time.monotonic() - began
            restarted = time.monotonic()
            recover = await wait_until(
                _async(lambda seen=ledger, r=restarted: seen.created_after(r)),
                180,
                "a pod after the restart",
            )
            await wait_until(
                lambda n=namespace, j=jobs: harness.all_finished(ctx.kube, n, j),
                600,
                "every job",
                2,
            )
            operator.check()  # it reconnected on its own: still the same process
            verdict = await harness.verdict(ctx.kube, namespace, max_attempts=3, ledger=ledger)
            over = max(0, ledger.most_live.get("q", 0) - 10)
            rows.append(
                Row(
                    f"{component} restarted mid-run, its state kept",
                    jobs=verdict.jobs,
                    faults=f"1 restart ({back:.1f} s down and up)",
                    lost=len(verdict.lost),
                    duplicated=len(verdict.duplicated),
                    over_quota=over,
                    recover=f"first pod {recover:.1f} s after it was back",
                    notes="the operator was not restarted",
                    passed=not verdict.lost and not verdict.duplicated and not over,
                )
            )
        finally:
            operator.stop()
            await ledger.stop()
            await harness.delete_namespace(ctx.kube, namespace)
    return rows


async def _done_at_least(ctx: Context, namespace: str, count: int) -> bool:
    counts = await harness.phases(ctx.kube, namespace)
    return counts.get("Succeeded", 0) >= count


async def unlistable(ctx: Context) -> Row:
    """The operator's permission to list BackgroundJobs revoked, then restored.

    A watch begun before the revocation streams on (the API server checks a watch's
    permission when it begins), so the operator notices at its next refused request: here,
    the status write of a job whose pod the harness deletes. From then on (its metric
    `conveyor_watch_healthy` says 0) it must create nothing more: a second wave of pod
    deletions meanwhile gets no new attempt until the permission is back."""
    jobs = 20
    namespace = await harness.fresh_namespace(ctx.kube, "rbac")
    account = "conveyor"
    token_config = await _service_account(ctx, namespace, account)
    ledger = PodLedger(ctx.kube, namespace)
    await ledger.start()
    operator = ctx.operator("unlistable", [namespace], kubeconfig=token_config)
    operator.start()
    watch = f'conveyor_watch_healthy{{watch="backgroundjobs@{namespace}"}}'
    try:
        await harness.create_all(
            ctx.kube, namespace, [job(f"j{i}", "sleep 30") for i in range(jobs)]
        )
        await wait_until(
            lambda: _phase_count(ctx, namespace, "Running", jobs), 120, "every job running", 1
        )
        lines_before = harness.log_lines(operator)
        await ctx.kube.request(
            "DELETE",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings/jobs",
        )
        revoked = time.monotonic()
        await _delete_pods(ctx, namespace)
        noticed = await wait_until(
            _async(lambda: f"{watch} 0.0" in operator.scrape()), 60, "the operator holding back"
        )
        held = time.monotonic()
        await _delete_pods(ctx, namespace)  # the second wave: nothing may replace these
        await asyncio.sleep(max(0.0, 60 - (time.monotonic() - revoked)))
        created_while_held = sum(1 for t in ledger.first_created.values() if t > held)
        lines_during = harness.log_lines(operator) - lines_before
        await ctx.kube.create(
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
            _jobs_binding(namespace, account),
        )
        restored = time.monotonic()
        recover = await wait_until(
            _async(lambda: ledger.created_after(restored)), 120, "a pod after the restore"
        )
        await wait_until(
            lambda: harness.all_finished(ctx.kube, namespace, jobs), 300, "every job", 2
        )
        verdict = await harness.verdict(ctx.kube, namespace, max_attempts=3, ledger=ledger)
        return Row(
            "BackgroundJobs cannot be listed (403: RBAC revoked for 60 s)",
            jobs=verdict.jobs,
            faults="binding deleted; the jobs' pods deleted twice meanwhile",
            lost=len(verdict.lost),
            duplicated=len(verdict.duplicated),
            recover=f"held back {noticed:.1f} s after the first refused write; "
            f"first pod {recover:.1f} s after the restore",
            notes=f"pods created while it held back: {created_while_held}; "
            f"log lines in those 60 s: {lines_during}",
            passed=not verdict.lost and not verdict.duplicated and created_while_held == 0,
        )
    finally:
        operator.stop()
        await ledger.stop()
        await harness.delete_namespace(ctx.kube, namespace)


async def _delete_pods(ctx: Context, namespace: str) -> None:
    await ctx.kube.request(
        "DELETE", f"/api/v1/namespaces/{namespace}/pods", params={"gracePeriodSeconds": "0"}
    )


async def _phase_count(ctx: Context, namespace: str, phase: str, count: int) -> bool:
    return (await harness.phases(ctx.kube, namespace)).get(phase, 0) >= count


OPERATOR_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["conveyor.dev"], "resources": ["jobqueues"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["conveyor.dev"], "resources": ["jobqueues/status"], "verbs": ["patch"]},
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["get", "list", "watch", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
JOB_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["conveyor.dev"],
        "resources": ["backgroundjobs"],
        "verbs": ["get", "list", "watch", "create", "delete"],
    },
    {"apiGroups": ["conveyor.dev"], "resources": ["backgroundjobs/status"], "verbs": ["patch"]},
]


def _role(namespace: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": rules,
    }


def _binding(namespace: str, name: str, account: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }


def _jobs_binding(namespace: str, account: str) -> dict[str, Any]:
    return _binding(namespace, "jobs", account)


async def _service_account(ctx: Context, namespace: str, account: str) -> str:
    """A ServiceAccount with the operator's Roles (jobs apart), and a kubeconfig for it."""
    base = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    await ctx.kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": account}}
    )
    for name, rules in (("rest", OPERATOR_RULES), ("jobs", JOB_RULES)):
        await ctx.kube.create(f"{base}/roles", _role(namespace, name, rules))
        await ctx.kube.create(f"{base}/rolebindings", _binding(namespace, name, account))
    cluster_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{namespace}-priorityclasses"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "system:basic-user",
        },
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }
    await ctx.kube.create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", cluster_role)
    await ctx.kube.create(
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"{namespace}-pc"},
            "rules": [
                {
                    "apiGroups": ["scheduling.k8s.io"],
                    "resources": ["priorityclasses"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
    )
    await ctx.kube.create(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{namespace}-pc"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"{namespace}-pc",
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    )
    token = harness.kubectl(
        ctx.kubeconfig, "create", "token", account, "-n", namespace, "--duration=2h"
    ).strip()
    config = yaml.safe_load(Path(ctx.kubeconfig).read_text())  # noqa: ASYNC240 - a small file
    config["users"] = [{"name": "conveyor", "user": {"token": token}}]
    for context in config.get("contexts") or []:
        context["context"]["user"] = "conveyor"
    path = ctx.log_dir / f"kubeconfig-{namespace}"
    path.write_text(yaml.safe_dump(config))
    return str(path)


async def crds_deleted(ctx: Context) -> Row:
    """The cluster's state reset under the operator: its CRDs deleted, then applied again."""
    namespace = await harness.fresh_namespace(ctx.kube, "crds")
    ledger = PodLedger(ctx.kube, namespace)
    await ledger.start()
    operator = ctx.operator("crds", [namespace])
    operator.start()
    try:
        await harness.create_all(ctx.kube, namespace, [job(f"j{i}", "sleep 60") for i in range(5)])
        await wait_until(
            lambda: _phase_count(ctx, namespace, "Running", 5), 120, "every job running", 1
        )
        lines_before = harness.log_lines(operator)
        harness.kubectl(ctx.kubeconfig, "delete", "crd", "backgroundjobs.conveyor.dev")
        gone = time.monotonic()
        await asyncio.sleep(60)
        created_during = sum(1 for t in ledger.first_created.values() if t > gone)
        lines_during = harness.log_lines(operator) - lines_before
        harness.kubectl(
            ctx.kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(harness.ROOT / "crds"),
        )
        harness.kubectl(
            ctx.kubeconfig,
            "wait",
            "--for=condition=Established",
            "crd/backgroundjobs.conveyor.dev",
            "--timeout=60s",
        )
        back = time.monotonic()
        await harness.create_all(ctx.kube, namespace, [job("after", "true")])
        await wait_until(_async(lambda: "after-1" in ledger.pods), 120, "the job after the restore")
        recover = time.monotonic() - back
        await wait_until(lambda: harness.all_finished(ctx.kube, namespace, 1), 120, "it ends", 1)
        verdict = await harness.verdict(ctx.kube, namespace, max_attempts=3, ledger=ledger)
        operator.check()
        return Row(
            "CRDs deleted under the operator (404), then applied again",
            jobs=5 + verdict.jobs,
            faults="CRD deleted for 60 s (its 5 running jobs with it)",
            lost=len(verdict.lost),
            duplicated=len(verdict.duplicated),
            recover=f"a new job's pod {recover:.1f} s after the CRDs were back",
            notes=f"pods created while it could not list: {created_during}; "
            f"log lines in those 60 s: {lines_during}",
            passed=not verdict.lost and not verdict.duplicated and created_during == 0,
        )
    finally:
        operator.stop()
        await ledger.stop()
        await harness.delete_namespace(ctx.kube, namespace)


async def kubelet_lost(ctx: Context) -> Row:
    """The kubelet stopped until the node is NotReady and its pods are evicted; then back."""
    jobs = 6
    namespace = await harness.fresh_namespace(ctx.kube, "node")
    operator = ctx.operator("node", [namespace])
    operator.start()
    evict_at_once = {
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 0,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 0,
            },
        ]
    }
    try:
        await harness.create_all(
            ctx.kube,
            namespace,
            [
                job(f"j{i}", "sleep 120", max_attempts=1, placement=evict_at_once)
                for i in range(jobs)
            ],
        )
        await wait_until(
            lambda: _phase_count(ctx, namespace, "Running", jobs), 120, "every job running", 1
        )
        await asyncio.to_thread(harness.component, "stop", "kubelet")
        stopped = time.monotonic()
        try:
            not_ready = await wait_until(lambda: _node_not_ready(ctx), 180, "the node NotReady", 2)
            await wait_until(
                lambda: _all_terminating(ctx, namespace, jobs), 120, "the pods evicted", 1
            )
        finally:
            await asyncio.to_thread(harness.component, "start", "kubelet")
        back = time.monotonic()
        await wait_until(
            lambda: _attempts_at_least(ctx, namespace, 2, jobs), 300, "second attempts", 2
        )
        recover = time.monotonic() - back
        # The retried attempts sleep 120 s: end them now, the point is made.
        jobs_list, _ = await ctx.kube.list(
            f"{harness.GROUP_PATH}/namespaces/{namespace}/backgroundjobs"
        )
        disrupted = sum(
            1
            for j in jobs_list
            if (j.get("status") or {}).get("disruptions", 0) >= 1
            and (j.get("status") or {}).get("failures", 0) == 0
        )
        return Row(
            "kubelet stopped until the node is NotReady; pods evicted",
            jobs=jobs,
            faults=f"kubelet down {back - stopped:.0f} s (NotReady after {not_ready:.0f} s)",
            lost=jobs - disrupted,
            duplicated=0,
            recover=f"second attempts created {recover:.1f} s after the kubelet was back",
            notes=f"{disrupted}/{jobs} recorded as disruptions (maxAttempts 1, failures 0) and "
            "retried",
            passed=disrupted == jobs,
        )
    finally:
        operator.stop()
        await harness.delete_namespace(ctx.kube, namespace)


async def _node_not_ready(ctx: Context) -> bool:
    nodes, _ = await ctx.kube.list("/api/v1/nodes")
    for node in nodes:
        if (node["metadata"].get("annotations") or {}).get("kwok.x-k8s.io/node"):
            continue
        for condition in (node.get("status") or {}).get("conditions") or []:
            if condition["type"] == "Ready" and condition["status"] != "True":
                return True
    return False


async def _all_terminating(ctx: Context, namespace: str, count: int) -> bool:
    pods, _ = await ctx.kube.list(f"/api/v1/namespaces/{namespace}/pods")
    return sum(1 for p in pods if p["metadata"].get("deletionTimestamp")) >= count


async def _attempts_at_least(ctx: Context, namespace: str, attempts: int, count: int) -> bool:
    jobs, _ = await ctx.kube.list(f"{harness.GROUP_PATH}/namespaces/{namespace}/backgroundjobs")
    return sum(1 for j in jobs if (j.get("status") or {}).get("attempts", 0) >= attempts) >= count


async def write_faults(ctx: Context, kwok: Kwok) -> Row:
    """Jobs through an API server that answers 5 % of writes with 500 or 429 (a proxy)."""
    jobs = 300 if ctx.quick else 2000
    namespace = await harness.fresh_namespace(ctx.kube, "faults")
    proxy = FaultyApi(ctx.kube, failing=0.05)
    await proxy.start()
    config = proxy.kubeconfig(ctx.kubeconfig, ctx.log_dir / "kubeconfig-faults")
    ledger = PodLedger(ctx.kube, namespace)
    await ledger.start()
    operator = ctx.operator("faults", [namespace], kubeconfig=config)
    operator.start()
    try:
        await harness.create_all(
            ctx.kube,
            namespace,
            [queue("q", concurrency=200)]
            + [job(f"j{i}", "true", queue="q", placement=pod_placement()) for i in range(jobs)],
        )
        took = await wait_until(
            lambda: harness.all_finished(ctx.kube, namespace, jobs), 1200, "every job", 2
        )
        verdict = await harness.verdict(ctx.kube, namespace, max_attempts=3, ledger=ledger)
        over = max(0, ledger.most_live.get("q", 0) - 200)
        injected = sum(proxy.injected.values())
        return Row(
            "5 % of the operator's writes answered 500 or 429",
            jobs=verdict.jobs,
            faults=f"{injected} of {proxy.writes} writes ({proxy.injected[500]} x 500, "
            f"{proxy.injected[429]} x 429)",
            lost=len(verdict.lost),
            duplicated=len(verdict.duplicated),
            over_quota=over,
            recover=f"all done in {took:.0f} s",
            notes="kwok nodes; concurrency 200",
            passed=not verdict.lost and not verdict.duplicated and not over and injected > 0,
        )
    finally:
        operator.stop()
        await proxy.stop()
        await ledger.stop()
        await harness.delete_namespace(ctx.kube, namespace)


async def soak(ctx: Context, kwok: Kwok) -> Row:
    """Waves of jobs, each deleted once done (TTL 0): the operator's memory stays flat."""
    waves, per_wave = (3, 300) if ctx.quick else (5, 1000)
    namespace = await harness.fresh_namespace(ctx.kube, "soak")
    operator = ctx.operator("soak", [namespace])
    operator.start()
    rss: list[float] = []
    try:
        await harness.create_all(ctx.kube, namespace, [queue("q", concurrency=200)])
        for wave in range(waves):
            await harness.create_all(
                ctx.kube,
                namespace,
                [
                    job(
                        f"w{wave}-{i}",
                        "true",
                        queue="q",
                        placement=pod_placement(),
                        ttlSecondsAfterFinished=0,
                    )
                    for i in range(per_wave)
                ],
            )
            await wait_until(lambda: _empty(ctx, namespace), 900, f"wave {wave} done", 2)
            rss.append(_rss_mib(operator))
            log(f"[soak] wave {wave + 1}/{waves}: operator RSS {rss[-1]:.0f} MiB")
        base = rss[1] if len(rss) > 1 else rss[0]
        spread = max(abs(r - base) / base for r in rss[1:]) if len(rss) > 1 else 0.0
        return Row(
            f"memory over a {waves * per_wave:,}-job soak",
            jobs=waves * per_wave,
            faults="none (each wave deleted by its TTL)",
            recover="",
            notes="RSS after each wave: "
            + ", ".join(f"{r:.0f}" for r in rss)
            + f" MiB; after the first wave within ±{spread * 100:.0f} % (goal ±10 %)",
            passed=spread <= 0.10,
        )
    finally:
        operator.stop()
        await harness.delete_namespace(ctx.kube, namespace)


async def _empty(ctx: Context, namespace: str) -> bool:
    jobs, _ = await ctx.kube.list(f"{harness.GROUP_PATH}/namespaces/{namespace}/backgroundjobs")
    return not jobs


def _rss_mib(operator: OperatorProcess) -> float:
    pid = operator.pid
    assert pid is not None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
