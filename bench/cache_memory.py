"""What the operator's cache holds per finished job and per finished pod, without a cluster.

`python -m bench.cache_memory [--jobs N] [--pods N]` builds the cache
(`conveyor.runtime.cache.Cache`) from JSON shaped like the API server's: N
finished BackgroundJobs (kubectl's last-applied annotation included) and N
finished pods of their attempts, each decoded afresh as a list page's item
would be, and prints the Python memory the cache keeps (tracemalloc), per
job and per pod, with the lines that hold most. The growth phase measures the
process's RSS on a real namespace; this says where that memory is.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
import uuid
from typing import Any

import orjson

from conveyor.runtime.cache import Cache

STAMP = "2026-12-02T10:00:00Z"


def job(i: int) -> dict[str, Any]:
    name = f"fill-{i:06d}"
    return {
        "apiVersion": "conveyor.dev/v1alpha1",
        "kind": "BackgroundJob",
        "metadata": {
            "namespace": "growth",
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(100000 + i),
            "generation": 1,
            "creationTimestamp": STAMP,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x" * 600},
        },
        "spec": {
            "queue": "fill",
            "template": {
                "spec": {"containers": [{"name": "worker", "image": "worker:dev", "args": ["0"]}]}
            },
        },
        "status": {
            "phase": "Succeeded",
            "attempts": 1,
            "startedAt": STAMP,
            "finishedAt": STAMP,
            "conditions": [
                {
                    "type": "Complete",
                    "status": "True",
                    "reason": "Succeeded",
                    "lastTransitionTime": STAMP,
                    "message": "attempt 1 succeeded",
                }
            ],
            "history": [
                {
                    "attempt": 1,
                    "pod": f"{name}-1",
                    "startedAt": STAMP,
                    "finishedAt": STAMP,
                    "exitCode": 0,
                    "outcome": "Succeeded",
                }
            ],
        },
    }


def pod(i: int) -> dict[str, Any]:
    name = f"fill-{i:06d}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": "growth",
            "name": f"{name}-1",
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(200000 + i),
            "creationTimestamp": STAMP,
            "labels": {
                "conveyor.dev/job": name,
                "conveyor.dev/queue": "fill",
                "conveyor.dev/attempt": "1",
                "app.kubernetes.io/managed-by": "conveyor",
            },
            "annotations": {
                "conveyor.dev/created-at": "2026-12-02T10:00:00.123456Z",
                "conveyor.dev/operator": "conveyor-operator-abc/1234",
            },
        },
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "worker",
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": STAMP,
                            "finishedAt": STAMP,
                        }
                    },
                }
            ],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--pods", type=int, default=42_000)
    parser.add_argument("--top", type=int, default=8, help="lines that hold most (8)")
    args = parser.parse_args()
    jobs = [orjson.dumps(job(i)) for i in range(args.jobs)]
    pods = [orjson.dumps(pod(i)) for i in range(args.pods)]
    gc.collect()
    tracemalloc.start()
    cache = Cache()
    for body in jobs:
        cache.jobs.apply(orjson.loads(body))
    gc.collect()
    after_jobs = tracemalloc.get_traced_memory()[0]
    for body in pods:
        cache.pods.apply(orjson.loads(body))
    gc.collect()
    after_pods = tracemalloc.get_traced_memory()[0]
    snapshot = tracemalloc.take_snapshot()
    per_pod = (after_pods - after_jobs) / max(args.pods, 1)
    print(
        f"{args.jobs} finished jobs: {after_jobs / 2**20:.1f} MiB, "
        f"{after_jobs / max(args.jobs, 1):.0f} B per job; "
        f"{args.pods} finished pods: {(after_pods - after_jobs) / 2**20:.1f} MiB, "
        f"{per_pod:.0f} B per pod"
    )
    for stat in snapshot.statistics("lineno")[: args.top]:
        print(f"  {stat}")


if __name__ == "__main__":
    main()
