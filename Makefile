# backendai.cluster — one entry point for developers, CI and the demo.
#   make demo   deploy the demo cluster (six local containers) with site.yml
#   make test   the whole test suite: fast tier, then the Molecule multi-node scenario
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
ARTIFACTS ?= $(CURDIR)/artifacts
export BAI_ARTIFACTS_DIR := $(ARTIFACTS)
SCENARIO ?= multinode

.PHONY: help venv deps images artifacts demo demo-destroy test test-fast test-full lint unit \
        integration syntax badinv benchmark clean catalogue ee-context test-lifecycle

help:
	@echo "make demo      deploy the demo cluster (local containers)"
	@echo "make test      fast tier + module integration + Molecule multinode"
	@echo "make test-fast lint, unit, syntax, bad inventories"
	@echo "make integration modules against real etcd/PostgreSQL/manager and the Harbor fake"
	@echo "make test-full Molecule scenario SCENARIO=$(SCENARIO)"
	@echo "make test-lifecycle day-2 tests on the demo: restarts, stop/start, backup-rebuild-restore, reset (not in make test)"
	@echo "make benchmark converge figures (fresh, no-op, check, add an agent) and the etcd module"
	@echo "make ee-context build the collection and the AWX/Tower execution environment's build context"
	@echo "make catalogue print which units and ports each host of INVENTORY runs (default demo)"

venv: $(VENV)/.ok
$(VENV)/.ok: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	mkdir -p .collections/ansible_collections/backendai
	ln -sfn ../../.. .collections/ansible_collections/backendai/cluster
	touch $@

deps:
	tools/install-test-deps.sh

images:
	tests/images/build-node-image.sh trixie >/dev/null

artifacts: images
	tools/stage-artifacts.sh "$(ARTIFACTS)"
	tests/images/build-service-images.sh "$(ARTIFACTS)"
	tests/images/build-kernel-image.sh "$(ARTIFACTS)"
	tests/images/build-harbor-standin.sh "$(ARTIFACTS)"
	tests/images/build-licensed-standin.sh "$(ARTIFACTS)"

demo: venv images artifacts
	$(BIN)/ansible-playbook tests/testbed/create.yml -i inventories/demo
	$(BIN)/ansible-playbook playbooks/secrets.yml -i inventories/demo
	$(BIN)/ansible-playbook site.yml -i inventories/demo
	@$(BIN)/ansible-playbook playbooks/verify.yml -i inventories/demo

demo-destroy: venv
	$(BIN)/ansible-playbook tests/testbed/destroy.yml -i inventories/demo

# Two lanes side by side (see tools/test-lanes.sh): the same targets as
#   make test-fast integration test-full
# 43 min 47 s instead of 52 min 24 s in one after the other, measured on two cores with Docker
# emptied first; 30 min 20 s after the fast paths with the images present (README).
test: venv
	tools/test-lanes.sh

test-fast: venv deps lint unit syntax badinv

lint: venv
	$(BIN)/yamllint -s .
	$(BIN)/ruff check plugins tests tools benchmarks
	$(BIN)/ansible-lint --offline -q
	$(BIN)/python tools/check-argument-specs.py

unit: venv
	$(BIN)/pytest -q tests/unit

integration: venv deps images artifacts
	$(BIN)/pytest -q tests/integration

syntax: venv
	tests/syntax-check.sh

badinv: venv
	$(BIN)/pytest -q tests/precheck

test-full: venv images artifacts
	rm -f tests/output/molecule-verify.xml
	$(BIN)/molecule test -s $(SCENARIO) || { $(BIN)/python tools/junit-summary.py tests/output/molecule-verify.xml; exit 1; }

# Day-2 behaviour on the demo cluster (deployed first when needed): restarts after a failed run
# and their scope, stop/start, backup -> rebuild -> restore, reset. Rebuilds the demo's nodes;
# not part of `make test` (test time).
test-lifecycle: demo
	BAI_TEST_LIFECYCLE=1 $(BIN)/pytest -v -p no:cacheprovider --ansible-inventory inventories/demo \
	  --connection ansible -m lifecycle tests/molecule/multinode

benchmark: venv deps images artifacts
	$(BIN)/python benchmarks/etcd_put.py
	benchmarks/converge_times.sh inventories/demo

# The AWX/Tower execution environment: the collection archive in build/, the context for
# `podman build` (or docker build) in build/ee-context (execution-environment.yml).
ee-context: venv
	rm -rf build && mkdir -p build
	$(BIN)/ansible-galaxy collection build --output-path build .
	$(BIN)/ansible-builder create -f execution-environment.yml -c build/ee-context

INVENTORY ?= inventories/demo
catalogue: venv
	$(BIN)/ansible-playbook playbooks/catalogue.yml -i $(INVENTORY)

clean:
	rm -rf .cache tests/output build
