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

.PHONY: setup synth deploy test lint integ integ-update integ-deploy
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
	$(BIN)/rds-force-ssl report cdk.out

deploy: setup
	npx cdk deploy

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -n auto --dist loadfile

# The integration test, tests/integ (docs/integration-test.md).
# integ-runner without an account compares the snapshot (what CI does, through pytest); the
# --app shim is explained in tests/integ/schema_shim.py.
INTEG := npx integ-runner --directory tests/integ --language python \
	--app "python3 tests/integ/schema_shim.py {filePath}"
REGION ?= us-east-1

integ: setup
	$(INTEG)

# After a template change you mean: rewrite the snapshot without deploying, then review its diff.
integ-update: setup
	$(INTEG) --update-on-failed --dry-run

# With AWS credentials: deploy, assert, destroy (a few cents; see docs/integration-test.md).
integ-deploy: setup
	$(INTEG) --force --parallel-regions $(REGION)
