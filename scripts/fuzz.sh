#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each (default 30s).
set -euo pipefail
fuzztime="${1:-30s}"
cd "$(dirname "$0")/.."
found=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    found=1
    echo "== $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
[ "$found" = 1 ] || { echo "fuzz: no fuzz targets found" >&2; exit 1; }
