# Conveyor: background jobs on Kubernetes.
#   make demo     bring up the local cluster and watch the operator run real jobs
#   make test     lint, types, unit tests, then the integration tests on a real cluster
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/dev.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | sha1sum | cut -c1-12)
CLUSTER_DIR ?= /var/lib/conveyor-cluster
PYTEST_ARGS ?=

.PHONY: help
help: ## show the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# Everything from the lock (requirements/README.md), checked against its hashes; then
# the project itself, built with the locked setuptools.
$(STAMP): pyproject.toml $(LOCK)
	@echo "[make] installing the locked dependencies ($(LOCK)) and the project into $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $@

.PHONY: venv
venv: $(STAMP) ## create the virtual environment with the project and its tools

UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock'

.PHONY: lock
lock: $(STAMP) ## re-resolve requirements/*.txt from pyproject.toml (after changing a dependency)
	$(UV_COMPILE) requirements/build.in -o requirements/build.txt
	$(UV_COMPILE) pyproject.toml -o requirements/operator.txt
	$(UV_COMPILE) pyproject.toml --extra test --extra lint requirements/build.in \
	  -c requirements/operator.txt -c requirements/build.txt -o requirements/dev.txt

.PHONY: crds
crds: $(STAMP) ## regenerate crds/ (and the chart's copy, and docs/api.md) from the pydantic models
	$(BIN)/python -m conveyor.api.crd --write crds
	$(MAKE) --no-print-directory chart-crds api-docs

.PHONY: api-docs
api-docs: $(STAMP) ## regenerate docs/api.md (the API reference) from the pydantic models
	$(BIN)/python -m conveyor.api.docs --write docs/api.md

.PHONY: lint
lint: $(STAMP) ## ruff, mypy (strict on the core), import layering, CRDs and docs/api.md up to date
	$(BIN)/ruff check operator tests bench chaos
	$(BIN)/ruff format --check operator tests bench chaos
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m conveyor.api.crd --check crds
	$(BIN)/python -m conveyor.api.docs --check docs/api.md

.PHONY: unit
unit: $(STAMP) ## the pure core's tests (seconds, no cluster)
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

CHROMIUM ?= /usr/bin/chromium

.PHONY: chromium
chromium: ## Debian's chromium, for the dashboard's browser tests (skipped when present)
	@test -x $(CHROMIUM) || { echo "[make] installing chromium (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

.PHONY: integration
integration: $(STAMP) chromium ## the operator against the real cluster (brings the local one up if KUBECONFIG names none)
	$(BIN)/pytest tests/cluster tests/integration -q $(PYTEST_ARGS)
	$(BIN)/pytest tests/e2e -q $(PYTEST_ARGS)

.PHONY: test
test: lint unit integration ## everything CI runs

.PHONY: cluster
cluster: ## bring up (or reuse) the local single-node cluster
	bash tests/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## stop the local cluster and remove its state
	bash tests/cluster/down.sh

.PHONY: run
run: $(STAMP) ## run the operator locally against the current kubeconfig
	$(BIN)/python -m conveyor

DASHBOARD_ARGS ?= -A

.PHONY: dashboard
dashboard: $(STAMP) ## the web dashboard on http://localhost:8099/, as you (current kubeconfig): DASHBOARD_ARGS="-n shop --allow-actions"
	$(BIN)/kubectl-conveyor dashboard $(DASHBOARD_ARGS)

BENCH_ARGS ?=

BENCH_STAMP := $(VENV)/.bench-$(shell sha1sum pyproject.toml | cut -c1-12)

$(BENCH_STAMP): $(STAMP)
	@echo "[make] installing the benchmark's extras (matplotlib) into $(VENV)"
	@$(BIN)/pip install --quiet --disable-pip-version-check 'matplotlib>=3.8'  # pyproject's bench extra; beside the lock, which it leaves alone
	@rm -f $(VENV)/.bench-* && touch $@

.PHONY: bench
bench: $(BENCH_STAMP) ## benchmarks on the local cluster with kwok nodes (long; not in test): BENCH_ARGS="--jobs 500"
	$(BIN)/python -m bench $(BENCH_ARGS)

CHAOS_ARGS ?=

.PHONY: chaos
chaos: $(STAMP) ## fault injection on the local cluster, with figures (~40 min; restarts its components): CHAOS_ARGS="--quick"
	bash tests/cluster/up.sh --with-kwok
	$(BIN)/python -m chaos $(CHAOS_ARGS)

# ---------------------------------------------------------------- image, chart, demo, e2e
HELM ?= $(firstword $(wildcard $(CLUSTER_DIR)/bin/helm) $(wildcard /var/cache/conveyor/bin/helm-*/helm) helm)

.PHONY: image
image: $(STAMP) ## build the operator image without docker and import it into the local cluster
	bash images/operator/build-local.sh

.PHONY: chart-crds
chart-crds: ## copy the generated crds/ into the chart's crds/ (a test fails when they drift)
	rm -f charts/conveyor/crds/*.yaml
	cp crds/*.yaml charts/conveyor/crds/

.PHONY: chart-lint
chart-lint: ## helm lint --strict the chart, cluster-wide and namespaced, with and without monitoring, with the web dashboard
	$(HELM) lint --strict charts/conveyor
	$(HELM) lint --strict charts/conveyor --set 'watchNamespaces={team-a,team-b}'
	$(HELM) lint --strict charts/conveyor $(CHART_MONITORING)
	$(HELM) lint --strict charts/conveyor --set 'watchNamespaces={team-a,team-b}' $(CHART_MONITORING)
	$(HELM) lint --strict charts/conveyor --set dashboard.enabled=true --set dashboard.actions=true

CHART_MONITORING := --set metrics.serviceMonitor.enabled=true --set metrics.dashboard.enabled=true \
	--set metrics.prometheusRule.enabled=true

.PHONY: demo
demo: $(STAMP) ## local cluster + operator image + chart, then example jobs running (idempotent)
	bash examples/demo.sh

.PHONY: e2e
e2e: $(STAMP) ## the chart installed into the real cluster, driven with helm and kubectl
	$(BIN)/pytest tests/e2e -q $(PYTEST_ARGS)
