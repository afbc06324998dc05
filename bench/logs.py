"""What kwok's and the API server's logs say about one phase: how often kwok
wrote each pod's status, the stale writes it was refused, and the watches the
API server dropped because their reader fell behind.

The fake nodes must do the same for every phase: each pod Pending -> Running ->
Succeeded in exactly two status writes. These figures show whether they did:
a pod written more than twice had a stage applied to a copy of it older than
the pod, which happened a second or two after the API server dropped kwok's
pod watch (docs/performance.md, "The fake nodes"); the stages now carry the
resourceVersion they were computed from, so such a write is refused (409).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from bench.cluster import STATE

APISERVER_LOG = STATE / "logs" / "kube-apiserver.log"
KWOK_POD_WATCH = 'fields: "spec.nodeName!="'  # kwok's field selector: pods on any node
_FORCED_CLOSE = re.compile(
    r"Forcing (?P<resource>\S+) watcher close due to unresponsiveness: "
    r'key: "(?P<key>[^"]*)", labels: "[^"]*", fields: "(?P<fields>[^"]*)"'
)


def mark(path: Path) -> int:
    """Where the log ends now: read from here after the phase."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _lines_since(path: Path, offset: int) -> list[str]:
    try:
        with path.open("rb") as f:
            if f.seek(0, 2) < offset:  # rotated or truncated: read all of it
                offset = 0
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def kwok_stats(path: Path, offset: int, namespace: str) -> dict[str, Any]:
    """kwok's status writes to the phase's pods (its "Patch pod" lines), and the
    stage applications the API server refused because kwok's copy of the pod was
    stale (409: the stages carry the resourceVersion they were computed from)."""
    prefix = namespace + "/"
    patches: Counter[str] = Counter()
    refused = 0
    errors: Counter[str] = Counter()
    for line in _lines_since(path, offset):
        if prefix not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        pod = str(entry.get("pod") or "")
        if not pod.startswith(prefix):
            continue
        msg = entry.get("msg")
        if msg == "Patch pod":
            patches[pod] += 1
        elif msg == "failed to apply stage":
            err = str(entry.get("err") or "")
            if "the object has been modified" in err:
                refused += 1
            elif "not found" not in err:  # a pod deleted while its stage was queued
                errors[str(entry.get("stage"))] += 1
    counts = list(patches.values())
    return {
        "pods_patched": len(counts),
        "status_patches_per_pod": round(sum(counts) / len(counts), 3) if counts else None,
        "pods_patched_more_than_twice": sum(1 for c in counts if c > 2),
        "most_patches_on_one_pod": max(counts, default=0),
        "stale_patches_refused": refused,
        "other_errors_by_stage": dict(errors),
    }


def watch_closes(path: Path, offset: int) -> dict[str, Any]:
    """Watches the API server closed because their reader fell behind
    ("Forcing ... watcher close due to unresponsiveness"), kwok's pod watch apart."""
    by: Counter[str] = Counter()
    kwok = 0
    for line in _lines_since(path, offset):
        m = _FORCED_CLOSE.search(line)
        if m is None:
            continue
        fields = m.group("fields")
        by[f"{m.group('resource')} {m.group('key')}" + (f" ({fields})" if fields else "")] += 1
        if m.group("resource") == "pods" and KWOK_POD_WATCH in line:
            kwok += 1
    return {"kwok_pod_watch": kwok, "all": sum(by.values()), "by_watch": dict(by.most_common())}
