#!/usr/bin/env bash
# API contract test: runs Schemathesis against the served OpenAPI document of
# a real `rtgraph demo` (embedded broker and Pebble store, on free loopback
# ports, in a temporary data directory), twice: once with API keys
# configured, sending a key, and once with none (the open API). Every check
# must pass; any failure makes the script exit non-zero.
#
# Schemathesis lives in a virtual environment under .venv-schemathesis
# (gitignored), pinned to ST_VERSION. ST_MAX_EXAMPLES and ST_SEED bound and
# fix the generated cases.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

ST_VERSION=4.32.5
ST_MAX_EXAMPLES="${ST_MAX_EXAMPLES:-50}"
ST_SEED="${ST_SEED:-20261203}"
venv=.venv-schemathesis
st="$venv/bin/st"

if [ "$("$st" --version 2>/dev/null || true)" != "st, version $ST_VERSION" ]; then
  echo "contract: installing schemathesis $ST_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

make build >/dev/null
bin=bin/rtgraph

work="$(mktemp -d)"
demo_pid=""
cleanup() {
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# run_contract NAME CONFIG [st options...]: start the demo with CONFIG, wait
# until it is ready, run Schemathesis, stop the demo.
run_contract() {
  local name="$1" config="$2"
  shift 2
  local port dir rc=0
  port="$(free_port)"
  dir="$work/$name"
  mkdir -p "$dir"
  # The broker takes a free port itself (:0), so no real Kafka is disturbed.
  "$bin" demo --config "$config" --data-dir "$dir/data" --http-addr "127.0.0.1:$port" \
    --kafka-addr 127.0.0.1:0 --rate 50 --progress 0 >"$dir/demo.out" 2>"$dir/demo.err" &
  demo_pid=$!
  local base="http://127.0.0.1:$port"
  for _ in $(seq 1 120); do
    if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$demo_pid" 2>/dev/null; then
      echo "contract: the demo ($name) exited before it was ready:" >&2
      tail -n 30 "$dir/demo.err" >&2
      return 1
    fi
    sleep 0.5
  done
  if ! curl -fsS "$base/readyz" >/dev/null 2>&1; then
    echo "contract: the demo ($name) was not ready within 60 s" >&2
    tail -n 30 "$dir/demo.err" >&2
    return 1
  fi
  echo "== contract: $name ($base)"
  # Run from the temporary directory: Schemathesis keeps state in the
  # working directory. One worker: with several, Hypothesis describes its
  # strategies from several threads at once, which CPython 3.11's parser
  # does not survive ("AST constructor recursion depth mismatch").
  (cd "$dir" && "$root/$st" --no-color --config-file "$root/scripts/schemathesis.toml" run "$base/openapi.yaml" \
    --checks all --max-examples "$ST_MAX_EXAMPLES" --seed "$ST_SEED" --workers 1 --request-timeout 15 \
    --generation-database none "$@") || rc=$?
  kill "$demo_pid" 2>/dev/null || true
  wait "$demo_pid" 2>/dev/null || true
  demo_pid=""
  return "$rc"
}

key="contract-key-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
cat >"$work/keys.yaml" <<YAML
api:
  keys:
    - name: contract
      key: $key
      scopes: [admin]
  rate_limit:
    requests_per_second: 0
YAML
cat >"$work/open.yaml" <<YAML
api:
  rate_limit:
    requests_per_second: 0
YAML

passed=0 failed=0
if run_contract keys "$work/keys.yaml" --header "Authorization: Bearer $key"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
# With no key configured the API is open by design (README, Config.AuthRequired):
# it serves requests without credentials, which ignored_auth would report.
if run_contract open "$work/open.yaml" --exclude-checks ignored_auth; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "contract: $passed passed, $failed failed"
[ "$failed" = 0 ]
