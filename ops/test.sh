#!/usr/bin/env bash
# Every test: the bot-env tests (connectors) and the app-env suite (domain on SQLite and
# PostgreSQL, actions, `rasa data validate` and the conversation tests, knowledge, channels,
# console, browser, ops).
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 PYTHONPATH="$PWD"
mkdir -p artifacts
status=0

echo "==> Training the assistant model if its data changed"
.venv/bin/python -m ops.train || exit 1

if [ -d tests/connectors ]; then
  echo "==> Bot env tests (connectors)"
  .venv-bot/bin/pytest -q -ra --durations=40 -p no:cacheprovider --confcutdir tests/connectors tests/connectors
  rc=$?; [ $rc -eq 0 ] || [ $rc -eq 5 ] || status=1
fi

echo "==> App env tests"
.venv/bin/pytest -q -ra --durations=40 tests --ignore=tests/connectors
rc=$?; [ $rc -eq 0 ] || status=1
exit $status
