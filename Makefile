# Shipyard: `make help` lists the targets. Each target runs one short command; scripts do the work.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
SHIPYARD := $(VENV)/bin/shipyard
PYTEST := $(VENV)/bin/pytest
CLUSTER ?=

.PHONY: help install up down status logs test test-unit test-integration test-e2e chart-tools chart-test infra-test chart-golden rules dashboards lint format lock clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Install what is missing: Debian programs, the locked Python environments
	@scripts/install.sh

up: install ## Start the platform (embedded by default; CLUSTER=kind|gke for a cluster) and run the main job
	@scripts/up.sh "$(CLUSTER)"

down: ## Stop everything `make up` started (CLUSTER=kind|gke: destroy that cluster)
	@if [ -n "$(CLUSTER)" ]; then scripts/infra.sh down "$(CLUSTER)"; else $(SHIPYARD) down; fi

status: ## Show each component's health, pid, restarts and endpoint
	@$(SHIPYARD) status

logs: ## Print the last lines of every component's log
	@$(SHIPYARD) logs

test: install chart-tools ## Run every test that runs on this machine (unit, integration, e2e)
	@$(PYTEST) tests

test-unit: install ## Run the unit tests only (fast, no processes)
	@$(PYTEST) tests/unit

test-integration: install ## Run the integration tests (real servers on loopback ports)
	@$(PYTEST) tests/integration

test-e2e: install ## Run the end-to-end tests (the whole platform through the CLI)
	@$(PYTEST) tests/e2e

chart-tools: ## Build the chart and cluster tools once into the tools cache (helm, helm-unittest, kubeconform, tofu, checkov, schemas)
	@scripts/chart.sh tools

chart-test: install chart-tools ## Lint, render, validate (kubeconform, checkov) and test the Helm chart, offline
	@$(PYTEST) tests/integration/test_helm_chart.py

infra-test: chart-tools ## Test the OpenTofu/Terraform code offline: fmt, validate, tofu test (mocked providers), chart values, tflint, checkov
	@scripts/infra.sh test

chart-golden: ## Re-render the chart's golden manifests (helm/golden/) after a reviewed change
	@scripts/chart.sh golden

rules: install ## Regenerate the Prometheus rule files and the chart goldens
	@$(VENV)/bin/python -m shipyard.observability.rules --write && scripts/chart.sh golden

dashboards: install ## Regenerate the Grafana dashboards (JSON) and the chart goldens
	@$(VENV)/bin/python -m shipyard.observability.dashboards --write && scripts/chart.sh golden

pipelines: install ## Recompile the KFP pipeline to its golden IR YAML (tests/golden/)
	@$(SHIPYARD) pipeline compile training --out tests/golden/training_pipeline.yaml

image: ## Build the container image the pipeline steps run in (needs a Docker engine)
	@command -v docker >/dev/null || { echo "error: make image needs docker; this machine has none" >&2; exit 2; }
	docker build -t ghcr.io/shipyard-mlops/shipyard:$$($(VENV)/bin/python -c 'import shipyard; print(shipyard.__version__)') .

lint: install ## Check style and common mistakes (ruff)
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: install ## Reformat the code (ruff)
	@$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

lock: install ## Re-resolve requirements.lock and requirements-triton-stub.lock after a bound changed
	@scripts/lock.sh

.PHONY: bench bench-quick
bench: install ## Benchmarks B1-B6 side by side with their peers (long); updates README's Performance
	@$(VENV)/bin/python -m bench.run

bench-quick: install ## B1 and B3 with every peer, one short repetition (minutes); prints the table
	@$(VENV)/bin/python -m bench.run --quick

clean: ## Remove caches made by tests and tools (keeps .venv and the state dir)
	@rm -rf .pytest_cache .ruff_cache build *.egg-info platform/*.egg-info
