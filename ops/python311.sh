#!/usr/bin/env bash
# Print the path of a Python >= 3.11 interpreter for the app env.
set -u
ok() { "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)' 2>/dev/null; }
for c in python3.11 python3.12 python3 python; do
  if command -v "$c" >/dev/null 2>&1 && ok "$(command -v "$c")"; then command -v "$c"; exit 0; fi
done
echo "Python 3.11 or newer was not found: install python3.11 (or use uv python install 3.11)." >&2
exit 1
