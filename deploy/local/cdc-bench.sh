#!/usr/bin/env bash
# CDC figures: freshness (a row committed in PostgreSQL -> visible in rtgraph's API, p50/p99 over
# CDC_BENCH_SAMPLES rows, and rtgraph's own share from the record's Kafka timestamp) and a bulk load
# (CDC_BENCH_ROWS rows in one transaction: end to end, then rtgraph alone replaying the topic).
#
#   deploy/local/cdc-bench.sh            (make bench-cdc)
#
# Starts Kafka, PostgreSQL and Connect with deploy/local/infra.sh (whichever are not running yet) in a state
# dir and on ports of its own, a table of its own, a Debezium connector for it (schemaless JSON, as
# deploy/local/connect/connectors/plain.properties, with poll.interval.ms=CDC_BENCH_POLL_MS) and rtgraph serve
# on a one-table vertical with the embedded store. Prints the figures (deploy/local/cdcbench), then stops what
# it started, by PID. Run it on a quiet machine and give the load average with the figures.
#
# RTGRAPH_INFRA_DIR (default <repo>/.infra/cdc-bench), KAFKA_PORT 27092, KAFKA_CONTROLLER_PORT 27093,
# PG_PORT 27432, CONNECT_PORT 27083 unless set. CDC_BENCH_SAMPLES (200), CDC_BENCH_ROWS (100000),
# CDC_BENCH_POLL_MS (50), CDC_BENCH_BATCH_PERIOD (rtgraph's ingest.batch.period, default 100ms),
# CDC_BENCH_LINGER (rtgraph's ingest.batch.linger; unset: rtgraph's default, 5ms).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
INFRA="$HERE/infra.sh"
PROG="cdc-bench"

export RTGRAPH_INFRA_DIR="${RTGRAPH_INFRA_DIR:-$REPO/.infra/cdc-bench}"
export KAFKA_PORT="${KAFKA_PORT:-27092}" KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-27093}"
export PG_PORT="${PG_PORT:-27432}" CONNECT_PORT="${CONNECT_PORT:-27083}"
export PG_USER="${PG_USER:-dbz}" PG_PASSWORD="${PG_PASSWORD:-dbz}" PG_DB="${PG_DB:-app}"
SAMPLES="${CDC_BENCH_SAMPLES:-200}"
ROWS="${CDC_BENCH_ROWS:-100000}"
POLL_MS="${CDC_BENCH_POLL_MS:-50}"
BATCH_PERIOD="${CDC_BENCH_BATCH_PERIOD:-100ms}"
LINGER="${CDC_BENCH_LINGER:-5ms}"
STATE="$RTGRAPH_INFRA_DIR"
PSQL_ARGS="-h 127.0.0.1 -p $PG_PORT -U $PG_USER -d $PG_DB"
export PGPASSWORD="$PG_PASSWORD"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
say() { echo "$PROG: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

for t in psql curl go; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found"
done
if [ -f "$STATE/run/connect.pid" ] && "$INFRA" status connect >/dev/null 2>&1; then
  die "Connect already runs in $STATE; stop it first: RTGRAPH_INFRA_DIR=$STATE $INFRA down connect"
fi

T0="$(now)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/rtgraph-cdc-bench.XXXXXX")"
STARTED_FILE="$WORK/started"
: >"$STARTED_FILE"
export RTGRAPH_INFRA_STARTED_FILE="$STARTED_FILE"
RTGRAPH_PID=""

stop_rtgraph() {
  [ -n "$RTGRAPH_PID" ] || return 0
  kill -TERM "$RTGRAPH_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$RTGRAPH_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$RTGRAPH_PID" 2>/dev/null || true
  wait "$RTGRAPH_PID" 2>/dev/null || true
  RTGRAPH_PID=""
}

cleanup() {
  local status=$? started=()
  trap - EXIT INT TERM HUP
  stop_rtgraph
  # The run's replication slot would keep WAL for good: Connect first, then the slot.
  if grep -qx connect "$STARTED_FILE" 2>/dev/null; then
    RTGRAPH_INFRA_STARTED_FILE="" "$INFRA" down connect >&2 || status=1
    sed -i '/^connect$/d' "$STARTED_FILE"
  fi
  if [ -n "${PREFIX:-}" ]; then
    psql -X -q $PSQL_ARGS -c "SELECT pg_drop_replication_slot('$PREFIX') FROM pg_replication_slots WHERE slot_name = '$PREFIX'" \
      >/dev/null 2>&1 || say "could not drop replication slot $PREFIX"
  fi
  if [ -s "$STARTED_FILE" ]; then
    mapfile -t started <"$STARTED_FILE"
    say "stopping what this run started: ${started[*]}"
    RTGRAPH_INFRA_STARTED_FILE="" "$INFRA" down "${started[@]}" >&2 || status=1
  fi
  if [ "$status" -eq 0 ]; then
    rm -rf "$WORK"
    say "done in $(since "$T0")"
  else
    say "FAILED after $(since "$T0") (work dir: $WORK; logs: $STATE/logs)"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

(cd "$REPO" && go build -o "$WORK/rtgraph" ./cmd/rtgraph && go build -o "$WORK/cdcbench" ./deploy/local/cdcbench)
"$INFRA" up kafka postgres >&2

RUN="b$(date +%s)"
TABLE="fresh_$RUN"
PREFIX="cdcbench_$RUN"
TOPIC="$PREFIX.public.$TABLE"
psql -X -q -v ON_ERROR_STOP=1 $PSQL_ARGS -c "CREATE TABLE $TABLE (id bigint PRIMARY KEY, note text)"
psql -X -q -v ON_ERROR_STOP=1 $PSQL_ARGS -c "INSERT INTO $TABLE VALUES (0, 'snapshot')"

# The connector: plain.properties with a name, prefix, slot and publication of this run, and a short poll.
sed -e "s/^name=.*/name=$PREFIX/" -e "s/^topic.prefix=.*/topic.prefix=$PREFIX/" \
  -e "s/^slot.name=.*/slot.name=$PREFIX/" -e "s/^publication.name=.*/publication.name=$PREFIX/" \
  -e "s/^schema.include.list=.*/table.include.list=public.$TABLE/" \
  "$HERE/connect/connectors/plain.properties" >"$WORK/connector.properties"
echo "poll.interval.ms=$POLL_MS" >>"$WORK/connector.properties"
CONNECT_CONNECTORS="$WORK/connector.properties" "$INFRA" up connect >&2

# A one-table vertical.
V="$WORK/vertical"
mkdir -p "$V/graph" "$V/mappings"
cat >"$V/vertical.yaml" <<EOF
name: cdcbench
description: one table, for the CDC freshness and bulk figures
topics:
  $TOPIC:
    format: debezium
    entity_type: row
    key_fields: [id]
    key_types: {id: integer}
EOF
cat >"$V/graph/rows.yaml" <<EOF
node_types:
  row:
    properties:
      note: string
edge_types: {}
EOF
cat >"$V/mappings/rows.yaml" <<EOF
rules:
  - name: row_upsert
    select: {topic: $TOPIC, ops: [create, update, read]}
    emit:
      nodes:
        - {type: row, id: attrs.id, props: {note: attrs.note}}
  - name: row_delete
    select: {topic: $TOPIC, ops: [delete]}
    emit:
      nodes:
        - {type: row, id: attrs.id, delete: true}
EOF

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_rtgraph GROUP DATA: rtgraph serve on the vertical, embedded store in DATA, consumer group GROUP.
start_rtgraph() {
  local port
  port="$(free_port)"
  API="http://127.0.0.1:$port"
  cat >"$WORK/rtgraph-$1.yaml" <<EOF
kafka:
  brokers: ["127.0.0.1:$KAFKA_PORT"]
embedded:
  dir: $2
ingest:
  group_id: $1
  dead_letter_topic: $PREFIX.dlq
  batch:
    period: $BATCH_PERIOD
    linger: $LINGER
api:
  rate_limit: {requests_per_second: 0}
EOF
  RTGRAPH_HTTP_ADDR="127.0.0.1:$port" "$WORK/rtgraph" serve --config "$WORK/rtgraph-$1.yaml" --vertical "$V" \
    >"$WORK/rtgraph-$1.log" 2>&1 &
  RTGRAPH_PID=$!
}

start_rtgraph "$PREFIX-a" "$WORK/data-a"
"$WORK/cdcbench" wait -api "$API" -type row -id 0 >/dev/null
say "rtgraph ready and the snapshot row visible"

t="$(now)"
"$WORK/cdcbench" fresh -psql "$PSQL_ARGS" -table "$TABLE" -api "$API" -type row \
  -kafka "127.0.0.1:$KAFKA_PORT" -topic "$TOPIC" -samples "$SAMPLES" -first-id 1
"$WORK/cdcbench" bulk -psql "$PSQL_ARGS" -table "$TABLE" -api "$API" -type row -rows "$ROWS" -first-id 1000000
say "freshness and bulk measured ($(since "$t"))"
stop_rtgraph

# rtgraph alone: a new process, group and store on the topic that now holds every record.
RECORDS=$((1 + SAMPLES + ROWS))
start_rtgraph "$PREFIX-b" "$WORK/data-b"
secs="$("$WORK/cdcbench" wait -api "$API" -type row -id $((1000000 + ROWS - 1)))"
awk -v n="$RECORDS" -v s="$secs" 'BEGIN { printf "rtgraph alone, replaying the topic (%d records) from readiness: %.1f s, %.0f records/s\n", n, s, n / s }'
echo "settings: poll.interval.ms=$POLL_MS, ingest.batch.period=$BATCH_PERIOD, ingest.batch.linger=$LINGER, embedded store"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
