#!/usr/bin/env bash
# Times deploy/local/infra.sh: cold start (empty state dir), warm start (existing data), `up` when
# already running, and `down`, for each server alone and for both together. Figures for
# docs/benchmarks.md ("Local servers").
#
#   deploy/local/measure.sh [ROUNDS]     (default 3)
#
# MEASURE_MAX_LOAD=N waits (up to MEASURE_MAX_WAIT seconds, default 600, per step) until the 1-minute load
# average is below N before each timed step, to get figures for an otherwise idle machine.
#
# Uses its own state dir and ports so that it never meets servers started by anyone else:
# RTGRAPH_INFRA_DIR (default /tmp/rtgraph-infra-measure, DELETED at each cold start) and
# KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19093 CASSANDRA_PORT=19042 CASSANDRA_STORAGE_PORT=17000
# CASSANDRA_JMX_PORT=17199 unless set. The messages of infra.sh (phase timings) go to $DIR.measure.log.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INFRA="$HERE/infra.sh"
ROUNDS="${1:-3}"
export RTGRAPH_INFRA_DIR="${RTGRAPH_INFRA_DIR:-/tmp/rtgraph-infra-measure}"
export KAFKA_PORT="${KAFKA_PORT:-19092}" KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
export CASSANDRA_PORT="${CASSANDRA_PORT:-19042}" CASSANDRA_STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-17000}"
export CASSANDRA_JMX_PORT="${CASSANDRA_JMX_PORT:-17199}"
LOG="$RTGRAPH_INFRA_DIR.measure.log"
: >"$LOG"

trap '"$INFRA" down >>"$LOG" 2>&1 || true' EXIT

# timed LABEL CMD...: run CMD (output to the log), print "LABEL seconds (1-minute load average before)".
# The load matters: this machine has 2 cores and may be shared with other builds.
timed() {
  local label="$1" t0 t1 load
  shift
  echo "### $label: $*" >>"$LOG"
  if [ -n "${MEASURE_MAX_LOAD:-}" ]; then
    local waited=0
    while awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$MEASURE_MAX_LOAD" 'BEGIN { exit !(l >= m) }' &&
      [ "$waited" -lt "${MEASURE_MAX_WAIT:-600}" ]; do
      sleep 5
      waited=$((waited + 5))
    done
  fi
  load="$(cut -d' ' -f1 /proc/loadavg)"
  t0="$(date +%s.%N)"
  "$@" >>"$LOG" 2>&1
  t1="$(date +%s.%N)"
  awk -v l="$label" -v a="$t0" -v b="$t1" -v load="$load" \
    'BEGIN { printf "%-46s %6.1f s   (load %s)\n", l, b - a, load }'
}

for ((r = 1; r <= ROUNDS; r++)); do
  echo "# round $r"
  for servers in kafka cassandra "kafka cassandra"; do
    label="${servers/ /+}"
    "$INFRA" down >>"$LOG" 2>&1
    rm -rf "$RTGRAPH_INFRA_DIR"
    # shellcheck disable=SC2086 # servers is a list
    {
      timed "$label cold up (incl. probe build)" "$INFRA" up $servers
      timed "$label up, already running" "$INFRA" up $servers
      timed "$label down" "$INFRA" down $servers
      timed "$label warm up" "$INFRA" up $servers
      timed "$label down" "$INFRA" down $servers
      rm -rf "$RTGRAPH_INFRA_DIR/data" "$RTGRAPH_INFRA_DIR/libs"
      timed "$label cold up (probe already built)" "$INFRA" up $servers
      timed "$label down" "$INFRA" down $servers
    }
  done
done
