"""The CRDs: committed YAML up to date, structural schemas, names, columns, CEL rules; and the
API models accept the manifests of the design notes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.api import crd, v1alpha1

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
BGJ_FILE = "conveyor.dev_backgroundjobs.yaml"
JQ_FILE = "conveyor.dev_jobqueues.yaml"

RENDERED = crd.render()
CRDS = {name: yaml.safe_load(text) for name, text in RENDERED.items()}
FORBIDDEN = {"$ref", "$defs", "definitions", "anyOf", "oneOf", "allOf", "not", "nullable", "title"}
ROOT_PROPERTIES_WITHOUT_DESCRIPTION = {"metadata"}


def schema_of(filename: str) -> dict[str, Any]:
    (version,) = CRDS[filename]["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def version_of(filename: str) -> dict[str, Any]:
    (version,) = CRDS[filename]["spec"]["versions"]
    return version


def nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path: properties, items and additionalProperties."""
    yield path or ".", node
    for name, sub in (node.get("properties") or {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from nodes(node["additionalProperties"], f"{path}{{}}")


def resolve(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    """The node at a dotted path like .status.lastFailure.reason; None past an open object."""
    node = schema
    for segment in json_path.strip(".").split("."):
        properties = node.get("properties")
        if properties is None:
            return None  # metadata, or a preserve-unknown-fields object
        assert segment in properties, f"{json_path}: no field {segment!r}"
        node = properties[segment]
    return node


BOTH = pytest.mark.parametrize("filename", [BGJ_FILE, JQ_FILE])


# ---------------------------------------------------------------- drift


@pytest.mark.parametrize("filename", sorted(RENDERED))
def test_committed_crds_are_up_to_date(filename):
    """crds/*.yaml equal a fresh rendering of the pydantic models."""
    committed = CRD_DIR / filename
    assert committed.is_file(), f"{committed} is missing: run `make crds`"
    assert committed.read_text() == RENDERED[filename], (
        f"{committed} is out of date with operator/conveyor/api/v1alpha1/: run `make crds`"
    )


def test_no_stray_crd_files():
    """crds/ holds exactly the rendered files."""
    assert sorted(p.name for p in CRD_DIR.glob("*.yaml")) == sorted(RENDERED)


# ---------------------------------------------------------------- structural schema


@BOTH
def test_every_node_has_a_type(filename):
    """Every schema node has a type, or preserves unknown fields (a structural schema)."""
    for path, node in nodes(schema_of(filename)):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields") is True, path
        if node.get("type") == "object" and "properties" in node:
            assert "additionalProperties" not in node, path


@BOTH
def test_no_constructs_a_crd_cannot_hold(filename):
    """No $ref, anyOf, oneOf, allOf, not, nullable or title anywhere in the schema."""

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                if path.endswith(".properties"):
                    walk(sub, f"{path}.{key}")  # a field may be called anything
                    continue
                assert key not in FORBIDDEN, f"{path}.{key}"
                walk(sub, f"{path}.{key}")
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                walk(sub, f"{path}[{i}]")

    walk(schema_of(filename), "")


@BOTH
def test_every_property_is_described(filename):
    """Every property has a non-empty description (kubectl explain shows them)."""
    schema = schema_of(filename)
    for path, node in nodes(schema):
        for name, sub in (node.get("properties") or {}).items():
            if path == "." and name in ROOT_PROPERTIES_WITHOUT_DESCRIPTION:
                continue
            description = sub.get("description")
            assert isinstance(description, str), f"{path}.{name}"
            assert description.strip(), f"{path}.{name}"


@BOTH
def test_types_are_openapi_types(filename):
    """Types are OpenAPI's; integers carry a format; required fields exist."""
    for path, node in nodes(schema_of(filename)):
        if "type" in node:
            assert node["type"] in {"object", "array", "string", "integer", "number", "boolean"}
        if node.get("type") == "integer":
            assert node.get("format") in {"int32", "int64"}, path
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), path
        for name in node.get("required", []):
            assert name in node.get("properties", {}), f"{path}: required {name!r} is no field"


def test_spec_required_and_status_optional():
    """A BackgroundJob needs a spec (with a template); a JobQueue needs nothing."""
    bgj = schema_of(BGJ_FILE)
    assert bgj["required"] == ["spec"]
    assert "template" in bgj["properties"]["spec"]["required"]
    assert "required" not in schema_of(JQ_FILE)


# ---------------------------------------------------------------- names, columns, subresources


@pytest.mark.parametrize(
    ("filename", "kind", "plural", "short"),
    [
        (BGJ_FILE, "BackgroundJob", "backgroundjobs", "bgj"),
        (JQ_FILE, "JobQueue", "jobqueues", "jq"),
    ],
)
def test_names(filename, kind, plural, short):
    """Group conveyor.dev, namespaced, short names bgj/jq, category conveyor."""
    body = CRDS[filename]
    assert body["apiVersion"] == "apiextensions.k8s.io/v1"
    assert body["metadata"]["name"] == f"{plural}.conveyor.dev"
    assert body["spec"]["group"] == v1alpha1.GROUP == "conveyor.dev"
    assert body["spec"]["scope"] == "Namespaced"
    names = body["spec"]["names"]
    assert names["kind"] == kind
    assert names["plural"] == plural
    assert names["shortNames"] == [short]
    assert names["categories"] == ["conveyor"]
    version = version_of(filename)
    assert version["name"] == v1alpha1.VERSION == "v1alpha1"
    assert version["served"] is True
    assert version["storage"] is True


@BOTH
def test_status_subresource(filename):
    """status is a subresource: users write spec, the operator writes status."""
    assert version_of(filename)["subresources"] == {"status": {}}


@pytest.mark.parametrize(
    ("filename", "columns"),
    [
        (
            BGJ_FILE,
            [
                "Queue",
                "Phase",
                "Attempts",
                "Last Failure",
                "Schedule",
                "Suspend",
                "Active",
                "Last Schedule",
                "Age",
            ],
        ),
        (JQ_FILE, ["Concurrency", "Running", "Pending", "Paused", "Age"]),
    ],
)
def test_printer_columns(filename, columns):
    """kubectl get shows the first questions' answers; every column's path exists."""
    all_columns = version_of(filename)["additionalPrinterColumns"]
    assert [c["name"] for c in all_columns if not c.get("priority")] == columns
    schema = schema_of(filename)
    for column in all_columns:
        assert column["type"] in {"string", "integer", "number", "boolean", "date"}
        if column["jsonPath"] != ".metadata.creationTimestamp":
            node = resolve(schema, column["jsonPath"])
            assert node is not None, column
            expected = {"date": "string"}.get(column["type"], column["type"])
            assert node["type"] == expected, column


def test_attempts_column_reads_the_summary():
    """The Attempts column shows status.attemptsSummary (like 2/5)."""
    (column,) = [
        c for c in version_of(BGJ_FILE)["additionalPrinterColumns"] if c["name"] == "Attempts"
    ]
    assert column["jsonPath"] == ".status.attemptsSummary"


def test_selectable_fields():
    """BackgroundJobs are selectable by phase and queue (kubectl get --field-selector)."""
    fields = [f["jsonPath"] for f in version_of(BGJ_FILE)["selectableFields"]]
    assert fields == [".status.phase", ".spec.queue"]
    for path in fields:
        assert resolve(schema_of(BGJ_FILE), path)["type"] == "string"


# ---------------------------------------------------------------- CEL


def rules(filename: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for path, node in nodes(schema_of(filename)):
        for rule in node.get("x-kubernetes-validations", []):
            yield path, node, rule


SELF_PATH = re.compile(r"\bself((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
ALWAYS_PRESENT = {"metadata", "metadata.name"}


def balanced(text: str) -> bool:
    depth, quote = 0, None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0 and quote is None


def test_there_are_cel_rules():
    """The CEL rules this test checks exist at all (the walk finds them)."""
    assert len(list(rules(BGJ_FILE))) >= 8


@BOTH
def test_cel_rules_are_well_formed(filename):
    """Every CEL rule has a rule, a message, balanced brackets, and a fieldPath that exists."""
    for path, node, rule in rules(filename):
        assert set(rule) <= {"rule", "message", "fieldPath", "reason", "messageExpression"}, path
        assert rule.get("rule", "").strip(), path
        assert rule.get("message", "").strip(), path
        assert balanced(rule["rule"]), rule["rule"]
        if "fieldPath" in rule:
            assert rule["fieldPath"].startswith("."), rule
            assert resolve(node, rule["fieldPath"]) is not None, rule


@BOTH
def test_cel_rules_reference_existing_fields_safely(filename):
    """Every self.x a CEL rule reads exists and is guarded by has() or always present."""
    for path, node, rule in rules(filename):
        text = rule["rule"]
        for match in SELF_PATH.finditer(text):
            dotted = match.group(1).lstrip(".")
            here = node
            for depth, segment in enumerate(dotted.split("."), start=1):
                properties = here.get("properties")
                if properties is None:
                    break
                assert segment in properties, f"{path}: {text!r} reads unknown {segment!r}"
                prefix = ".".join(dotted.split(".")[:depth])
                guarded = f"has(self.{prefix})" in text or f"has(self.{dotted})" in text
                present = (
                    segment in here.get("required", [])
                    or "default" in properties[segment]
                    or (path == "." and prefix in ALWAYS_PRESENT)
                )
                assert guarded or present, f"{path}: {text!r} reads self.{prefix} unguarded"
                here = properties[segment]


# ---------------------------------------------------------------- the design notes' manifests

DESIGN_QUEUE = """
apiVersion: conveyor.dev/v1alpha1
kind: JobQueue
metadata: {name: email, namespace: shop}
spec:
  concurrency: 5
  rateLimit: {max: 10, periodSeconds: 1}
  paused: false
  defaults:
    retry: {maxAttempts: 5, backoff: {strategy: Exponential, initialDelaySeconds: 1}}
    activeDeadlineSeconds: 600
    ttlSecondsAfterFinished: 86400
    priorityClassName: normal
status:
  pending: 12
  delayed: 3
  running: 5
  succeeded: 140
  failed: 2
  oldestPendingSeconds: 42
  conditions:
  - {type: Ready, status: "True", reason: Admitting, message: admitting jobs,
     lastTransitionTime: "2026-12-01T09:00:00Z"}
  observedGeneration: 1
"""

DESIGN_JOB = """
apiVersion: conveyor.dev/v1alpha1
kind: BackgroundJob
metadata: {name: send-confirmation-123, namespace: shop}
spec:
  queue: email
  priority: 10
  priorityClassName: high
  template:
    spec:
      containers:
      - name: worker
        image: registry.example/mailer:1.4
        command: [send-email, --order, "123"]
  retry:
    maxAttempts: 5
    backoff:
      strategy: Exponential
      initialDelaySeconds: 1
      multiplier: 2
      maxDelaySeconds: 300
      jitter: 0.1
    nonRetryableExitCodes: [2]
  activeDeadlineSeconds: 600
  startAt: "2026-12-01T09:00:00Z"
  dependsOn: [charge-payment-123]
  ttlSecondsAfterFinished: 86400
  suspend: false
status:
  phase: BackingOff
  attempts: 2
  podName: send-confirmation-123-2
  lastFailure: {attempt: 2, reason: Error, exitCode: 1, message: boom, logTail: "x"}
"""

DESIGN_RECURRING = """
spec:
  schedule: "0 9 * * *"
  timeZone: Europe/Berlin
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 300
  successfulRunsHistoryLimit: 3
  failedRunsHistoryLimit: 1
  template: {spec: {containers: [{name: report, image: registry.example/report:2}]}}
"""


def test_design_job_queue_is_accepted():
    """The JobQueue of the design notes parses, every field where the notes put it."""
    queue = v1alpha1.JobQueue.model_validate(yaml.safe_load(DESIGN_QUEUE))
    assert queue.spec.concurrency == 5
    assert queue.spec.rate_limit == v1alpha1.RateLimit(max=10, period_seconds=1)
    assert queue.spec.paused is False
    defaults = queue.spec.defaults
    assert defaults is not None
    assert defaults.retry.max_attempts == 5
    assert defaults.retry.backoff.strategy == "Exponential"
    assert defaults.active_deadline_seconds == 600
    assert defaults.ttl_seconds_after_finished == 86400
    assert defaults.priority_class_name == "normal"
    assert queue.status.oldest_pending_seconds == 42
    assert queue.status.conditions[0].reason == "Admitting"


def test_design_background_job_is_accepted():
    """The BackgroundJob of the design notes parses, every field where the notes put it."""
    job = v1alpha1.BackgroundJob.model_validate(yaml.safe_load(DESIGN_JOB))
    spec = job.spec
    assert spec.queue == "email"
    assert spec.priority == 10
    assert spec.priority_class_name == "high"
    assert spec.template.spec.containers[0].image == "registry.example/mailer:1.4"
    assert spec.template.spec.containers[0].model_extra == {
        "command": ["send-email", "--order", "123"]
    }
    assert spec.retry.max_attempts == 5
    assert spec.retry.backoff.jitter == 0.1
    assert spec.retry.backoff.max_delay_seconds == 300
    assert spec.retry.non_retryable_exit_codes == [2]
    assert spec.active_deadline_seconds == 600
    assert spec.start_at.isoformat() == "2026-12-01T09:00:00+00:00"
    assert spec.depends_on == ["charge-payment-123"]
    assert spec.ttl_seconds_after_finished == 86400
    assert spec.is_recurring is False
    assert job.status.phase == "BackingOff"
    assert job.status.last_failure.exit_code == 1


def test_design_recurring_job_is_accepted():
    """The recurring job of the design notes parses as a recurring spec."""
    spec = v1alpha1.BackgroundJobSpec.model_validate(yaml.safe_load(DESIGN_RECURRING)["spec"])
    assert spec.is_recurring
    assert spec.schedule == "0 9 * * *"
    assert spec.time_zone == "Europe/Berlin"
    assert spec.concurrency_policy == "Forbid"
    assert spec.starting_deadline_seconds == 300


def test_models_reject_what_the_schema_rejects():
    """Bounds and patterns live in the models too: a bad queue name or zero attempts fails."""
    base = yaml.safe_load(DESIGN_JOB)["spec"]
    with pytest.raises(ValueError, match="queue"):
        v1alpha1.BackgroundJobSpec.model_validate({**base, "queue": "Not_A_Name"})
    with pytest.raises(ValueError, match=r"maxAttempts|max_attempts"):
        v1alpha1.BackgroundJobSpec.model_validate({**base, "retry": {"maxAttempts": 0}})
    with pytest.raises(ValueError, match="containers"):
        v1alpha1.BackgroundJobSpec.model_validate(
            {**base, "template": {"spec": {"containers": []}}}
        )


# ---------------------------------------------------------------- settled for v1beta1


@pytest.mark.parametrize("filename", [BGJ_FILE, JQ_FILE])
def test_conditions_are_a_list_map_with_every_field_required(filename):
    """As metav1.Condition and Kueue have them: keyed by type, reason, message and
    lastTransitionTime required, reason a CamelCase word."""
    conds = resolve(schema_of(filename), ".status.conditions")
    assert conds["x-kubernetes-list-type"] == "map"
    assert conds["x-kubernetes-list-map-keys"] == ["type"]
    item = conds["items"]
    assert set(item["required"]) == {"type", "status", "reason", "message", "lastTransitionTime"}
    assert item["properties"]["reason"]["minLength"] == 1
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    for name in ("reason", "message"):
        assert "default" not in item["properties"][name]


def test_a_condition_without_reason_message_or_time_does_not_parse():
    with pytest.raises(ValueError, match=r"reason|message|lastTransitionTime"):
        v1alpha1.Condition.model_validate({"type": "Ready", "status": "True"})


@pytest.mark.parametrize(
    ("filename", "path"),
    [(BGJ_FILE, ".spec"), (JQ_FILE, ".spec.defaults")],
)
def test_two_deadlines_and_the_deprecated_name(filename, path):
    """attemptDeadlineSeconds per attempt, jobDeadlineSeconds job-wide (batch/v1's meaning),
    activeDeadlineSeconds deprecated and exclusive with its new name."""
    node = resolve(schema_of(filename), path)
    fields = node["properties"]
    assert "per attempt" in fields["attemptDeadlineSeconds"]["description"].lower()
    assert "whole job" in fields["jobDeadlineSeconds"]["description"].lower()
    assert fields["activeDeadlineSeconds"]["description"].startswith("Deprecated")
    rules = [r["rule"] for r in node["x-kubernetes-validations"]]
    assert "!(has(self.attemptDeadlineSeconds) && has(self.activeDeadlineSeconds))" in rules


# ---------------------------------------------------------------- docs/api.md


def test_the_api_reference_is_up_to_date():
    """docs/api.md is what the models render (`make api-docs`), like the CRDs."""
    from conveyor.api import docs

    committed = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    assert committed == docs.render(), "docs/api.md is stale: run `make api-docs`"


def test_the_api_reference_names_every_field_with_an_example_manifest():
    """Every property of both CRDs has a row; the example manifests parse."""
    from conveyor.api import docs

    docs.check_examples()
    text = docs.render()
    for filename, root in ((BGJ_FILE, "BackgroundJob"), (JQ_FILE, "JobQueue")):
        schema = schema_of(filename)
        for part in ("spec", "status"):
            for path, _node in nodes(schema["properties"][part], part):
                if path == part or path.endswith(("[]", "}")):
                    continue  # the part itself, a list's items, a map's values
                assert f"`{path}`" in text, f"{root}: {path} is missing from docs/api.md"


RECURRING_DEFAULTS = {
    "concurrencyPolicy": "Allow",
    "missedRunsPolicy": "RunLatest",
    "maxMissedRuns": 10,
    "successfulRunsHistoryLimit": 3,
    "failedRunsHistoryLimit": 1,
}


def test_the_recurring_fields_defaults_are_the_operators_not_stored_in_every_job():
    """A schema default is stored in every job and its managed fields, one-shot jobs too, and
    costs the API server on every later status write: these the model applies, and the
    description (`kubectl explain`) states."""
    spec = schema_of(BGJ_FILE)["properties"]["spec"]["properties"]
    parsed = v1alpha1.BackgroundJobSpec.model_validate(
        {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
    ).model_dump(by_alias=True)
    for field, default in RECURRING_DEFAULTS.items():
        assert "default" not in spec[field], field
        assert spec[field]["description"].endswith(f" Default {default}."), field
        assert parsed[field] == default, field
    assert spec["suspend"]["default"] is False  # the Suspend column shows it
