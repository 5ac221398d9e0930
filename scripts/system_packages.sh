#!/usr/bin/env bash
# Install the Debian packages that carry the course's data, when this machine can.
# Usage: scripts/system_packages.sh PACKAGE...   (called by `make`; safe to re-run)
set -euo pipefail
missing=()
for pkg in "$@"; do
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    echo "    $pkg: already installed"
  else
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
  echo "    installing ${missing[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif command -v apt-get >/dev/null; then
  echo "    SKIPPED ${missing[*]}: installing needs root. To install them yourself:"
  echo "        sudo apt-get install ${missing[*]}"
  echo "    Until then the loaders download the data from its upstream site when online,"
  echo "    and otherwise stop with an error that names this command."
else
  echo "    SKIPPED ${missing[*]}: no apt-get here (macOS, Windows, non-Debian Linux)."
  echo "    The loaders download the data from its upstream site on first use (needs a network)."
fi
