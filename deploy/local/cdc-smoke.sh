#!/usr/bin/env bash
# CDC smoke test: real PostgreSQL -> Debezium 3.6.1 on Kafka Connect 4.3.1 -> real Kafka 4.3.1, through the
# three example connectors in deploy/local/connect/connectors/ (json, plain, flat).
#
#   deploy/local/cdc-smoke.sh            (make test-cdc-smoke)
#
# Starts Kafka, PostgreSQL and Connect with deploy/local/infra.sh (whichever are not running yet), creates a
# new table, then INSERTs a row, UPDATEs it twice in one transaction and DELETEs it, and reads each
# connector's topic with Kafka's console consumer until it holds the expected records. It checks the op
# sequence (c u u d, plus the tombstone for json and plain), the row values, decimals (string in plain and
# flat), and that the two updates of the one transaction carry the same txId (json, plain) and increasing
# LSNs. Then it stops what it started -- also on failure or Ctrl-C -- and exits 0 only if every check passed.
#
# Own state dir and ports, so that it never meets the servers of `make test` or of other runs:
# RTGRAPH_INFRA_DIR (default <repo>/.infra/cdc-smoke), KAFKA_PORT 24092, KAFKA_CONTROLLER_PORT 24093,
# PG_PORT 25432, CONNECT_PORT 28083 unless set (all below 32768, Linux's ephemeral range, where an outgoing
# connection can hold the port at the moment a server binds it). Data are kept between runs (each run uses
# a table of its own); `rm -rf .infra/cdc-smoke/data` starts from nothing.
#
# CDC_SMOKE_TIMEOUT (seconds, default 120): how long to wait for the records of each topic.
# CDC_SMOKE_BREAK=delete skips the DELETE (but still expects it), to see the test fail.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
INFRA="$HERE/infra.sh"
PROG="cdc-smoke"

export RTGRAPH_INFRA_DIR="${RTGRAPH_INFRA_DIR:-$REPO/.infra/cdc-smoke}"
export KAFKA_PORT="${KAFKA_PORT:-24092}" KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-24093}"
export PG_PORT="${PG_PORT:-25432}" CONNECT_PORT="${CONNECT_PORT:-28083}"
export PG_USER="${PG_USER:-dbz}" PG_PASSWORD="${PG_PASSWORD:-dbz}" PG_DB="${PG_DB:-app}"
export CONNECT_CONNECTORS="json plain flat" # the checks below know these three
TIMEOUT="${CDC_SMOKE_TIMEOUT:-120}"
BREAK="${CDC_SMOKE_BREAK:-}"
STATE="$RTGRAPH_INFRA_DIR"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
say() { echo "$PROG: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

for t in jq psql curl; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (Debian packages: jq, postgresql-client, curl)"
done

T0="$(now)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/rtgraph-cdc-smoke.XXXXXX")"
STARTED_FILE="$WORK/started"
: >"$STARTED_FILE"
export RTGRAPH_INFRA_STARTED_FILE="$STARTED_FILE" # infra.sh up appends the name of each server it launches

cleanup() {
  local status=$? started=() t
  trap - EXIT INT TERM HUP
  if [ -s "$STARTED_FILE" ]; then
    mapfile -t started <"$STARTED_FILE"
    t="$(now)"
    say "stopping what this run started: ${started[*]}"
    if ! RTGRAPH_INFRA_STARTED_FILE="" "$INFRA" down "${started[@]}" >&2 && [ "$status" -eq 0 ]; then
      status=1
    fi
    say "stopped ($(since "$t"))"
  fi
  if [ "$status" -eq 0 ]; then
    rm -rf "$WORK"
    say "PASS in $(since "$T0")"
  else
    say "FAILED after $(since "$T0") (records read: $WORK; logs: $STATE/logs)"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Debezium adds a table to its (filtered) publication when the connector starts, so Connect must start after
# the table exists: a Connect already running in this state dir would not see it.
if [ -f "$STATE/run/connect.pid" ] && "$INFRA" status connect >/dev/null 2>&1; then
  die "Connect already runs in $STATE; stop it first: RTGRAPH_INFRA_DIR=$STATE $INFRA down connect"
fi

t="$(now)"
"$INFRA" up kafka postgres >&2
say "kafka and postgres up ($(since "$t"))"

TABLE="smoke_$(date +%s)_$$"
sql() { PGPASSWORD="$PG_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" "$@"; }
sql -c "CREATE TABLE $TABLE (id int PRIMARY KEY, name text, amount numeric(10,2))"
say "created table public.$TABLE"

t="$(now)"
"$INFRA" up connect >&2
say "connect up with connectors $CONNECT_CONNECTORS ($(since "$t"))"

t="$(now)"
delete="DELETE FROM $TABLE WHERE id = 1;"
[ "$BREAK" != delete ] || { delete=""; say "CDC_SMOKE_BREAK=delete: skipping the DELETE; this run must fail"; }
sql <<EOF
INSERT INTO $TABLE VALUES (1, 'a', 1.50);
BEGIN;
UPDATE $TABLE SET name = 'b' WHERE id = 1;
UPDATE $TABLE SET name = 'c', amount = 2.25 WHERE id = 1;
COMMIT;
$delete
EOF
say "insert, two updates in one transaction, delete: committed"

# consume CONNECTOR COUNT: read COUNT records of CONNECTOR's topic into $WORK/CONNECTOR.jsonl (one JSON
# object a line: o offset, k key, v value or null), waiting up to TIMEOUT seconds for them.
JAVA="$(tr '\0' '\n' <"/proc/$(cat "$STATE/run/connect.pid")/cmdline" | head -n 1)" # Connect's own Java 17
consume() {
  local c="$1" n="$2"
  # --partition/--offset: assign the one partition, no consumer group to join (saves seconds); a short-lived
  # JVM: C1 only, serial GC.
  "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="file:$HERE/connect/log4j2.properties" \
    -Dconnect.log.file="$WORK/consumer-$c.log" -cp "$STATE/libs/connect/*" \
    org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --topic "$c.public.$TABLE" --partition 0 --offset earliest --max-messages "$n" --timeout-ms "$((TIMEOUT * 1000))" \
    --formatter-property print.offset=true --formatter-property print.key=true \
    --formatter-property key.separator=$'\t' >"$WORK/$c.raw" 2>"$WORK/consumer-$c.err" || true
  jq -cR 'split("\t") | {o: (.[0] | ltrimstr("Offset:") | tonumber), k: (.[1] | fromjson),
    v: (if .[2] == "null" then null else (.[2] | fromjson) end)}' <"$WORK/$c.raw" >"$WORK/$c.jsonl"
}
consume json 5 &
p1=$!
consume plain 5 &
p2=$!
consume flat 4 &
p3=$!
wait $p1 $p2 $p3
say "topics read ($(since "$t") after the first commit)"

# check CONNECTOR JQ: JQ reads the records as one array and prints "ok: ..." or the failures.
fails=0
check() {
  local c="$1" out
  out="$(jq -rs --arg table "$TABLE" "$2" "$WORK/$c.jsonl" 2>&1)" || out="jq error: $out"
  if [[ "$out" == ok:* ]]; then
    echo "$c ($c.public.$TABLE): ${out#ok: }"
  else
    echo "$c ($c.public.$TABLE): FAIL: $out"
    fails=$((fails + 1))
  fi
}

# The full change events (json: inside .payload, with the schema beside it; plain: bare).
envelope_checks='
  def ops: map(if .v == null then "tombstone" else .v.op end) | join(",");
  (map(.v) | map(select(. != null))) as $ev
  | [ if ops != "c,u,u,d,tombstone" then "ops \(ops), want c,u,u,d,tombstone" else empty end,
      if ([.[].k.id] | unique) != [1] then "keys \([.[].k] | unique | tojson), want {\"id\":1}" else empty end,
      if ($ev | map(.after.name // empty)) != ["a","b","c"] then "after.name \($ev | map(.after.name) | tojson), want a,b,c" else empty end,
      if ($ev | length) >= 3 and $ev[1].source.txId != $ev[2].source.txId then "the two updates have txId \($ev[1].source.txId) and \($ev[2].source.txId), want one transaction" else empty end,
      if ($ev | length) >= 3 and ($ev[1].source.lsn >= $ev[2].source.lsn) then "update LSNs \($ev[1].source.lsn), \($ev[2].source.lsn) not increasing" else empty end,
      if ($ev | length) >= 4 and ($ev[2].source.lsn >= $ev[3].source.lsn) then "delete LSN \($ev[3].source.lsn) not after the updates" else empty end,
      if ($ev | map(.source.table) | unique) != [$table] then "source.table \($ev | map(.source.table) | unique | tojson)" else empty end,
      decimal_check
    ] as $f
  | if ($f | length) == 0
    then "ok: \(length) records, ops \(ops); updates in txId \($ev[1].source.txId) at LSN \($ev[1].source.lsn) < \($ev[2].source.lsn)"
    else $f | join("; ") end'
# json: unwrap {schema, payload}; the schema must be there; decimals are base64 bytes (precise mode).
check json 'def decimal_check:
    if .[0].v.after.amount != "AJY=" then "after.amount \(.[0].v.after.amount | tojson), want base64 AJY= (150, scale 2)" else empty end;
  map(if .v != null and (.v.schema.name // "" | endswith(".Envelope") | not) then .v = {op: "no Envelope schema"} else . end)
  | map(.k = .k.payload | .v = (if .v == null then null else .v.payload end))
  | '"$envelope_checks"
check plain 'def decimal_check:
    if .[0].v.after.amount != "1.50" or .[2].v.after.amount != "2.25"
    then "after.amount \([.[0].v.after.amount, .[2].v.after.amount] | tojson), want strings 1.50, 2.25" else empty end;
  '"$envelope_checks"
# flat: the row plus __op/__table/__lsn/__source_ts_ms/__deleted; the delete rewritten, no tombstone.
check flat '
  def ops: map(if .v == null then "tombstone" else .v.__op end) | join(",");
  [ if ops != "c,u,u,d" then "ops \(ops), want c,u,u,d (no tombstone)" else empty end,
    if map(.v.__deleted // null) != ["false","false","false","true"] then "__deleted \(map(.v.__deleted) | tojson), want false,false,false,true" else empty end,
    if (map(.v.name // empty)) != ["a","b","c"] then "name \(map(.v.name) | tojson), want a,b,c" else empty end,
    if length >= 3 and (.[1].v.__lsn >= .[2].v.__lsn) then "update __lsn \(.[1].v.__lsn), \(.[2].v.__lsn) not increasing" else empty end,
    if length >= 3 and (.[1].v.__source_ts_ms != .[2].v.__source_ts_ms) then "the two updates have __source_ts_ms \(.[1].v.__source_ts_ms), \(.[2].v.__source_ts_ms), want one commit time" else empty end,
    if (map(.v.__table // empty) | unique) != [$table] then "__table \(map(.v.__table) | unique | tojson)" else empty end,
    if .[0].v.amount != "1.50" then "amount \(.[0].v.amount | tojson), want \"1.50\"" else empty end
  ] as $f
  | if ($f | length) == 0
    then "ok: \(length) records, ops \(ops), __deleted \(map(.v.__deleted) | join(",")); updates at __lsn \(.[1].v.__lsn) < \(.[2].v.__lsn)"
    else $f | join("; ") end'

if [ "$fails" -gt 0 ]; then
  for c in json plain flat; do
    [ ! -s "$WORK/consumer-$c.err" ] || { say "console consumer ($c):"; tail -n 3 "$WORK/consumer-$c.err" >&2; }
  done
  die "$fails of 3 connectors did not deliver the expected records"
fi
