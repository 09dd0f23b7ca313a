#!/usr/bin/env bash
# Print a PostgreSQL URL for the test suite: the server on 127.0.0.1:5432 when one answers,
# otherwise PostgreSQL installed from Debian packages and started here. Exits non-zero when
# neither works (CI must then fail, never skip).
set -euo pipefail
try() { psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }
for url in "postgresql://postgres@127.0.0.1:5432/test" "postgresql://root@127.0.0.1:5432/test" \
           "postgresql://postgres@127.0.0.1:5432/postgres"; do
  if command -v psql >/dev/null && try "$url"; then echo "$url"; exit 0; fi
done
echo "==> No PostgreSQL answers on 127.0.0.1:5432: installing it from Debian packages" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
fi
ver=$(ls /etc/postgresql | sort -V | tail -1)
$SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || true
for _ in $(seq 1 30); do
  if $SUDO -u postgres psql -Atqc 'select 1' >/dev/null 2>&1 || su postgres -c "psql -Atqc 'select 1'" >/dev/null 2>&1; then break; fi
  sleep 1
done
su postgres -c "psql -Atqc \"select 1 from pg_database where datname='test'\"" | grep -q 1 \
  || su postgres -c "createdb test" >&2
su postgres -c "psql -qc \"alter user postgres password 'postgres'\"" >&2
url="postgresql://postgres:postgres@127.0.0.1:5432/test"
if try "$url"; then echo "$url"; exit 0; fi
echo "PostgreSQL could not be started" >&2
exit 1
