# vps-baseline: the public interface is `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help setup images browser demo test lint unit clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## Create .venv with the pinned tool chain (offline collections)

$(VENV)/.installed: requirements.txt requirements.yml
	@echo "[setup] creating $(VENV) and installing requirements.txt"
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/ansible-galaxy collection install -r requirements.yml
	@touch $@

images: ## Make sure Docker answers, then build the local base images (cached)
	@scripts/ensure-docker
	@images/build debian12 bookworm
	@images/build debian12-minimal bookworm minimal
	@images/build debian13-minimal trixie minimal
	@images/build debian12-cloud bookworm cloud
	@images/build debian13-cloud trixie cloud
	@images/build debian12-client bookworm client

browser: ## Make sure Debian's chromium is there (the report's headless browser test)
	@scripts/ensure-browser

demo: setup images ## Bring a fresh-VPS container to baseline, twice; fail unless the re-run is changed=0
	@scripts/demo

test: setup images browser ## Lint, unit tests, then every Molecule scenario (timed)
	@scripts/test

lint: setup ## yamllint and ansible-lint (production profile)
	@scripts/test --only-lint

unit: setup browser ## pytest unit tests of the project's Python
	$(BIN)/pytest -q tests/unit

clean: ## Remove the demo container and generated files (keeps images and .venv)
	-docker rm -f vps-demo
	rm -rf reports build
