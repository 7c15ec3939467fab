# govcloud: the two commands are `make up` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
export GOVCLOUD_CACHE ?= $(HOME)/.cache/govcloud
VULNCHECK ?= kube-router

.PHONY: help deps tools vulncheck up test test-unit test-rebuild lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

deps:  ## install Debian packages and the virtualenv (idempotent)
	@scripts/deps

tools:  ## build or reuse the Pulumi CLI and the Kubernetes tools (in $(GOVCLOUD_CACHE)/bin; seconds when cached)
	@toolchain/build

vulncheck:  ## known vulnerabilities in the built Go tools, offline (minutes; VULNCHECK="kube-router k8s ...")
	@toolchain/vulncheck $(VULNCHECK)

up: deps tools  ## bring the lab cloud up: pulumi up of the lab stack, then prove the network
	$(BIN)/govcloud spec validate
	$(BIN)/govcloud pulumi up --stack lab --yes --skip-preview --refresh
	$(BIN)/govcloud net verify
	@$(BIN)/govcloud pulumi stack output --stack lab
	@echo "next: govcloud compliance check   (grade-3 evidence, out/compliance/report.md)"
	@echo "      govcloud loadtest run --profile workday --duration 60s --target lab"
	@echo "      govcloud pulumi preview --stack lab   (after editing examples/lab.yaml)"

test: deps lint tools  ## lint, then every test (unit and integration)
	$(BIN)/pytest

test-unit: deps  ## the fast unit tests alone
	$(BIN)/pytest -m unit

test-rebuild: deps tools  ## the tests that rebuild the whole lab inside the run (not in make test)
	$(BIN)/pytest -m rebuild

lint: deps  ## ruff, mypy and ansible-lint (production profile)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd playbooks && ../$(BIN)/ansible-lint --profile production --offline -q .

bench: deps  ## benchmarks, each reported as a ratio against a baseline in the same run
	$(BIN)/python -m bench

clean:  ## remove the virtualenv and build leftovers (the tool cache stays)
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
