#!/usr/bin/env bash
# Install the widget's npm packages and build it, only when its sources or lock file changed.
set -euo pipefail
cd "$(dirname "$0")/../widget" 2>/dev/null || exit 0
[ -f package.json ] || exit 0
hash=$( (cat package.json package-lock.json 2>/dev/null; find src build.* -type f 2>/dev/null | sort | xargs cat 2>/dev/null) | sha256sum | cut -c1-16)
if [ -f "dist/.built-$hash" ]; then exit 0; fi
echo "==> Building the website widget (npm)"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
npm run --silent build
mkdir -p dist && rm -f dist/.built-* && touch "dist/.built-$hash"
