# The two commands of the README, and the pieces they stand on.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve serve-scaled test test-python test-scaled-suite test-openclaw install clean

$(VENV)/.installed: pyproject.toml agent/pyproject.toml scripts/install.sh scripts/lib/python-cache.sh
	PYTHON=$(PYTHON) bash scripts/install.sh
	touch $@

install: $(VENV)/.installed

## Start the gateway on the embedded default (SQLite under ./.tollgate/, the bundled local models).
## Honours TOLLGATE_HOST, TOLLGATE_PORT, TOLLGATE_CONFIG and TOLLGATE_ADMIN_TOKEN.
serve: install
	$(BIN)/tollgate serve

## The scaled configuration on this machine: PostgreSQL and Redis under ./.tollgate/scaled/ (made on first
## use, stopped when the gateway stops), and `tollgate serve` with two workers on them (docs/deploy.md).
SCALED_DIR ?= .tollgate/scaled
serve-scaled: install
	bash scripts/scaled-services.sh run $(SCALED_DIR) -- $(BIN)/tollgate serve --config $(SCALED_DIR)/tollgate.toml

## Install everything and run the whole suite (the tests start their own server processes).
test: test-python test-openclaw

## The layers point down only (.importlinter; docs/architecture.md), then the suite, with every
## outside program it drives installed (cached) and required: scripts/with-test-tools.sh; then
## the API, budget and account files again on the scaled configuration (PostgreSQL + Redis).
test-python: install
	$(BIN)/lint-imports
	bash scripts/with-test-tools.sh $(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory test-scaled-suite

## Every gateway those files start runs on a fresh PostgreSQL database and a shared Redis instead of
## SQLite (tests/support/scaled_suite.py); tests/scaled/ (in the run above) covers many processes.
SCALED_SUITE := $(addprefix tests/integration/test_,openai_api.py anthropic_api.py budget_rules.py \
	budget_stress.py management_api.py accounts_lifecycle.py key_churn.py resellers.py request_log.py)
test-scaled-suite: install
	TOLLGATE_TEST_STORE=scaled bash scripts/with-test-tools.sh $(BIN)/python -m pytest -q $(SCALED_SUITE)

## A real OpenClaw (Node 24 + a pinned OpenClaw, cached) against a running tollgate, and the park plugin.
test-openclaw: install
	bash scripts/openclaw-test.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
