# stellaops.deploy — set-up, sandbox, demo and tests. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
export PATH := $(VENV)/bin:$(ROOT)/.tools/bin:$(PATH)
export STELLAOPS_TOOLS_DIR := $(ROOT)/.tools/bin
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
PYTHON := $(VENV)/bin/python
CHANNEL ?= stable
# The release the demo starts the fleet from, so that it has a deployment to roll back to.
DEMO_FROM ?= 2025.09.0
# Stable and airgap upgrades need an approval (pre-flight); the demo gives it as an operator would.
DEMO_APPROVAL := '{"stellaops_approval": {"approved_by": "demo operator", "ticket": "DEMO-1"}}'

.PHONY: help setup sandbox-up sandbox-down sandbox-status demo test lint sanity unit integration bench build clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

setup:  ## virtualenv with pinned requirements, Docker Compose v2, helm (idempotent)
	@scripts/setup.sh

sandbox-up: setup  ## start the local sandbox (Docker engine, registry, PostgreSQL, object storage)
	@$(PYTHON) scripts/sandbox.py up

sandbox-down:  ## stop what sandbox-up started
	@if [ -x $(PYTHON) ]; then $(PYTHON) scripts/sandbox.py down; fi

sandbox-status:  ## say which sandbox parts answer
	@$(PYTHON) scripts/sandbox.py status

demo: sandbox-up  ## set up, start the sandbox, then upgrade the CHANNEL's targets (SSH fleet, Helm) to its newest release, roll back, upgrade again
	ansible-playbook playbooks/upgrade.yml -e channel=$(CHANNEL) -e release=$(DEMO_FROM) -e $(DEMO_APPROVAL)
	ansible-playbook playbooks/upgrade.yml -e channel=$(CHANNEL) -e $(DEMO_APPROVAL)
	ansible-playbook playbooks/rollback.yml -e channel=$(CHANNEL)
	ansible-playbook playbooks/upgrade.yml -e channel=$(CHANNEL) -e $(DEMO_APPROVAL)

# The sandbox starts (about 4 min on a new machine) while lint, sanity and unit tests run; its output is
# shown once it is up, and integration waits for it.
test: setup  ## every test: lint, sanity, unit, integration (starts the sandbox meanwhile)
	@mkdir -p tests/output
	@$(PYTHON) scripts/sandbox.py up > tests/output/sandbox-up.log 2>&1 & sandbox=$$!; \
	  checks=0; $(MAKE) --no-print-directory lint sanity unit import || checks=$$?; \
	  up=0; wait $$sandbox || up=$$?; cat tests/output/sandbox-up.log; \
	  if [ $$checks -ne 0 ] || [ $$up -ne 0 ]; then echo "make test: lint, sanity, unit or import failed ($$checks), sandbox-up ($$up)"; exit 1; fi
	@$(MAKE) --no-print-directory integration

lint: setup  ## ansible-lint (production profile), ruff, mypy
	ansible-lint
	ruff check .
	mypy

sanity: setup  ## ansible-test sanity on a copy under ansible_collections/stellaops/deploy
	scripts/sanity.sh

# Two workers: many unit tests wait on purpose (timeouts against peers that never answer), so two halve the time.
unit: setup  ## pytest unit tests
	pytest -q -n 2 tests/unit --junitxml=tests/output/junit-unit.xml

.PHONY: import
import: setup  ## galaxy-importer on the built tarball
	scripts/galaxy_import.sh

# Whole modules on two workers, the longest first (tests/integration/conftest.py orders them; xdist's own reorder,
# by number of tests, would start the longest module late and leave one worker idle at the end).
integration: sandbox-up  ## pytest integration scenarios against the running sandbox
	pytest -q --durations=20 -n 2 --dist loadfile --no-loadscope-reorder tests/integration --junitxml=tests/output/junit-integration.xml

bench: sandbox-up  ## benchmarks: ratios against a floor measured in the same run
	@for bench in tests/benchmarks/bench_*.py; do echo "== $$bench"; $(PYTHON) $$bench; done

build: setup  ## build the collection tarball and install it into a scratch path
	ansible-galaxy collection build --force --output-path .cache/dist
	ansible-galaxy collection install --force -p .cache/installed .cache/dist/stellaops-deploy-*.tar.gz

clean: sandbox-down  ## stop the sandbox and remove generated files (keeps .venv and .tools)
	rm -rf .cache/sanity .cache/dist .cache/installed tests/output
