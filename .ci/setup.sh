#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for this project: Mesa's lavapipe Vulkan driver from
# bookworm-backports (Dawn rejects Debian 12's own Mesa 22), then the npm packages.
# Safe to run again: every step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

if ! dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '^2[5-9]'; then
  echo "setup: installing Mesa lavapipe (Vulkan on the CPU) from bookworm-backports"
  $SUDO tee /etc/apt/sources.list.d/backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers
fi

# Debian's Chromium for the in-browser tests (Playwright drives it; it never downloads a browser).
if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing Chromium"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi

# DejaVu Sans: the charts are SVG rendered by sharp (librsvg + fontconfig), and their text is
# measured and tested with this font's metrics.
if ! dpkg-query -W -f='${Status}' fonts-dejavu-core 2>/dev/null | grep -q 'ok installed'; then
  echo "setup: installing fonts-dejavu-core"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-dejavu-core
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  # `npm install` rather than `npm ci`: npm 11 rejects this lock file in `npm ci` over rollup's
  # optional per-platform packages even when the lock was just written by `npm install`.
  npm install --no-audit --no-fund --no-save
fi
mkdir -p "${XDG_RUNTIME_DIR:-/tmp/xdg-runtime}"
echo "setup: done"
