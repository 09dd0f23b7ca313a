#!/bin/sh
# Start one Rasa replica: render endpoints.yml (SQL tracker store from DATABASE_URL, Redis lock
# store from REDIS_URL, action server from ACTION_SERVER_URL) and the production channels (no
# REST channel), then run the server on 5005. The HTTP API takes a bearer JWT signed with
# RASA_JWT_SECRET; ops/rasa_launch.py hands the secret to Rasa inside the process, so it is not
# on the command line.
set -eu
: "${DATABASE_URL:?DATABASE_URL is required}"
: "${RASA_JWT_SECRET:?RASA_JWT_SECRET is required}"
: "${ATENDE_ATTESTATION_SECRET:?ATENDE_ATTESTATION_SECRET is required}"
python -m ops.endpoints >/dev/null
python -m ops.credentials /app/var/credentials.yml >/dev/null
exec python -m ops.rasa_launch run --model /app/models --endpoints /app/var/endpoints.yml \
    --credentials /app/var/credentials.yml --port 5005 --enable-api "$@"
