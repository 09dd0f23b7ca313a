# Atende: `make run` starts everything on the embedded defaults; `make test` runs every test.
SHELL := /bin/bash
PIP_QUIET := -qq --disable-pip-version-check
BOT_STAMP := .venv-bot/.installed
APP_STAMP := .venv/.installed

.PHONY: run test setup widget test-deps demo-reset validate train clean run-prod

run: setup
	@.venv/bin/python -m ops.run

test: setup test-deps
	@bash ops/test.sh

setup: $(BOT_STAMP) $(APP_STAMP) widget

$(BOT_STAMP): bot/requirements.txt contract/pyproject.toml
	@echo "==> Creating the bot env (.venv-bot, Python 3.10, Rasa 3.6): a few minutes the first time"
	@PY310=$$(bash ops/python310.sh) && "$$PY310" -m venv .venv-bot
	@.venv-bot/bin/pip install $(PIP_QUIET) --upgrade pip
	@.venv-bot/bin/pip install $(PIP_QUIET) -r bot/requirements.txt
	@# the contract both environments share (channel names, ids, token and attestation checks)
	@.venv-bot/bin/pip install $(PIP_QUIET) --no-deps -e ./contract
	@touch $@

$(APP_STAMP): pyproject.toml contract/pyproject.toml
	@echo "==> Creating the app env (.venv, Python 3.11+): a few minutes the first time"
	@PY311=$$(bash ops/python311.sh) && "$$PY311" -m venv .venv
	@.venv/bin/pip install $(PIP_QUIET) --upgrade pip
	@# torch first, pinned to the CPU build, so nothing pulls CUDA wheels
	@.venv/bin/pip install $(PIP_QUIET) torch==2.13.0
	@.venv/bin/pip install $(PIP_QUIET) -e ./contract
	@.venv/bin/pip install $(PIP_QUIET) -e '.[test]'
	@touch $@

widget:
	@bash ops/build_widget.sh

test-deps:
	@bash ops/install_test_deps.sh

validate: setup
	@.venv-bot/bin/rasa data validate --config config.yml --domain domain.yml --data bot/data

train: setup
	@.venv/bin/python -m ops.train

demo-reset: setup
	@.venv/bin/python -m helpdesk demo --reset

run-prod: setup
	@.venv/bin/python -m ops.run_prod

clean:
	rm -rf var models widget/dist
