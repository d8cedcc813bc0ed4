# The two commands of the README: `make up` stands the stack up, `make test` runs the tests.
SHELL := /bin/bash
STACK ?= dev
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: up preview destroy verify test bench venv clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@scripts/check-prereqs.sh test
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade pip
	$(VENV_PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

up: $(VENV)/.installed
	@scripts/check-prereqs.sh up
	@scripts/select-stack.sh $(STACK)
	pulumi up --stack $(STACK) $(PULUMI_ARGS)

preview: $(VENV)/.installed
	@scripts/check-prereqs.sh up
	@scripts/select-stack.sh $(STACK)
	pulumi preview --stack $(STACK) --diff $(PULUMI_ARGS)

destroy: $(VENV)/.installed
	@scripts/check-prereqs.sh up
	pulumi destroy --stack $(STACK) $(PULUMI_ARGS)

# A live stack's smoke check: connectors RUNNING, a marker row followed from PostgreSQL to S3.
verify: $(VENV)/.installed
	$(VENV_PY) scripts/verify.py --stack $(STACK)

test: $(VENV)/.installed
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

# Change events/s through the rendered pipeline on real processes; BENCH_ARGS="--rate 0" = full speed.
bench: $(VENV)/.installed
	$(VENV_PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
