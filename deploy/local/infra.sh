#!/usr/bin/env bash
# Real single-node Kafka (KRaft) and Cassandra 5.0 on loopback for rtgraph's tests, from Maven Central jars;
# Redis (Debian's redis-server, no persistence), the frequency-capping peer of the benchmarks; and, for the
# CDC chain, PostgreSQL (Debian's packages, a private cluster) and Kafka Connect with Debezium.
#
#   deploy/local/infra.sh up [SERVER]...     start (default: kafka cassandra redis) and wait until they answer;
#                                            `up connect` also starts kafka and postgres
#   deploy/local/infra.sh down [SERVER]...   stop what our PID files name (default: all five)
#   deploy/local/infra.sh status [SERVER]... show state; exit 0 only if all named servers answer
#   deploy/local/infra.sh env                print `export RTGRAPH_TEST_...` lines for the tests
#
# SERVER is kafka, cassandra, redis, postgres or connect. Connect runs the connectors named by CONNECT_CONNECTORS
# (default: json plain flat, the files in deploy/local/connect/connectors/).
#
# See deploy/local/README.md for the environment variables and the state-dir layout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PROG="rtgraph infra"

STATE="${RTGRAPH_INFRA_DIR:-$REPO/.infra}"
case "$STATE" in /*) ;; *) STATE="$PWD/$STATE" ;; esac
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
CASSANDRA_PORT="${CASSANDRA_PORT:-9042}"
CASSANDRA_STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-7000}"
CASSANDRA_JMX_PORT="${CASSANDRA_JMX_PORT:-7199}"
REDIS_PORT="${REDIS_PORT:-16379}"     # not 6379 (the port of Debian's redis-server service)
# Debian's package redis-server (Redis 7.0 or later: the process title names the config file, see ours()).
REDIS_SERVER="${REDIS_SERVER:-/usr/bin/redis-server}"
PG_PORT="${PG_PORT:-15432}"          # not 5432 (the system cluster), not >= 32768 (ephemeral ports)
PG_USER="${PG_USER:-dbz}"            # Debezium's user (LOGIN REPLICATION), owner of PG_DB
PG_PASSWORD="${PG_PASSWORD:-dbz}"
PG_DB="${PG_DB:-app}"
CONNECT_PORT="${CONNECT_PORT:-8083}" # Kafka Connect REST API
CONNECT_HEAP="${CONNECT_HEAP:-512m}"
# Connectors Connect runs: names of files in deploy/local/connect/connectors/ (without .properties) or paths
# to .properties files of your own, separated by spaces or commas.
CONNECT_CONNECTORS="${CONNECT_CONNECTORS:-json plain flat}"
# The Kafka Connect talks to: empty (default) for the Kafka of this state dir (127.0.0.1:KAFKA_PORT, started by
# `up connect` if needed); 127.0.0.1:PORT for a Kafka someone else runs (e.g. RTGRAPH_TEST_KAFKA), which
# `up connect` then neither starts nor stops.
CONNECT_KAFKA="${CONNECT_KAFKA:-}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
CASSANDRA_HEAP="${CASSANDRA_HEAP:-1g}"
# periodic (Cassandra's default: a write is acknowledged before its commit log is synced, so a killed
# node loses up to commitlog_sync_period of them) or group (acknowledged after the sync, every 10 ms).
CASSANDRA_COMMITLOG_SYNC="${CASSANDRA_COMMITLOG_SYNC:-periodic}"
START_TIMEOUT="${RTGRAPH_INFRA_START_TIMEOUT:-300}" # seconds until a started server must answer (87 s seen under load 30)
STOP_TIMEOUT="${RTGRAPH_INFRA_STOP_TIMEOUT:-60}"    # seconds after SIGTERM before SIGKILL
HOST="${INFRA_HOST:-127.0.0.1}"                     # loopback only (127/8); a cluster's nodes use 127.0.0.N
# One node of a cluster (set by the cluster commands below; the defaults are the single node):
KAFKA_NODE_ID="${KAFKA_NODE_ID:-1}"
KAFKA_VOTERS="${KAFKA_VOTERS:-1@$HOST:$KAFKA_CONTROLLER_PORT}" # the KRaft controller quorum
KAFKA_RF="${KAFKA_RF:-1}"                                       # internal and default topics' replication factor
KAFKA_MIN_ISR="${KAFKA_MIN_ISR:-1}"                             # and their min.insync.replicas
KAFKA_CLUSTER_ID="${KAFKA_CLUSTER_ID:-}"                        # empty: a new random id at format
CASSANDRA_SEEDS="${CASSANDRA_SEEDS:-$HOST:$CASSANDRA_STORAGE_PORT}"
CASSANDRA_INITIAL_TOKEN="${CASSANDRA_INITIAL_TOKEN:-0}"
CASSANDRA_AUTO_BOOTSTRAP="${CASSANDRA_AUTO_BOOTSTRAP:-true}"
INFRA_NO_WAIT="${INFRA_NO_WAIT:-0}" # 1: `up` launches and returns without waiting (the cluster commands wait)
# Cluster size: `up --cassandra-nodes N --kafka-brokers M` or these variables (1: the single node).
CASSANDRA_NODES="${CASSANDRA_NODES:-1}"
KAFKA_BROKERS="${KAFKA_BROKERS:-1}"
CLUSTER_CASSANDRA_HEAP="${CLUSTER_CASSANDRA_HEAP:-768m}"
CLUSTER_KAFKA_HEAP="${CLUSTER_KAFKA_HEAP:-384m}"

SERVERS=(kafka cassandra redis postgres connect) # `down` with no names: all, connect first
UP_DEFAULT=(kafka cassandra redis)                # `up`/`status` with no names: what the Go tests need

die() { echo "$PROG: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
say() { echo "$PROG: $*" >&2; }

case "$CASSANDRA_COMMITLOG_SYNC" in periodic | group) ;; *) die "CASSANDRA_COMMITLOG_SYNC must be periodic or group, got '$CASSANDRA_COMMITLOG_SYNC'" ;; esac
[[ "$HOST" =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "INFRA_HOST must be a loopback address (127.x.y.z), got '$HOST'"
for v in KAFKA_PORT KAFKA_CONTROLLER_PORT CASSANDRA_PORT CASSANDRA_STORAGE_PORT CASSANDRA_JMX_PORT \
  REDIS_PORT PG_PORT CONNECT_PORT START_TIMEOUT STOP_TIMEOUT KAFKA_NODE_ID KAFKA_RF KAFKA_MIN_ISR; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[ -z "$CONNECT_KAFKA" ] || [[ "$CONNECT_KAFKA" =~ ^127\.0\.0\.1:[0-9]+$ ]] ||
  die "CONNECT_KAFKA must be 127.0.0.1:PORT (loopback only), got '$CONNECT_KAFKA'"

addr_of() {
  case "$1" in
  kafka) echo "$HOST:$KAFKA_PORT" ;;
  cassandra) echo "$HOST:$CASSANDRA_PORT" ;;
  redis) echo "$HOST:$REDIS_PORT" ;;
  postgres) echo "$HOST:$PG_PORT" ;;
  connect) echo "$HOST:$CONNECT_PORT" ;;
  esac
}
# main_class NAME: what the server's command line contains (with the state dir), see ours().
main_class() {
  case "$1" in
  kafka) echo kafka.Kafka ;;
  cassandra) echo org.apache.cassandra.service.CassandraDaemon ;;
  redis) echo redis-server ;;
  postgres) echo "/bin/postgres -D " ;;
  connect) echo org.apache.kafka.connect.cli.ConnectStandalone ;;
  esac
}
ports_of() {
  case "$1" in
  kafka) echo "KAFKA_PORT=$KAFKA_PORT KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT" ;;
  cassandra) echo "CASSANDRA_PORT=$CASSANDRA_PORT CASSANDRA_STORAGE_PORT=$CASSANDRA_STORAGE_PORT CASSANDRA_JMX_PORT=$CASSANDRA_JMX_PORT" ;;
  redis) echo "REDIS_PORT=$REDIS_PORT" ;;
  postgres) echo "PG_PORT=$PG_PORT" ;;
  connect) echo "CONNECT_PORT=$CONNECT_PORT" ;;
  esac
}
pidfile() { echo "$STATE/run/$1.pid"; }
env_var() { case "$1" in kafka) echo RTGRAPH_TEST_KAFKA ;; cassandra) echo RTGRAPH_TEST_CASSANDRA ;; redis) echo RTGRAPH_TEST_REDIS ;; esac; }
signal_of() { case "$1" in postgres) echo INT ;; *) echo TERM ;; esac; } # SIGINT = PostgreSQL's fast shutdown

# parse_names DEFAULT ARGS...: set NAMES to the validated server names (none given: DEFAULT, "all" or "up").
NAMES=()
parse_names() {
  local n dflt="$1"
  shift
  for n in "$@"; do
    case "$n" in kafka | cassandra | redis | postgres | connect) ;; *) die "unknown server '$n' (kafka, cassandra, redis, postgres or connect)" ;; esac
  done
  if [ $# -gt 0 ]; then
    NAMES=("$@")
  elif [ "$dflt" = all ]; then
    NAMES=("${SERVERS[@]}")
  else
    NAMES=("${UP_DEFAULT[@]}")
  fi
}

# --- processes ---------------------------------------------------------------------------------------

# ours NAME PID: PID is a live (non-zombie) process started by us for NAME from this state dir. Guards
# against PID reuse: a PID file only counts when the process's command line is our server's. (Redis
# rewrites its command line into its process title; ours names its config file in the state dir.)
ours() {
  local cmd
  [ -r "/proc/$2/cmdline" ] || return 1
  cmd="$(tr '\0' ' ' <"/proc/$2/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *"$(main_class "$1")"* && "$cmd" == *"$STATE/"* ]]
}

# gone PID: the process has exited: no /proc entry, or only its zombie main thread is left. An exiting
# JVM loses its command line (memory released) before its sockets are closed, and its main thread can be a
# zombie while other threads still tear down and hold the ports, so neither `ours` turning false nor a
# zombie main thread is enough to know that the ports are free again.
gone() {
  local stat tasks
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  [ "${stat:0:1}" = Z ] || return 1
  tasks=("/proc/$1/task"/*)
  [ "${#tasks[@]}" -le 1 ]
}

# live_pid NAME: print the PID from NAME's PID file if it names a live process of ours.
live_pid() {
  local f pid
  f="$(pidfile "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  ours "$1" "$pid" || return 1
  echo "$pid"
}

# port_busy PORT: something accepts connections on HOST:PORT.
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

check_ports_free() {
  local kv
  for kv in $(ports_of "$1"); do
    if port_busy "${kv#*=}"; then
      if [ -n "$(env_var "$1")" ]; then
        die "$1: port $HOST:${kv#*=} is already in use by a process we did not start (set ${kv%%=*} to a free port; to use a server already running there with with-infra.sh, export $(env_var "$1")=$(addr_of "$1"))"
      fi
      die "$1: port $HOST:${kv#*=} is already in use by a process we did not start (set ${kv%%=*} to a free port)"
    fi
  done
}

# --- prerequisites -----------------------------------------------------------------------------------

java_major() { # JDK_HOME -> major version (e.g. 17), from its release file or `java -version`
  local v=""
  [ -f "$1/release" ] && v="$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$1/release")"
  [ -n "$v" ] || v="$("$1/bin/java" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n1)"
  v="${v#1.}"
  echo "${v%%[.+_-]*}"
}

# Both servers run on Java 17: Kafka 4.x needs 17+, Cassandra 5.0 runs on 11 or 17 only (newer JDKs fail
# at System.setSecurityManager), so the JDK is picked by version, never by whatever `java` is on PATH.
JAVA=""
need_java() {
  [ -z "$JAVA" ] || return 0
  local d
  local jvms="${RTGRAPH_JVM_DIR:-/usr/lib/jvm}" # where Debian installs JDKs (overridable for tests)
  for d in "${JAVA_HOME:-}" "$jvms/java-17-openjdk-amd64" "$jvms"/*; do
    if [ -z "$d" ] || [ ! -x "$d/bin/java" ]; then continue; fi
    if [ "$(java_major "$d")" = 17 ]; then
      JAVA_HOME_17="$d"
      JAVA="$d/bin/java"
      return 0
    fi
  done
  die "Java 17 not found: install Debian package openjdk-17-jdk-headless"
}

need_maven() {
  command -v mvn >/dev/null 2>&1 || die "Maven not found: install Debian package maven"
}

# Redis comes from Debian's package redis-server, which this script does not install (.ci/run does).
need_redis() {
  [ -x "$REDIS_SERVER" ] || die "redis: $REDIS_SERVER not found: install Debian package redis-server (apt-get install redis-server)"
  command -v redis-cli >/dev/null 2>&1 || die "redis: redis-cli not found: install Debian package redis-tools (redis-server depends on it)"
}

# PostgreSQL comes from Debian's packages (no jars on Maven Central): the newest installed major version,
# or PG_BINDIR. Missing: `apt-get install postgresql` (as root, or with sudo), `apt-get update` first if
# the package lists are empty or stale.
PG_BIN=""
need_postgres() {
  [ -z "$PG_BIN" ] || return 0
  local d
  if [ -n "${PG_BINDIR:-}" ]; then
    [ -x "$PG_BINDIR/postgres" ] || die "PG_BINDIR=$PG_BINDIR has no postgres binary"
    PG_BIN="$PG_BINDIR"
    return 0
  fi
  d="$(find_pg_bindir)"
  if [ -z "$d" ]; then
    local sudo_cmd="" t0
    t0="$(now)"
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null 2>&1 || die "PostgreSQL not found: install Debian package postgresql"
      sudo_cmd=sudo
    fi
    mkdir -p "$STATE/logs"
    say "postgres: installing Debian package postgresql (log: $STATE/logs/apt-postgresql.log)"
    if ! DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q postgresql >"$STATE/logs/apt-postgresql.log" 2>&1; then
      DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get update -q >>"$STATE/logs/apt-postgresql.log" 2>&1 || true
      DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q postgresql >>"$STATE/logs/apt-postgresql.log" 2>&1 ||
        { tail -n 20 "$STATE/logs/apt-postgresql.log" >&2; die "postgres: apt-get install postgresql failed"; }
    fi
    say "postgres: installed ($(since "$t0"))"
    d="$(find_pg_bindir)"
    [ -n "$d" ] || die "postgres: no /usr/lib/postgresql/*/bin/postgres after installing postgresql"
  fi
  PG_BIN="$d"
}
find_pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$d" ] && [ -x "$d/postgres" ] && echo "$d"
  return 0
}

# PostgreSQL refuses to run as root: as root, the cluster belongs to and runs as PG_OS_USER (Debian's
# `postgres`); otherwise as the current user. as_pg CMD... runs CMD as that user (setpriv execs in place,
# so the PID launch() records is the server's own).
PG_OS_USER="$(id -un)"
AS_PG=()
if [ "$(id -u)" = 0 ]; then
  PG_OS_USER="${PG_OS_USER_AS_ROOT:-postgres}"
  AS_PG=(setpriv --reuid="$PG_OS_USER" --regid="$(id -g "$PG_OS_USER" 2>/dev/null || echo 0)" --init-groups)
fi
as_pg() { "${AS_PG[@]}" "$@"; }
PG_SOCKET_DIR="$STATE/run/postgres"
# pg_admin ARGS...: psql as the administrator over the state dir's Unix socket.
pg_admin() { as_pg "$PG_BIN/psql" -X -q -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U "$PG_OS_USER" "$@"; }

# connectors: print the connector .properties templates CONNECT_CONNECTORS names, one a line.
connectors() {
  local c f
  for c in ${CONNECT_CONNECTORS//,/ }; do
    case "$c" in
    */* | *.properties) f="$c" ;;
    *) f="$HERE/connect/connectors/$c.properties" ;;
    esac
    case "$f" in /*) ;; *) f="$PWD/$f" ;; esac
    [ -f "$f" ] || die "connect: no connector file $f (CONNECT_CONNECTORS=$CONNECT_CONNECTORS)"
    echo "$f"
  done
}
# connector_name FILE: its name= property.
connector_name() { sed -n 's/^name[[:space:]]*=[[:space:]]*//p' "$1" | tail -n 1; }

# fetch_libs NAME: copy NAME's runtime jars (deploy/local/NAME/pom.xml) into $STATE/libs/NAME once.
# The copy is redone only when the pom changes. Extra Maven flags: RTGRAPH_MAVEN_ARGS.
fetch_libs() {
  local name="$1" pom="$HERE/$1/pom.xml" dir="$STATE/libs/$1" sum log="$STATE/logs/maven-$1.log"
  sum="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$sum" ]; then
    return 0
  fi
  need_maven
  local t0
  t0="$(now)"
  say "$name: fetching jars with Maven (log: $log)"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  # shellcheck disable=SC2086 # RTGRAPH_MAVEN_ARGS is a list of flags
  if ! JAVA_HOME="$JAVA_HOME_17" mvn -B -q -Dstyle.color=never ${RTGRAPH_MAVEN_ARGS:-} -f "$pom" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir.tmp" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "$name: Maven could not fetch the jars (see $log)"
  fi
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  echo "$sum" >"$dir/.complete"
  say "$name: jars ready in $dir ($(since "$t0"))"
}

# The readiness probe (deploy/local/probe) is built once into the state dir and rebuilt when its source
# or its client libraries change.
PROBE="$STATE/bin/probe"
need_probe() {
  local stamp
  # Stamp = its source + the versions of its two clients in go.mod (not all of go.sum, which other work
  # changes often and which the already-built binary does not depend on).
  stamp="$({ cat "$HERE/probe/main.go"; grep -E 'IBM/sarama |cassandra-gocql-driver/v2 ' "$REPO/go.mod"; } |
    sha256sum | cut -d' ' -f1)"
  if [ -x "$PROBE" ] && [ "$(cat "$PROBE.stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  command -v go >/dev/null 2>&1 || die "Go not found: install Go (see go.mod for the version) to build deploy/local/probe"
  mkdir -p "$STATE/bin" "$STATE/logs"
  local t0
  t0="$(now)"
  if ! (cd "$REPO" && go build -o "$PROBE.tmp" ./deploy/local/probe) >"$STATE/logs/probe-build.log" 2>&1; then
    cat "$STATE/logs/probe-build.log" >&2
    die "could not build deploy/local/probe"
  fi
  mv "$PROBE.tmp" "$PROBE"
  echo "$stamp" >"$PROBE.stamp"
  say "built $PROBE ($(since "$t0"))"
}

# --- starting ----------------------------------------------------------------------------------------

LAUNCHED=() # servers this invocation started (stopped again if `up` fails or is interrupted)
declare -A LAUNCH_TIME=()
declare -A LOG_OFFSET=() # log file -> its size when this invocation launched the server

# launch NAME CMD...: start CMD in its own session (immune to the caller's Ctrl-C and hangup), output
# appended to logs/NAME.log, working dir logs/ (hs_err files land there), PID in run/NAME.pid.
launch() {
  local name="$1" out="$STATE/logs/$1.log" pf i
  shift
  pf="$(pidfile "$name")"
  rm -f "$pf"
  local f
  for f in "$out" "$(server_log "$name")"; do LOG_OFFSET[$f]="$(stat -c %s "$f" 2>/dev/null || echo 0)"; done
  echo "=== $(date -u '+%Y-%m-%dT%H:%M:%SZ') infra.sh: starting $name" >>"$out"
  # bash -c writes its own PID, then exec keeps that PID for java: the file names the server itself.
  # 9>&- : the server must not inherit the lock held on fd 9.
  # shellcheck disable=SC2016 # $$, $0 and $@ are for the inner bash
  (cd "$STATE/logs" && exec setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pf" "$@" \
    </dev/null >>"$out" 2>&1 9>&-) &
  for ((i = 0; i < 100; i++)); do
    [ -s "$pf" ] && break
    sleep 0.05
  done
  [ -s "$pf" ] || die "$name: did not start (see $out)"
  LAUNCHED+=("$name")
  LAUNCH_TIME[$name]="$(now)"
  if [ -n "${RTGRAPH_INFRA_STARTED_FILE:-}" ]; then echo "$name" >>"$RTGRAPH_INFRA_STARTED_FILE"; fi
}

# Kafka cluster ids are 16 random bytes in URL-safe base64 without padding, not starting with '-'
# (what `kafka-storage.sh random-uuid` prints); made here to save a JVM start.
kafka_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [ "${id:0:1}" != "-" ] && break
  done
  echo "$id"
}

start_kafka() {
  local data="$STATE/data/kafka" conf="$STATE/conf/kafka" logdir="$STATE/logs/kafka" cp
  mkdir -p "$data" "$conf" "$logdir"
  sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@KAFKA_CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    -e "s#@DATA@#$data#g" -e "s#@HOST@#$HOST#g" -e "s#@NODE_ID@#$KAFKA_NODE_ID#g" -e "s#@VOTERS@#$KAFKA_VOTERS#g" \
    -e "s#@RF@#$KAFKA_RF#g" -e "s#@MIN_ISR@#$KAFKA_MIN_ISR#g" "$HERE/kafka/server.properties" >"$conf/server.properties"
  cp="$STATE/libs/kafka/*"
  local logopts=(-Dkafka.logs.dir="$logdir" -Dlog4j2.configurationFile="file:$HERE/kafka/log4j2.properties")
  if [ ! -f "$data/meta.properties" ]; then
    local t0
    t0="$(now)"
    if ! "$JAVA" "${logopts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "${KAFKA_CLUSTER_ID:-$(kafka_cluster_id)}" \
      -c "$conf/server.properties" >>"$STATE/logs/kafka.log" 2>&1; then
      tail -n 20 "$STATE/logs/kafka.log" >&2
      die "kafka: storage format failed (see $STATE/logs/kafka.log)"
    fi
    say "kafka: formatted new storage in $data ($(since "$t0"))"
  fi
  launch kafka "$JAVA" -Xms128m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    "${logopts[@]}" -cp "$cp" kafka.Kafka "$conf/server.properties"
}

start_cassandra() {
  local base="$STATE/data/cassandra" conf="$STATE/conf/cassandra" logdir="$STATE/logs/cassandra" libs jamm=""
  local jars=()
  libs="$STATE/libs/cassandra"
  mkdir -p "$base" "$conf/triggers" "$logdir"
  local sync=()
  [ "$CASSANDRA_COMMITLOG_SYNC" = group ] &&
    sync=(-e 's#^commitlog_sync: periodic$#commitlog_sync: group#' -e 's#^commitlog_sync_period: .*#commitlog_sync_group_window: 10ms#')
  sed -e "s#@BASE@#$base#g" -e "s#@CASSANDRA_PORT@#$CASSANDRA_PORT#g" \
    -e "s#@CASSANDRA_STORAGE_PORT@#$CASSANDRA_STORAGE_PORT#g" -e "s#@HOST@#$HOST#g" -e "s#@SEEDS@#$CASSANDRA_SEEDS#g" \
    -e "s#@INITIAL_TOKEN@#$CASSANDRA_INITIAL_TOKEN#g" -e "s#@AUTO_BOOTSTRAP@#$CASSANDRA_AUTO_BOOTSTRAP#g" "${sync[@]}" \
    "$HERE/cassandra/cassandra.yaml" >"$conf/cassandra.yaml"
  jars=("$libs"/jamm-*.jar)
  [ -f "${jars[0]}" ] && jamm="${jars[0]}"
  [ -n "$jamm" ] || die "cassandra: no jamm jar in $libs"
  # JMX: local-only registry on CASSANDRA_JMX_PORT; the RMI server port is pinned to the same port
  # (otherwise the JVM opens a second, random port).
  launch cassandra "$JAVA" -Xms"$CASSANDRA_HEAP" -Xmx"$CASSANDRA_HEAP" @"$HERE/cassandra/jvm17.args" \
    -javaagent:"$jamm" \
    -XX:+ExitOnOutOfMemoryError -XX:HeapDumpPath="$logdir" -XX:ErrorFile="$logdir/hs_err_%p.log" \
    -Dcassandra.config="file://$conf/cassandra.yaml" \
    -Dcassandra-foreground=yes \
    -Dcassandra.storagedir="$base" \
    -Dcassandra.logdir="$logdir" \
    -Dcassandra.triggers_dir="$conf/triggers" \
    -Dlogback.configurationFile="file://$HERE/cassandra/logback.xml" \
    -Dcassandra.jmx.local.port="$CASSANDRA_JMX_PORT" \
    -Dcom.sun.management.jmxremote.rmi.port="$CASSANDRA_JMX_PORT" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.load_ring_state=false \
    -Dcassandra.superuser_setup_delay_ms=0 \
    -Dcassandra.ring_delay_ms=5000 \
    -Dcassandra.consistent.rangemovement=false \
    -cp "$conf:$libs/*" org.apache.cassandra.service.CassandraDaemon
}

# start_redis: a Redis server on HOST:REDIS_PORT with no persistence (no snapshots, no append-only file),
# settings rendered into $STATE/conf/redis/redis.conf at every start. Its process title names that file,
# which is what ours() recognises it by.
start_redis() {
  local conf="$STATE/conf/redis" data="$STATE/data/redis" logdir="$STATE/logs/redis"
  need_redis
  mkdir -p "$conf" "$data" "$logdir"
  printf '%s\n' "bind $HOST" "port $REDIS_PORT" "protected-mode yes" "daemonize no" 'save ""' "appendonly no" \
    "dir $data" "logfile $logdir/server.log" \
    'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"' >"$conf/redis.conf"
  launch redis "$REDIS_SERVER" "$conf/redis.conf"
}

# start_postgres: a private cluster in $STATE/data/postgres (initdb on first start), owned by and run as
# PG_OS_USER; settings from postgres/postgresql.conf and postgres/pg_hba.conf, re-rendered at every start.
start_postgres() {
  local data="$STATE/data/postgres" conf="$STATE/conf/postgres"
  need_postgres
  mkdir -p "$STATE/data" "$conf" "$PG_SOCKET_DIR"
  if [ ! -s "$data/PG_VERSION" ]; then
    local t0
    t0="$(now)"
    rm -rf "$data"
    mkdir -p "$data"
    if [ -n "${AS_PG[*]}" ]; then chown "$PG_OS_USER:" "$data"; fi
    chmod 700 "$data"
    if ! as_pg "$PG_BIN/initdb" -D "$data" -U "$PG_OS_USER" -E UTF8 --no-locale --auth-local=peer \
      --auth-host=scram-sha-256 >>"$STATE/logs/postgres.log" 2>&1; then
      tail -n 20 "$STATE/logs/postgres.log" >&2
      die "postgres: initdb failed (see $STATE/logs/postgres.log)"
    fi
    echo "include '$conf/postgresql.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
    say "postgres: initialised a new cluster in $data ($(since "$t0"))"
  fi
  if [ -n "${AS_PG[*]}" ]; then chown "$PG_OS_USER:" "$PG_SOCKET_DIR"; fi
  chmod 700 "$PG_SOCKET_DIR"
  sed -e "s#@PG_PORT@#$PG_PORT#g" -e "s#@SOCKET_DIR@#$PG_SOCKET_DIR#g" -e "s#@CONF@#$conf#g" \
    "$HERE/postgres/postgresql.conf" >"$conf/postgresql.conf"
  sed -e "s#@PG_SUPERUSER@#$PG_OS_USER#g" -e "s#@PG_USER@#$PG_USER#g" "$HERE/postgres/pg_hba.conf" >"$conf/pg_hba.conf"
  launch postgres "${AS_PG[@]}" "$PG_BIN/postgres" -D "$data"
}

# start_connect: a Kafka Connect standalone worker with the connectors CONNECT_CONNECTORS names, rendered
# into $STATE/conf/connect/ (run/connect.connectors records which).
start_connect() {
  local conf="$STATE/conf/connect" data="$STATE/data/connect" logdir="$STATE/logs/connect" f n files=() names=()
  mkdir -p "$conf" "$data" "$logdir"
  sed -e "s#@KAFKA@#${CONNECT_KAFKA:-$HOST:$KAFKA_PORT}#g" -e "s#@CONNECT_PORT@#$CONNECT_PORT#g" -e "s#@DATA@#$data#g" \
    "$HERE/connect/worker.properties" >"$conf/worker.properties"
  while read -r f; do
    n="$(connector_name "$f")"
    [ -n "$n" ] || die "connect: $f has no name="
    sed -e "s#@PG_PORT@#$PG_PORT#g" -e "s#@PG_USER@#$PG_USER#g" -e "s#@PG_PASSWORD@#$PG_PASSWORD#g" \
      -e "s#@PG_DB@#$PG_DB#g" "$f" >"$conf/$n.properties"
    files+=("$conf/$n.properties")
    names+=("$n")
  done < <(connectors)
  [ ${#files[@]} -gt 0 ] || die "connect: no connectors (CONNECT_CONNECTORS is empty)"
  echo "${names[*]}" >"$STATE/run/connect.connectors"
  launch connect "$JAVA" -Xms128m -Xmx"$CONNECT_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="file:$HERE/connect/log4j2.properties" -Dconnect.log.file="$logdir/connect.log" \
    -cp "$STATE/libs/connect/*" org.apache.kafka.connect.cli.ConnectStandalone "$conf/worker.properties" "${files[@]}"
}

server_log() {
  case "$1" in
  kafka) echo "$STATE/logs/kafka/server.log" ;;
  cassandra) echo "$STATE/logs/cassandra/system.log" ;;
  redis) echo "$STATE/logs/redis/server.log" ;;
  postgres) echo "$STATE/logs/postgres.log" ;;
  connect) echo "$STATE/logs/connect/connect.log" ;;
  esac
}

# answers NAME: one readiness check; prints what answered. Kafka and Cassandra: the Go probe. Redis: PING
# answers PONG. PostgreSQL: the administrator runs a query. Connect: the REST API lists every connector it was started with as
# RUNNING with all its tasks RUNNING, and the replication slot of each connector on our PostgreSQL is held by
# a WAL sender that connected after Connect started. RUNNING alone is not enough: Debezium's task reports
# RUNNING before it has updated its publication and started streaming, and a change committed before its
# table is in the publication is never published. A FAILED connector or task: exit 2.
answers() {
  case "$1" in
  kafka | cassandra) "$PROBE" -timeout 0 "$1" "$(addr_of "$1")" 2>&1 ;;
  redis)
    need_redis
    local pong v
    pong="$(timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>&1)" || { echo "$pong"; return 1; }
    [ "$pong" = PONG ] || { echo "PING: $pong"; return 1; }
    v="$(timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" info server 2>/dev/null | sed -n 's/^redis_version:\([0-9.]*\).*/\1/p')"
    echo "Redis ${v:-?}, PING answered PONG"
    ;;
  postgres)
    need_postgres
    local v
    v="$(pg_admin -d postgres -Atc 'SHOW server_version' 2>&1)" || { echo "$v"; return 1; }
    echo "PostgreSQL $v, wal_level=$(pg_admin -d postgres -Atc 'SHOW wal_level' 2>&1)"
    ;;
  connect)
    local base="http://$HOST:$CONNECT_PORT" n st out=() ver
    ver="$(curl -fsS -m 5 "$base/" 2>&1)" || { echo "REST API: $ver"; return 1; }
    for n in $(cat "$STATE/run/connect.connectors" 2>/dev/null); do
      st="$(curl -sS -m 5 "$base/connectors/$n/status" 2>&1)" || { echo "$n: $st"; return 1; }
      if jq -e '.connector.state == "FAILED" or any(.tasks[]?; .state == "FAILED")' <<<"$st" >/dev/null 2>&1; then
        echo "$n FAILED: $(jq -r '[.connector.trace // empty, (.tasks[]?.trace // empty)] | first // "" | split("\n") | .[0:3] | join(" | ")' <<<"$st")"
        return 2
      fi
      jq -e '.connector.state == "RUNNING" and (.tasks | length) > 0 and all(.tasks[]; .state == "RUNNING")' \
        <<<"$st" >/dev/null 2>&1 || { echo "$n: not running yet: $(jq -c '[.connector.state, [.tasks[]?.state]]' <<<"$st" 2>/dev/null || echo "$st")"; return 1; }
      out+=("$n")
    done
    local slots=() f slot port since_ts streaming
    for n in "${out[@]}"; do
      f="$STATE/conf/connect/$n.properties"
      slot="$(sed -n 's/^slot\.name[[:space:]]*=[[:space:]]*//p' "$f" | tail -n 1)"
      port="$(sed -n 's/^database\.port[[:space:]]*=[[:space:]]*//p' "$f" | tail -n 1)"
      [[ "$slot" =~ ^[a-z0-9_]+$ && "$port" = "$PG_PORT" ]] && slots+=("'$slot'")
    done
    if [ ${#slots[@]} -gt 0 ]; then
      need_postgres
      since_ts="$(stat -c %Y "$(pidfile connect)" 2>/dev/null || echo 0)"
      streaming="$(pg_admin -d postgres -Atc "SELECT count(*) FROM pg_replication_slots s
        JOIN pg_stat_activity a ON a.pid = s.active_pid
        WHERE s.slot_name IN ($(IFS=,; echo "${slots[*]}")) AND a.backend_start >= to_timestamp($since_ts)" 2>&1)" ||
        { echo "slots: $streaming"; return 1; }
      [ "$streaming" = "${#slots[@]}" ] || { echo "connectors RUNNING, $streaming of ${#slots[@]} replication slots streaming"; return 1; }
    fi
    echo "Kafka Connect $(jq -r .version <<<"$ver"), connectors RUNNING: ${out[*]:-none}, ${#slots[@]} replication slots streaming"
    ;;
  esac
}

# show_logs NAME: the last lines each log got since this invocation launched NAME.
show_logs() {
  local f from lines
  for f in "$STATE/logs/$1.log" "$(server_log "$1")"; do
    [ -s "$f" ] || continue
    from=$((${LOG_OFFSET[$f]:-0} + 1))
    lines="$(tail -c +"$from" "$f" | tail -n 30)"
    [ -n "$lines" ] || continue
    printf '%s\n%s\n' "----- last lines of $f" "$lines" >&2
  done
}

# await NAME PID: wait until NAME answers; on failure show its logs, stop it, and fail.
await() {
  local answer ok=1 deadline rc
  case "$1" in
  kafka | cassandra) answer="$("$PROBE" -timeout "${START_TIMEOUT}s" -pid "$2" "$1" "$(addr_of "$1")")" && ok=0 ;;
  *)
    deadline=$((SECONDS + START_TIMEOUT))
    while :; do
      rc=0
      answer="$(answers "$1")" || rc=$?
      if [ $rc -eq 0 ]; then ok=0; break; fi
      if [ $rc -eq 2 ] || gone "$2" || [ "$SECONDS" -ge "$deadline" ]; then
        say "$1: $answer"
        break
      fi
      sleep 0.5
    done
    answer="$1 answers ($answer)"
    ;;
  esac
  if [ $ok -eq 0 ]; then
    answer="${answer#* answers (}"
    if [ -n "${LAUNCH_TIME[$1]:-}" ]; then
      echo "$1: running (pid $2, $(addr_of "$1"), ${answer%)*}), answered $(since "${LAUNCH_TIME[$1]}") after launch; logs in $STATE/logs"
    else
      echo "$1: running (pid $2, $(addr_of "$1"), ${answer%)*}); logs in $STATE/logs"
    fi
    return 0
  fi
  show_logs "$1"
  if gone "$2"; then
    say "$1: the server exited during start (logs in $STATE/logs)"
    rm -f "$(pidfile "$1")"
  else
    say "$1: did not answer on $(addr_of "$1") within ${START_TIMEOUT}s; stopping it (logs in $STATE/logs)"
    stop "$1" >/dev/null 2>&1 || true
  fi
  return 1
}

lock() {
  mkdir -p "$STATE/run"
  exec 9>"$STATE/run/.lock"
  flock 9
}

cmd_up() {
  local name pid rc=0
  parse_names up "$@"
  # Connect needs Kafka and PostgreSQL answering before it starts (a Debezium task whose database does not
  # answer fails for good): `up connect` brings them up first.
  if [[ " ${NAMES[*]} " == *" connect "* ]]; then
    local ordered=() n
    for n in "${NAMES[@]}"; do [ "$n" = connect ] || ordered+=("$n"); done
    [ -n "$CONNECT_KAFKA" ] || [[ " ${ordered[*]} " == *" kafka "* ]] || ordered+=(kafka)
    [[ " ${ordered[*]} " == *" postgres "* ]] || ordered+=(postgres)
    NAMES=("${ordered[@]}" connect)
  fi
  lock
  need_probe
  local waits=() # name:pid pairs to wait for
  # shellcheck disable=SC2317
  on_interrupt() {
    local n
    trap - INT TERM HUP
    for n in "${LAUNCHED[@]}"; do
      say "interrupted: stopping $n"
      stop "$n" >/dev/null 2>&1 || true
    done
    exit 130
  }
  trap on_interrupt INT TERM HUP
  # await_all: wait for everything launched so far; postgres gets its user and database once it answers.
  await_all() {
    local w n p
    for w in "${waits[@]}"; do
      n="${w%%:*}"
      p="${w#*:}"
      if await "$n" "$p"; then
        [ "$n" != postgres ] || pg_setup || rc=1
      else
        rc=1
      fi
    done
    waits=()
  }
  for name in "${NAMES[@]}"; do
    if [ "$name" = connect ]; then
      await_all
      if [ $rc -ne 0 ]; then
        say "connect: not started, since a server it needs did not start"
        break
      fi
    fi
    if pid="$(live_pid "$name")"; then
      if [ "$name" = connect ]; then
        local want have
        want="$(while read -r f; do connector_name "$f"; done < <(connectors) | xargs)"
        have="$(cat "$STATE/run/connect.connectors" 2>/dev/null || true)"
        if [ "$want" != "$have" ]; then
          say "connect: already running (pid $pid) with connectors '$have', not '$want' (CONNECT_CONNECTORS); stop it first: $0 down connect"
          rc=1
          continue
        fi
      fi
      if answers "$name" >/dev/null 2>&1; then
        echo "$name: already running (pid $pid, $(addr_of "$name"))"
        [ "$name" != postgres ] || pg_setup || rc=1
        continue
      fi
      say "$name: pid $pid is running but does not answer yet; waiting for it"
      waits+=("$name:$pid")
      continue
    fi
    rm -f "$(pidfile "$name")"
    check_ports_free "$name"
    mkdir -p "$STATE/logs"
    case "$name" in
    kafka | cassandra | connect)
      need_java
      fetch_libs "$name"
      ;;
    esac
    "start_$name"
    waits+=("$name:$(cat "$(pidfile "$name")")")
  done
  if [ "$INFRA_NO_WAIT" = 1 ]; then
    local w
    for w in "${waits[@]}"; do echo "${w%%:*}: launched (pid ${w#*:}, $(addr_of "${w%%:*}")); not waiting"; done
    waits=()
  fi
  await_all
  trap - INT TERM HUP
  return $rc
}

# pg_setup: create the Debezium user and database if missing (postgres/setup.sql).
pg_setup() {
  local out
  if ! out="$(pg_admin -d postgres -v ON_ERROR_STOP=1 -v user="$PG_USER" -v password="$PG_PASSWORD" \
    -v db="$PG_DB" -f - <"$HERE/postgres/setup.sql" 2>&1)"; then
    echo "$out" >&2
    say "postgres: could not create user $PG_USER and database $PG_DB"
    return 1
  fi
}

# stop NAME...: SIGTERM every named server whose PID file names a live process of ours, wait up to
# STOP_TIMEOUT seconds, then SIGKILL. Only PIDs from our PID files are ever signalled. PostgreSQL gets SIGINT
# (fast shutdown: SIGTERM would wait for Debezium's connections to end). Connect is stopped before the
# others, so that it flushes its offsets while Kafka still runs.
stop() {
  local name pid pf pids=() i rest=()
  for name in "$@"; do [ "$name" = connect ] || rest+=("$name"); done
  if [ ${#rest[@]} -lt $# ]; then
    stop_now connect
    [ ${#rest[@]} -eq 0 ] || stop_now "${rest[@]}"
  else
    stop_now "$@"
  fi
}
stop_now() {
  local name pid pf pids=() i
  for name in "$@"; do
    pf="$(pidfile "$name")"
    if [ ! -f "$pf" ]; then
      echo "$name: not running"
      continue
    fi
    if pid="$(live_pid "$name")"; then
      kill -"$(signal_of "$name")" "$pid" 2>/dev/null || true
      pids+=("$name:$pid")
    else
      echo "$name: not running (removed stale $pf)"
      rm -f "$pf"
    fi
  done
  local w deadline
  for w in "${pids[@]}"; do
    name="${w%%:*}"
    pid="${w#*:}"
    deadline=$((SECONDS + STOP_TIMEOUT))
    while ! gone "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if ours "$name" "$pid"; then
      say "$name: pid $pid still running ${STOP_TIMEOUT}s after SIG$(signal_of "$name"); sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    for ((i = 0; i < 100; i++)); do
      gone "$pid" && break
      sleep 0.1
    done
    rm -f "$(pidfile "$name")"
    echo "$name: stopped (pid $pid)"
  done
}

cmd_down() {
  parse_names all "$@"
  lock
  stop "${NAMES[@]}"
}

cmd_status() {
  local name pid rc=0 answer
  parse_names up "$@"
  echo "state dir: $STATE"
  for name in "${NAMES[@]}"; do
    if pid="$(live_pid "$name")"; then
      if { [ -x "$PROBE" ] || [[ "$name" != kafka && "$name" != cassandra ]]; } && answer="$(answers "$name")"; then
        echo "$name: running (pid $pid): $answer"
      else
        echo "$name: running (pid $pid) but NOT answering on $(addr_of "$name")"
        rc=1
      fi
    else
      echo "$name: stopped ($(ports_of "$name"))"
      rc=1
    fi
  done
  return $rc
}

cmd_env() {
  echo "export $(env_var kafka)=$(addr_of kafka)"
  echo "export $(env_var cassandra)=$(addr_of cassandra)"
  echo "export $(env_var redis)=$(addr_of redis)"
}

# --- clusters ----------------------------------------------------------------------------------------
#
# `up --cassandra-nodes N --kafka-brokers M` (or CASSANDRA_NODES / KAFKA_BROKERS) runs N Cassandra nodes and
# M KRaft brokers (each broker also a controller voter) on 127.0.0.1 .. 127.0.0.N, every one on the usual
# ports (JMX excepted: it listens on 127.0.0.1 only, so node i uses CASSANDRA_JMX_PORT + i - 1), each in a
# state dir of its own, $STATE/cluster/<server>-<i>, through this script run once per node with the
# node's settings. Kafka: one cluster id for all, internal and default topics replicated min(3, M) times
# with min.insync.replicas min(2, M). Cassandra: node 1 is the seed and starts first; the others join at
# once (an empty cluster: distinct tokens, no bootstrap). `up` returns when every node answers and sees
# the whole cluster: M brokers in every broker's metadata, N-1 joined peers at every Cassandra node.

cluster_size() { # KIND: the node count asked for
  case "$1" in cassandra) echo "$CASSANDRA_NODES" ;; kafka) echo "$KAFKA_BROKERS" ;; esac
}
clustered() { [ "$CASSANDRA_NODES" -gt 1 ] || [ "$KAFKA_BROKERS" -gt 1 ]; }

# node_run KIND I CMD...: run this script's CMD for node I of KIND's cluster, with that node's settings.
node_run() {
  local kind="$1" i="$2" n voters="" j token
  shift 2
  n="$(cluster_size "$kind")"
  [ "$i" -ge 1 ] && [ "$i" -le "$n" ] || die "$kind node $i: the cluster has nodes 1..$n"
  # The nodes share the jars and the probe of the cluster's state dir.
  mkdir -p "$STATE/cluster/$kind-$i" "$STATE/libs" "$STATE/bin"
  [ -e "$STATE/cluster/$kind-$i/libs" ] || ln -s "$STATE/libs" "$STATE/cluster/$kind-$i/libs"
  [ -e "$STATE/cluster/$kind-$i/bin" ] || ln -s "$STATE/bin" "$STATE/cluster/$kind-$i/bin"
  local envs=(RTGRAPH_INFRA_DIR="$STATE/cluster/$kind-$i" INFRA_HOST="127.0.0.$i" CASSANDRA_NODES=1 KAFKA_BROKERS=1)
  case "$kind" in
  kafka)
    for ((j = 1; j <= n; j++)); do voters+="${voters:+,}$j@127.0.0.$j:$KAFKA_CONTROLLER_PORT"; done
    mkdir -p "$STATE/cluster"
    [ -s "$STATE/cluster/kafka.cluster-id" ] || kafka_cluster_id >"$STATE/cluster/kafka.cluster-id"
    envs+=(KAFKA_NODE_ID="$i" KAFKA_VOTERS="$voters" KAFKA_RF="$((n < 3 ? n : 3))" KAFKA_MIN_ISR="$((n < 2 ? n : 2))"
      KAFKA_CLUSTER_ID="$(cat "$STATE/cluster/kafka.cluster-id")" KAFKA_HEAP="$CLUSTER_KAFKA_HEAP")
    ;;
  cassandra)
    # Tokens spread evenly over Murmur3's range: -2^63 + (i-1) * 2^64 / n.
    token="$(awk -v i="$i" -v n="$n" 'BEGIN { printf "%.0f", -9223372036854775808 + (i - 1) * (18446744073709551616 / n) }')"
    envs+=(CASSANDRA_SEEDS="127.0.0.1:$CASSANDRA_STORAGE_PORT" CASSANDRA_INITIAL_TOKEN="$token"
      CASSANDRA_AUTO_BOOTSTRAP=false CASSANDRA_JMX_PORT="$((CASSANDRA_JMX_PORT + i - 1))" CASSANDRA_HEAP="$CLUSTER_CASSANDRA_HEAP")
    ;;
  esac
  env "${envs[@]}" "$0" "$@"
}

# cluster_await KIND I: node I answers and sees the whole cluster.
cluster_await() {
  local kind="$1" i="$2" port pid
  case "$kind" in kafka) port="$KAFKA_PORT" ;; cassandra) port="$CASSANDRA_PORT" ;; esac
  pid="$(cat "$STATE/cluster/$kind-$i/run/$kind.pid" 2>/dev/null || echo 0)"
  "$PROBE" -timeout "${START_TIMEOUT}s" -pid "$pid" -nodes "$(cluster_size "$kind")" "$kind" "127.0.0.$i:$port" ||
    die "$kind node $i did not join its cluster within ${START_TIMEOUT}s (logs in $STATE/cluster/$kind-$i/logs)"
}

cluster_up() {
  local kind i n t0
  mkdir -p "$STATE/run"
  need_probe
  t0="$(now)"
  for kind in kafka cassandra; do
    n="$(cluster_size "$kind")"
    if [ "$kind" = cassandra ]; then
      node_run cassandra 1 up cassandra # the seed answers before the others look for it
      for ((i = 2; i <= n; i++)); do INFRA_NO_WAIT=1 node_run cassandra "$i" up cassandra; done
    else
      # A KRaft quorum answers only once a majority of its voters runs: launch all, then wait.
      for ((i = 1; i <= n; i++)); do INFRA_NO_WAIT=1 node_run kafka "$i" up kafka; done
    fi
  done
  for kind in kafka cassandra; do
    n="$(cluster_size "$kind")"
    for ((i = 1; i <= n; i++)); do cluster_await "$kind" "$i"; done
  done
  echo "cluster: $KAFKA_BROKERS Kafka broker(s) and $CASSANDRA_NODES Cassandra node(s) answer, whole ($(since "$t0")); state in $STATE/cluster"
  cluster_env
}

# cluster_down stops the nodes of each server together: a KRaft broker stopped after the others waits for
# a quorum that is gone (a minute, then SIGKILL).
cluster_down() {
  local kind i pids=() rc=0 p
  for kind in cassandra kafka; do
    for ((i = $(cluster_size "$kind"); i >= 1; i--)); do
      if [ -d "$STATE/cluster/$kind-$i" ]; then
        node_run "$kind" "$i" down "$kind" &
        pids+=($!)
      fi
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    pids=()
  done
  return $rc
}

cluster_status() {
  local kind i rc=0
  for kind in kafka cassandra; do
    for ((i = 1; i <= $(cluster_size "$kind"); i++)); do
      echo "== $kind node $i (127.0.0.$i)"
      node_run "$kind" "$i" status "$kind" || rc=1
    done
  done
  return $rc
}

cluster_env() {
  local i k="" c=""
  for ((i = 1; i <= KAFKA_BROKERS; i++)); do k+="${k:+,}127.0.0.$i:$KAFKA_PORT"; done
  for ((i = 1; i <= CASSANDRA_NODES; i++)); do c+="${c:+,}127.0.0.$i:$CASSANDRA_PORT"; done
  echo "export RTGRAPH_TEST_CLUSTER_KAFKA=$k"
  echo "export RTGRAPH_TEST_CLUSTER_CASSANDRA=$c"
}

# cmd_node ACTION KIND I: one node of the cluster. kill: SIGKILL (a crash, for tests); start: start it
# again and wait until it answers and sees the whole cluster; stop: a clean stop.
cmd_node() {
  [ $# -eq 3 ] || usage
  local action="$1" kind="$2" i="$3" pid
  case "$kind" in kafka | cassandra) ;; *) die "node: kafka or cassandra, got '$kind'" ;; esac
  [[ "$i" =~ ^[0-9]+$ ]] || die "node: number expected, got '$i'"
  case "$action" in
  kill)
    pid="$(RTGRAPH_INFRA_DIR="$STATE/cluster/$kind-$i" node_pid "$kind")" || die "$kind node $i: not running"
    kill -KILL "$pid"
    while ! gone "$pid"; do sleep 0.1; done
    echo "$kind node $i: killed (pid $pid)"
    ;;
  start)
    need_probe
    INFRA_NO_WAIT=1 node_run "$kind" "$i" up "$kind"
    cluster_await "$kind" "$i"
    ;;
  stop) node_run "$kind" "$i" down "$kind" ;;
  *) die "node: kill, start or stop, got '$action'" ;;
  esac
}
# node_pid KIND: the live PID of KIND in the state dir RTGRAPH_INFRA_DIR names.
node_pid() {
  local STATE="$RTGRAPH_INFRA_DIR"
  live_pid "$1"
}

usage() {
  cat >&2 <<EOF
usage: $0 up|down|status [kafka|cassandra|redis|postgres|connect]...
       $0 env
       $0 up|down|status|env --cassandra-nodes N --kafka-brokers M   (a cluster on 127.0.0.1..N)
       $0 node kill|start|stop kafka|cassandra I --cassandra-nodes N --kafka-brokers M
up/status default: kafka cassandra redis; down default: all; up connect also starts kafka and postgres.
CONNECT_CONNECTORS (default "json plain flat"): connector files in $HERE/connect/connectors/ or paths.
state dir: $STATE (RTGRAPH_INFRA_DIR)
EOF
  exit 2
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
# Cluster flags, anywhere after the command.
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
  --cassandra-nodes) [ $# -ge 2 ] || usage; CASSANDRA_NODES="$2"; shift 2 ;;
  --kafka-brokers) [ $# -ge 2 ] || usage; KAFKA_BROKERS="$2"; shift 2 ;;
  *) ARGS+=("$1"); shift ;;
  esac
done
set -- "${ARGS[@]+"${ARGS[@]}"}"
[[ "$CASSANDRA_NODES" =~ ^[1-9]$ && "$KAFKA_BROKERS" =~ ^[1-9]$ ]] || die "--cassandra-nodes and --kafka-brokers: 1 to 9"
if clustered; then
  case "$cmd" in
  up | down | status | env) [ $# -eq 0 ] || die "$cmd of a cluster takes no server names (it runs Kafka and Cassandra)" ;;
  esac
  case "$cmd" in
  up) cluster_up ;;
  down) cluster_down ;;
  status) cluster_status ;;
  env) cluster_env ;;
  node) cmd_node "$@" ;;
  *) usage ;;
  esac
  exit
fi
case "$cmd" in
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
status) cmd_status "$@" ;;
env) [ $# -eq 0 ] || usage; cmd_env ;;
-h | --help | help) usage ;;
*) usage ;;
esac
