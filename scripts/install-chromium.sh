#!/usr/bin/env bash
# Installs Debian's Chromium for the report's browser test, only if no
# Chromium is on the PATH yet (idempotent). The test skips, saying why,
# when none can be found.
set -euo pipefail
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then
    echo "chromium: $(command -v "$b")"
    exit 0
  fi
done
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "chromium: not installed and no root to apt-get it; the browser test will skip" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null; }; then
  echo "chromium: apt-get could not install it; the browser test will skip" >&2
  exit 0
fi
echo "chromium: $(command -v chromium)"
