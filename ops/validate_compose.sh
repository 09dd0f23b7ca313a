#!/usr/bin/env bash
# Validate docker-compose.yml (no Docker engine is needed for `config`). Installs Debian's
# docker-compose when neither it nor the compose plugin is present.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
  echo "==> Installing docker-compose from Debian packages (to validate the compose file)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-compose >/dev/null
fi
if command -v docker-compose >/dev/null 2>&1; then
  docker-compose --env-file docker/ci.env config -q
else
  docker compose --env-file docker/ci.env config -q
fi
echo "docker-compose.yml is valid"
