#!/usr/bin/env bash
# Print a Redis URL: the server on 127.0.0.1:6379 when it answers, otherwise redis-server from
# Debian packages started here.
set -euo pipefail
if command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; then
  echo "redis://127.0.0.1:6379/0"; exit 0
fi
echo "==> No Redis answers on 127.0.0.1:6379: installing it from Debian packages" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
command -v redis-server >/dev/null || { $SUDO apt-get update -qq >&2; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >&2; }
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >&2
for _ in $(seq 1 20); do [ "$(redis-cli ping 2>/dev/null)" = "PONG" ] && { echo "redis://127.0.0.1:6379/0"; exit 0; }; sleep 0.5; done
echo "Redis could not be started" >&2
exit 1
