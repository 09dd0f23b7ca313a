#!/bin/sh
# Start one Rasa replica: render endpoints.yml (SQL tracker store from DATABASE_URL, Redis lock
# store from REDIS_URL, action server from ACTION_SERVER_URL), then run the server on 5005.
set -eu
: "${DATABASE_URL:?DATABASE_URL is required}"
: "${RASA_TOKEN:?RASA_TOKEN is required}"
python -m ops.endpoints >/dev/null
exec rasa run --model /app/models --endpoints /app/var/endpoints.yml \
    --credentials /app/bot/credentials.yml --port 5005 --enable-api \
    --auth-token "$RASA_TOKEN" "$@"
