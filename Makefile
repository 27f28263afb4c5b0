# Switchboard. `make demo` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo local test chromium lint typecheck unit integration e2e rules-check clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

## demo: start the local stack, play 3 agents and 20 web-chat visitors, print the summary
demo: $(STAMP)
	$(PY) -m chalicelib.local.demo

## local: keep the local stack up (API http://127.0.0.1:8000, WebSocket ws://127.0.0.1:8001)
local: $(STAMP)
	$(PY) -m chalicelib.local

## test: lint, type-check, then every test (unit, integration with moto, end-to-end on the local stack)
test: lint typecheck chromium
	$(PY) -m pytest

# The browser tests (tests/browser) drive Debian's Chromium through Playwright; never `playwright install`.
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

## rules-check: validate the routing config (switchboard rules check FILE, default the deployed one)
RULES ?= chalicelib/routing/routing.yaml
rules-check: $(STAMP)
	$(VENV)/bin/switchboard rules check $(RULES)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy app.py chalicelib

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

e2e: $(STAMP)
	$(PY) -m pytest tests/e2e tests/local

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
