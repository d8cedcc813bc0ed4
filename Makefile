# The two commands of the README: `make up` stands the stack up, `make test` runs the tests.
SHELL := /bin/bash
STACK ?= dev
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
# checkov's dependencies conflict with pulumi's: it gets a virtualenv of its own.
CHECKOV_VENV := .venv-checkov
TOOLS := .tools/bin
ACTIONLINT := github.com/rhysd/actionlint/cmd/actionlint@v1.7.7
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# The policy pack runs on every preview and update, as on the pull requests' previews.
POLICY := --policy-pack policy

.PHONY: up preview destroy verify status render test test-unit test-dataplane bench venv clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@scripts/check-prereqs.sh test
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade pip
	$(VENV_PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	@touch $@

# The workflow linter is a Go module; without Go its test skips and says so.
$(TOOLS)/actionlint:
	@if command -v go >/dev/null 2>&1; then GOBIN=$(CURDIR)/$(TOOLS) go install $(ACTIONLINT); \
	else echo "Go not found: the workflow lint test will skip (install Go to run it)"; fi

# The tools first: nothing is installed for a machine that cannot run the stack.
tools:
	@scripts/check-prereqs.sh tools

up: tools $(VENV)/.installed
	@VENV_PY=$(VENV_PY) scripts/check-prereqs.sh up $(STACK)
	@scripts/select-stack.sh $(STACK)
	@echo "A first 'pulumi up' creates the Kind cluster, pulls about 1.2 GB of images once, and waits up to 20 min for Connect's first start (its plugin downloads)." >&2
	pulumi up --stack $(STACK) $(POLICY) $(PULUMI_ARGS)

preview: tools $(VENV)/.installed
	@VENV_PY=$(VENV_PY) scripts/check-prereqs.sh up $(STACK)
	@scripts/select-stack.sh $(STACK)
	pulumi preview --stack $(STACK) --diff $(POLICY) $(PULUMI_ARGS)

destroy: tools $(VENV)/.installed
	@VENV_PY=$(VENV_PY) scripts/check-prereqs.sh destroy $(STACK)
	pulumi destroy --stack $(STACK) $(PULUMI_ARGS)

# A live stack's smoke check: connectors RUNNING, a marker row followed from PostgreSQL to S3.
# CHECK_ARGS=--json: one JSON document on standard output (the command is not echoed, so it stays parseable).
verify: $(VENV)/.installed
	@$(VENV_PY) scripts/verify.py --stack $(STACK) $(CHECK_ARGS)

# A live stack's health, read-only: connectors, the replication slot, the archive's completeness.
status: $(VENV)/.installed
	@$(VENV_PY) scripts/status.py --stack $(STACK) $(CHECK_ARGS)

# The suite runs on PYTEST_WORKERS processes, each taking one module (or one pipeline of a module) at
# a time, longest first: the data-plane tests mostly wait on their pipelines, so three share 2 cores.
PYTEST_WORKERS ?= 3
PYTEST := $(VENV_PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder

test: $(VENV)/.installed $(CHECKOV_VENV)/.installed $(TOOLS)/actionlint
	$(PYTEST) $(PYTEST_ARGS)

# The contributor's fast path: the program under mocks, the static checks, the provider host.
test-unit: $(VENV)/.installed $(CHECKOV_VENV)/.installed $(TOOLS)/actionlint
	$(PYTEST) --ignore=tests/dataplane $(PYTEST_ARGS)

# The rendered configuration on real processes (PostgreSQL, Kafka, Connect, moto).
test-dataplane: $(VENV)/.installed
	$(PYTEST) tests/dataplane $(PYTEST_ARGS)

# Every Kubernetes object and AWS resource of a stack as files, for review: render/<stack>/.
render: $(VENV)/.installed
	$(VENV_PY) scripts/render.py --stack $(STACK)

# Change events/s through the rendered pipeline on real processes; BENCH_ARGS="--rate 0" = full speed.
bench: $(VENV)/.installed
	$(VENV_PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .tools render .pytest_cache
