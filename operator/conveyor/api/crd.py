"""Render the CustomResourceDefinitions from the pydantic models.

Pydantic emits JSON Schema; the API server wants a *structural* OpenAPI v3
schema: no `$ref`, no `anyOf` for optionals, a `type` on every node, no
`null`. This module turns one into the other, keeps each field's description,
bounds, pattern and default (but for the defaults the operator applies itself, which
only its description states: `UNSTORED_DEFAULT`), and adds what only a CRD has: CEL rules, printer
columns, selectable fields, short names and the status subresource.

`python -m conveyor.api.crd --write crds/` rewrites the committed files; the
unit tests compare them with a fresh rendering.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from conveyor.api import v1alpha1
from conveyor.api.v1alpha1.base import UNSTORED_DEFAULT

_KEEP = {
    "type",
    "description",
    "properties",
    "required",
    "items",
    "enum",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "format",
    "additionalProperties",
    "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline `$ref`s and collapse `anyOf: [X, null]` into X."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").split("/")[-1]])
        target.update(node)  # the field's own description wins over the model's
        node = target
    if "anyOf" in node:
        variants = [v for v in node.pop("anyOf") if v.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"cannot render a union of {variants!r} as a structural schema")
        merged = dict(variants[0])
        merged.update(node)
        return _resolve(merged, defs)
    if node.get("default", 0) is None:
        del node["default"]
    if isinstance(node.get("description"), str):
        node["description"] = " ".join(node["description"].split())
    if node.pop(UNSTORED_DEFAULT, False):
        default = node.pop("default")
        shown = default if isinstance(default, str) else json.dumps(default)
        node["description"] = f"{node.get('description', '')} Default {shown}.".strip()
    return {key: _resolve(value, defs) for key, value in node.items()}


def _structural(node: Any) -> Any:
    """Drop what a CRD schema may not hold and give every object node a type."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _KEEP:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub) for name, sub in value.items()}
        elif key in {"items", "additionalProperties"} and isinstance(value, dict):
            out[key] = _structural(value)
        else:
            out[key] = value
    if "properties" in out or out.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("type", "object")
    if out.get("type") == "object" and out.get("additionalProperties") is True:
        del out["additionalProperties"]
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "required" in out and "properties" in out:
        # A field with a default is never missing after defaulting, so it is not required.
        out["required"] = [
            name for name in out["required"] if "default" not in out["properties"].get(name, {})
        ]
        if not out["required"]:
            del out["required"]
    if out.get("type") == "integer" and "format" not in out:
        out["format"] = "int64" if abs(out.get("maximum", 0)) > 2**31 else "int32"
    return out


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one model, every `$ref` inlined."""
    raw = model.model_json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
    defs = raw.pop("$defs", {})
    resolved = _resolve(raw, defs)
    schema: dict[str, Any] = _structural(resolved)
    return schema


def _kind_schema(
    spec: type[BaseModel], status: type[BaseModel], description: str
) -> dict[str, Any]:
    spec_schema = openapi_schema(spec)
    status_schema = openapi_schema(status)
    return {
        "type": "object",
        "description": " ".join(description.split()),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "conveyor.dev/v1alpha1"},
            "kind": {"type": "string", "description": "The object's kind."},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }


def _crd(
    *,
    kind: str,
    plural: str,
    short_name: str,
    schema: dict[str, Any],
    columns: list[dict[str, Any]],
    selectable: list[str],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{v1alpha1.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "conveyor"},
        },
        "spec": {
            "group": v1alpha1.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short_name],
                "categories": ["conveyor"],
            },
            "versions": [
                {
                    "name": v1alpha1.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "selectableFields": [{"jsonPath": path} for path in selectable],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def background_job_crd() -> dict[str, Any]:
    schema = _kind_schema(
        v1alpha1.BackgroundJobSpec,
        v1alpha1.BackgroundJobStatus,
        v1alpha1.BackgroundJob.__doc__ or "",
    )
    started = "has(oldSelf.status) && has(oldSelf.status.attempts) && oldSelf.status.attempts > 0"
    how = (
        "once the job has started (status.attempts > 0); to run something else, create a new "
        "BackgroundJob (or replay this one, conveyor.dev/replay, to run it again as it is)"
    )
    # Its pods are named <job>-<attempt> and its scheduled runs <job>-<unix time>, and
    # both must fit in 63 characters. (A CRD may constrain metadata.name and nothing else
    # of metadata; a CEL rule could not name the field in its message.)
    schema["properties"]["metadata"] = {
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "maxLength": v1alpha1.MAX_JOB_NAME_LENGTH,
                "description": (
                    f"At most {v1alpha1.MAX_JOB_NAME_LENGTH} characters: the pods are named "
                    "<job>-<attempt> and the scheduled runs <job>-<unix time>, within 63."
                ),
            }
        },
    }
    schema["x-kubernetes-validations"] = [
        {
            "rule": "!has(self.spec.dependsOn) || !(self.metadata.name in self.spec.dependsOn)",
            "message": "a BackgroundJob cannot depend on itself",
            "fieldPath": ".spec.dependsOn",
        },
        {
            "rule": f"!({started}) || self.spec.template == oldSelf.spec.template",
            "message": f"spec.template cannot change {how}",
            "fieldPath": ".spec.template",
        },
        {
            "rule": (
                f"!({started}) || (has(self.spec.queue) ? self.spec.queue : '') == "
                "(has(oldSelf.spec.queue) ? oldSelf.spec.queue : '')"
            ),
            "message": f"spec.queue cannot change {how}",
            "fieldPath": ".spec.queue",
        },
        {
            "rule": (
                f"!({started}) || (has(self.spec.dependsOn) ? self.spec.dependsOn : []) == "
                "(has(oldSelf.spec.dependsOn) ? oldSelf.spec.dependsOn : [])"
            ),
            "message": f"spec.dependsOn cannot change {how}",
            "fieldPath": ".spec.dependsOn",
        },
    ]
    # One-off jobs read like batch/v1 Jobs (phase, attempts, last failure), recurring ones
    # like CronJobs (schedule, suspend, active runs, last schedule); each leaves the
    # other's columns empty.
    columns: list[dict[str, Any]] = [
        {"name": "Queue", "type": "string", "jsonPath": ".spec.queue"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Attempts", "type": "string", "jsonPath": ".status.attemptsSummary"},
        {"name": "Last Failure", "type": "string", "jsonPath": ".status.lastFailure.reason"},
        {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
        {"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend"},
        {"name": "Active", "type": "integer", "jsonPath": ".status.activeCount"},
        {"name": "Last Schedule", "type": "date", "jsonPath": ".status.lastScheduleTime"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority", "priority": 1},
        {"name": "Pod", "type": "string", "jsonPath": ".status.podName", "priority": 1},
        # future times as timestamps: kubectl shows a future "date" as <invalid>
        {
            "name": "Next Attempt",
            "type": "string",
            "jsonPath": ".status.nextAttemptAt",
            "priority": 1,
        },
        {"name": "Every", "type": "string", "jsonPath": ".spec.every", "priority": 1},
        {
            "name": "Next Schedule",
            "type": "string",
            "jsonPath": ".status.nextScheduleTime",
            "priority": 1,
        },
        {"name": "Result", "type": "string", "jsonPath": ".status.result", "priority": 1},
    ]
    return _crd(
        kind="BackgroundJob",
        plural="backgroundjobs",
        short_name="bgj",
        schema=schema,
        columns=columns,
        selectable=[".status.phase", ".spec.queue"],
    )


def job_queue_crd() -> dict[str, Any]:
    schema = _kind_schema(
        v1alpha1.JobQueueSpec, v1alpha1.JobQueueStatus, v1alpha1.JobQueue.__doc__ or ""
    )
    schema["required"] = []
    del schema["required"]
    columns: list[dict[str, Any]] = [
        {"name": "Concurrency", "type": "integer", "jsonPath": ".spec.concurrency"},
        {"name": "Running", "type": "integer", "jsonPath": ".status.running"},
        {"name": "Pending", "type": "integer", "jsonPath": ".status.pending"},
        {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Delayed", "type": "integer", "jsonPath": ".status.delayed", "priority": 1},
        {"name": "Succeeded", "type": "integer", "jsonPath": ".status.succeeded", "priority": 1},
        {"name": "Failed", "type": "integer", "jsonPath": ".status.failed", "priority": 1},
        {
            "name": "Oldest Pending",
            "type": "integer",
            "jsonPath": ".status.oldestPendingSeconds",
            "priority": 1,
        },
    ]
    return _crd(
        kind="JobQueue",
        plural="jobqueues",
        short_name="jq",
        schema=schema,
        columns=columns,
        selectable=[],
    )


def render() -> dict[str, str]:
    """File name → YAML text of every CRD."""
    header = "# Generated by `make crds` from operator/conveyor/api/v1alpha1/. Do not edit.\n"
    out = {}
    for filename, crd in (
        ("conveyor.dev_backgroundjobs.yaml", background_job_crd()),
        ("conveyor.dev_jobqueues.yaml", job_queue_crd()),
    ):
        out[filename] = header + yaml.safe_dump(crd, sort_keys=False, width=100)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", metavar="DIR", help="write the CRD files into DIR")
    parser.add_argument("--check", metavar="DIR", help="exit 1 if DIR's files differ")
    args = parser.parse_args(argv)
    rendered = render()
    if args.write:
        for name, text in rendered.items():
            (Path(args.write) / name).write_text(text)
        return 0
    if args.check:
        stale = [
            n
            for n, t in rendered.items()
            if not (Path(args.check) / n).is_file() or (Path(args.check) / n).read_text() != t
        ]
        for name in stale:
            print(f"{args.check}/{name} is out of date: run `make crds`", file=sys.stderr)
        return 1 if stale else 0
    sys.stdout.write("---\n".join(rendered.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
