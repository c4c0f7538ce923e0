# Two commands matter: `make run` (the local stack) and `make test` (every check). Both install
# what they need from a fresh clone: uv in .tools/, the locked environment in .venv/.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PYTHONDONTWRITEBYTECODE := 1

UV_VERSION := 0.13.8
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help install lambda-deps lint typecheck synth cfn-lint test test-unit test-integration test-infra test-e2e run deploy clean

help:
	@echo "make run    - install, synthesize, start the local stack (API :3000, PSP :3001, moto :4566)"
	@echo "make test   - install and run every check: lint, types, unit, integration, infra (cdk-nag, cfn-lint), e2e"
	@echo "make synth  - synthesize the CDK app into cdk.out (cdk-nag findings fail it)"
	@echo "make deploy - cdk deploy with the CDK CLI v2 (needs AWS credentials)"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@touch $@

install: $(VENV)/.installed

# Lambda dependencies without Docker: the locked runtime dependencies (not the dev extra) as arm64
# wheels for the Python 3.14 runtime, hash-checked, into build/lambda-deps (infra/bundle.py adds them
# to the asset). boto3 and its dependencies come with the Lambda runtime.
LAMBDA_DEPS := build/lambda-deps
LAMBDA_PYTHON := 3.14
LAMBDA_PLATFORM := aarch64-manylinux2014
RUNTIME_PROVIDED := boto3 botocore s3transfer jmespath python-dateutil six

$(LAMBDA_DEPS)/.installed: pyproject.toml uv.lock | $(UV)
	rm -rf $(LAMBDA_DEPS)
	mkdir -p build
	$(UV) export --frozen --no-dev --no-emit-project --no-header --quiet \
		$(addprefix --no-emit-package ,$(RUNTIME_PROVIDED)) -o build/lambda-requirements.txt
	$(UV) pip install --quiet --target $(LAMBDA_DEPS) --python-platform $(LAMBDA_PLATFORM) \
		--python-version $(LAMBDA_PYTHON) --only-binary :all: --require-hashes --no-deps \
		-r build/lambda-requirements.txt
	@touch $@

lambda-deps: $(LAMBDA_DEPS)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

synth: install lambda-deps
	$(BIN)/payments synth --outdir cdk.out

cfn-lint: synth
	$(BIN)/cfn-lint

test: lint typecheck lambda-deps
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: install
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-infra: install lambda-deps
	$(BIN)/pytest tests/infra $(PYTEST_ARGS)

test-e2e: install
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

run: synth
	$(BIN)/payments local

node_modules/.bin/cdk:
	npm install --no-save --no-audit --no-fund aws-cdk@2

deploy: synth node_modules/.bin/cdk
	node_modules/.bin/cdk deploy --app cdk.out --require-approval never

clean:
	rm -rf $(VENV) $(TOOLS) cdk.out build .local .pytest_cache .mypy_cache .ruff_cache
