#!/usr/bin/env bash
# Print the path of a Python 3.10 interpreter (Rasa 3.6 needs Python < 3.11):
# python3.10 on PATH, else ~/.pyenv/versions/3.10*/bin/python3.10, else `uv python install 3.10`.
set -u
ok() { "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null; }
if command -v python3.10 >/dev/null 2>&1 && ok "$(command -v python3.10)"; then command -v python3.10; exit 0; fi
for p in "$HOME"/.pyenv/versions/3.10*/bin/python3.10; do
  if [ -x "$p" ] && ok "$p"; then echo "$p"; exit 0; fi
done
if command -v uv >/dev/null 2>&1; then
  uv python install 3.10 >&2 && p=$(uv python find 3.10 2>/dev/null) && ok "$p" && { echo "$p"; exit 0; }
fi
echo "Python 3.10 was not found. Rasa 3.6 needs it. Install one of: python3.10 (your package manager)," >&2
echo "pyenv (pyenv install 3.10), or uv (https://docs.astral.sh/uv/, then: uv python install 3.10)." >&2
exit 1
