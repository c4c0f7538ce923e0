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
# The tests that need no local stack run in parallel (each worker synthesizes the app once: about 0.5 GB);
# the end-to-end tests share one local stack, in order.
TEST_WORKERS ?= 2

.PHONY: help install lambda-deps cdk-cli checkov-env lint typecheck synth cfn-lint test test-unit test-integration \
	test-infra test-e2e run deploy clean

help:
	@echo "make run    - install, synthesize, start the local stack (API :3000, PSP :3001, moto :4566)"
	@echo "make test   - install and run every check: lint, types, unit, integration, infra (CDK CLI synthesis"
	@echo "              per stage and region, cdk-nag, cfn-lint, Checkov), e2e"
	@echo "make synth  - synthesize the local stack's template into cdk.out (cdk-nag findings fail it)"
	@echo "make deploy STAGE=dev|prod PSP_BASE_URL=https://... PAYOUT_PROVIDER_URL=https://... [ALARM_EMAIL=...]"
	@echo "           - synthesize with the CDK CLI v2 for the credentials' account and region, then deploy"

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

# The CDK CLI v2, pinned in package.json / package-lock.json: `npx aws-cdk@2` runs this copy.
CDK_CLI := node_modules/.bin/cdk

$(CDK_CLI): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

cdk-cli: $(CDK_CLI)

# Checkov, in a locked environment of its own (tools/checkov: it pins a boto3 the project cannot share).
CHECKOV_ENV := $(TOOLS)/checkov

$(CHECKOV_ENV)/.installed: tools/checkov/pyproject.toml tools/checkov/uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(abspath $(CHECKOV_ENV)) $(UV) sync --frozen --quiet --project tools/checkov \
		--python $(PYTHON)
	@touch $@

checkov-env: $(CHECKOV_ENV)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

synth: install lambda-deps
	$(BIN)/payments synth --outdir cdk.out

cfn-lint: synth
	$(BIN)/cfn-lint

test: lint typecheck lambda-deps cdk-cli checkov-env
	$(BIN)/pytest tests/unit tests/integration tests/infra -n $(TEST_WORKERS) $(PYTEST_ARGS)
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: install
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-infra: install lambda-deps cdk-cli checkov-env
	$(BIN)/pytest tests/infra $(PYTEST_ARGS)

test-e2e: install
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

run: synth
	$(BIN)/payments local

# A deployment: the CDK CLI synthesizes for the account and region of the AWS credentials (cdk-nag checked),
# then deploys that assembly. The deploy workflow (.github/workflows/deploy.yml) runs this same target.
STAGE ?= dev
CDK := npx --yes aws-cdk@2
CDK_SYNTH = $(CDK) synth --quiet --context stage=$(STAGE) --context pspBaseUrl='$(PSP_BASE_URL)' \
	--context payoutProviderUrl='$(PAYOUT_PROVIDER_URL)' $(if $(ALARM_EMAIL),--context alarmEmail='$(ALARM_EMAIL)')

deploy: install lambda-deps cdk-cli
	$(if $(PSP_BASE_URL),,$(error PSP_BASE_URL is required: the PSP's https API for stage $(STAGE)))
	$(if $(PAYOUT_PROVIDER_URL),,$(error PAYOUT_PROVIDER_URL is required: the payout provider's https API for stage $(STAGE)))
	$(CDK_SYNTH)
	$(CDK) deploy Payments --app cdk.out --require-approval never --outputs-file cdk-outputs.json

clean:
	rm -rf $(VENV) $(TOOLS) node_modules cdk.out build .local .pytest_cache .mypy_cache .ruff_cache
