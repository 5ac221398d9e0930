#!/usr/bin/env bash
# Fetch MathJax 3 from the npm registry into $1/es5, so the book renders math offline.
# Without npm the book falls back to MathJax's CDN (fine online). Called by `make`.
set -euo pipefail
dest=$1
version=3.2.2
if ! command -v npm >/dev/null; then
  echo "    npm not found: the book will load MathJax from its CDN (math needs a network to render)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "mathjax@$version" --silent >/dev/null)  # npm checks the package's integrity hash
tar -xzf "$tmp/mathjax-$version.tgz" -C "$tmp"
mkdir -p "$dest"
rm -rf "$dest/es5"
cp -r "$tmp/package/es5" "$dest/"
echo "    MathJax $version in $dest"
