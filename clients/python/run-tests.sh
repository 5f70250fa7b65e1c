#!/usr/bin/env bash
# Runs the Python client's tests: creates clients/python/.venv when missing,
# installs the package with its test extras into it, and runs pytest (extra
# arguments go to pytest). The tests start real `rtgraph demo` servers: the
# binary is $RTGRAPH_BIN, else built from this repository with `go build`.
# The exit status is pytest's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
(cd "$root" && "$venv/bin/python" -m pip install -q --disable-pip-version-check './clients/python[test]')

cd "$here"
rc=0
"$venv/bin/python" -m pytest "$@" || rc=$?
exit "$rc"
