# The two commands of the README:
#   make synth   set up (venv, pip, npm ci) and synthesize the sample app into cdk.out
#   make test    set up and run every check: ruff, mypy --strict, pytest (incl. cdk synth + cfn-lint)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
# jsii prints an end-of-life banner on Node 20 (stderr, every synth). Nothing here silences it,
# so make shows what a new machine shows; the README (Node.js) names the variable that does.

.PHONY: setup synth deploy test lint
setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: setup
	npx cdk synth --quiet
	$(BIN)/python -m rds_force_ssl.report cdk.out

deploy: setup
	npx cdk deploy

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest
