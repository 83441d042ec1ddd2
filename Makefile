# Batchyard: `make up` starts the whole system; `make test` runs every test layer.
# Both install what is missing the first time (a venv, the Kafka jars, FerretDB), caching
# downloads and builds in the git-ignored .cache/ and runtime state in .batchyard/.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EXECUTORS ?= 2
PROMETHEUS ?= 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

PACKAGES := libs/contracts libs/jobkit libs/servicekit libs/jobtypes libs/devstack libs/cli \
	examples/hello-jobtype services/scheduler services/executor services/reporter services/rollback services/batch-api
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))
MYPY_PACKAGES := -p contracts -p jobkit -p jobtypes -p hello_jobtype -p servicekit -p devstack -p batchyard_cli \
	-p scheduler -p executor -p reporter -p rollback -p batch_api

.PHONY: help install up down status logs restart test test-unit lint format events clean-data \
	bench bench-smoke bench-install

help:
	@echo "make up [EXECUTORS=n] [PROMETHEUS=1]  install what is missing, start Kafka, the store and"
	@echo "                       all services (and Prometheus on :9090 scraping them)"
	@echo "make down              stop every process 'make up' started"
	@echo "make status            show each process and its health"
	@echo "make test              lint, type-check and run every test layer on real servers"
	@echo "make test-unit         unit tests only (no servers)"
	@echo "make bench             every benchmark in bench/ (Celery on Redis as a baseline)"
	@echo "make bench-smoke       the 2-minute throughput check CI runs"
	@echo "make events            re-export the event JSON Schemas into docs/events"

$(VENV)/.installed: constraints.txt requirements-dev.txt $(PYPROJECTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -r requirements-dev.txt $(addprefix -e ,$(PACKAGES))
	@touch $@

install: $(VENV)/.installed
	$(PY) -m devstack install

up: install
	$(PY) -m devstack up --executors $(EXECUTORS) $(if $(filter 1 yes true,$(PROMETHEUS)),--prometheus)

down:
	@if [ -x $(PY) ]; then $(PY) -m devstack down; else echo "nothing to stop"; fi

status: $(VENV)/.installed
	$(PY) -m devstack status

logs: $(VENV)/.installed
	$(PY) -m devstack logs $(or $(NAME),batch-api)

restart: $(VENV)/.installed
	$(PY) -m devstack restart $(NAME)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(MYPY_PACKAGES)
	$(VENV)/bin/mypy examples/subscriber
	$(PY) -m contracts.export --check

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

events: $(VENV)/.installed
	$(PY) -m contracts.export

test-unit: $(VENV)/.installed
	$(VENV)/bin/pytest -m unit

test: install lint
	$(PY) -m devstack test -- $(PYTEST_ARGS)
	$(MAKE) --no-print-directory bench-smoke

bench-smoke: install
	$(PY) -m devstack run -- $(PY) bench/smoke.py

$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt constraints.txt
	$(PY) -m pip install -q -c constraints.txt -r requirements-bench.txt
	@command -v redis-server >/dev/null || apt-get install -y -q redis-server
	@touch $@

bench-install: $(VENV)/.bench-installed

bench: install bench-install
	$(PY) -m devstack run -- $(PY) bench/run_all.py

clean-data: down
	rm -rf .batchyard/data
