# The two commands of the README, and the pieces they stand on.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test test-python test-openclaw install clean

$(VENV)/.installed: pyproject.toml agent/pyproject.toml scripts/install.sh scripts/lib/python-cache.sh
	PYTHON=$(PYTHON) bash scripts/install.sh
	touch $@

install: $(VENV)/.installed

## Start the gateway on the embedded default (SQLite under ./.tollgate/, the bundled local models).
## Honours TOLLGATE_HOST, TOLLGATE_PORT, TOLLGATE_CONFIG and TOLLGATE_ADMIN_TOKEN.
serve: install
	$(BIN)/tollgate serve

## Install everything and run the whole suite (the tests start their own server processes).
test: test-python test-openclaw

## The layers point down only (.importlinter; docs/architecture.md), then the suite, with every
## outside program it drives installed (cached) and required: scripts/with-test-tools.sh.
test-python: install
	$(BIN)/lint-imports
	bash scripts/with-test-tools.sh $(BIN)/python -m pytest -q

## A real OpenClaw (Node 24 + a pinned OpenClaw, cached) against a running tollgate, and the park plugin.
test-openclaw: install
	bash scripts/openclaw-test.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
