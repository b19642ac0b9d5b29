# bevilling — `make run` and `make test` bootstrap everything from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-install
PYTEST_ARGS ?=
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: run test lint typecheck unit worker deploy bench clean chromium help

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)  ## Local stack: SQLite, Prefect server + UI, SMTP sink, all deployments served (PREFECT_DB=postgres: server on PostgreSQL)
	$(PY) -m cli.run_local

test: $(STAMP) chromium  ## Lint, type-check and run every test (PostgreSQL when configured)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest $(PYTEST_ARGS)

unit: $(STAMP)  ## Only the fast domain tests
	$(VENV)/bin/pytest tests/unit -q

worker: $(STAMP)  ## A Prefect process worker for the 'bevilling' pool (needs PREFECT_API_URL)
	$(VENV)/bin/prefect work-pool inspect bevilling >/dev/null 2>&1 || \
	  $(VENV)/bin/prefect work-pool create bevilling --type process
	$(VENV)/bin/prefect worker start --pool bevilling --type process

deploy: $(STAMP)  ## Register every deployment of prefect.yaml with the 'bevilling' work pool
	$(VENV)/bin/prefect work-pool inspect bevilling >/dev/null 2>&1 || \
	  $(VENV)/bin/prefect work-pool create bevilling --type process
	BEVILLING_HOME=$(CURDIR) $(VENV)/bin/prefect --no-prompt deploy --all

bench: $(STAMP)  ## Benchmarks (see bench/README.md)
	$(PY) -m bench.delivery
	$(PY) -m bench.deadlines

chromium:  ## Headless Chromium for the confirm-page tests (Debian package)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian package) for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }

clean:  ## Remove local state (database, mail, Prefect home)
	rm -rf var/bevilling.db* var/mail var/prefect
