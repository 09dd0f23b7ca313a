#!/usr/bin/env bash
# Browser tests need Debian's Chromium (test tools' own browser downloads do not work offline).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
echo "==> Installing Chromium from Debian packages (browser tests)"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
