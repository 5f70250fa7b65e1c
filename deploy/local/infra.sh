#!/usr/bin/env bash
# Real single-node Kafka (KRaft) and Cassandra 5.0 on loopback for rtgraph's tests, from Maven Central jars.
#
#   deploy/local/infra.sh up [kafka|cassandra]     start (default: both) and wait until they answer
#   deploy/local/infra.sh down [kafka|cassandra]   stop what our PID files name (default: both)
#   deploy/local/infra.sh status [kafka|cassandra] show state; exit 0 only if all named servers answer
#   deploy/local/infra.sh env                      print `export RTGRAPH_TEST_...` lines for the tests
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
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
CASSANDRA_HEAP="${CASSANDRA_HEAP:-1g}"
# periodic (Cassandra's default: a write is acknowledged before its commit log is synced, so a killed
# node loses up to commitlog_sync_period of them) or group (acknowledged after the sync, every 10 ms).
CASSANDRA_COMMITLOG_SYNC="${CASSANDRA_COMMITLOG_SYNC:-periodic}"
START_TIMEOUT="${RTGRAPH_INFRA_START_TIMEOUT:-300}" # seconds until a started server must answer (87 s seen under load 30)
STOP_TIMEOUT="${RTGRAPH_INFRA_STOP_TIMEOUT:-60}"    # seconds after SIGTERM before SIGKILL
HOST=127.0.0.1                                      # loopback only

SERVERS=(kafka cassandra)

die() { echo "$PROG: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
say() { echo "$PROG: $*" >&2; }

case "$CASSANDRA_COMMITLOG_SYNC" in periodic | group) ;; *) die "CASSANDRA_COMMITLOG_SYNC must be periodic or group, got '$CASSANDRA_COMMITLOG_SYNC'" ;; esac
for v in KAFKA_PORT KAFKA_CONTROLLER_PORT CASSANDRA_PORT CASSANDRA_STORAGE_PORT CASSANDRA_JMX_PORT \
  START_TIMEOUT STOP_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done

addr_of() { case "$1" in kafka) echo "$HOST:$KAFKA_PORT" ;; cassandra) echo "$HOST:$CASSANDRA_PORT" ;; esac; }
main_class() {
  case "$1" in
  kafka) echo kafka.Kafka ;;
  cassandra) echo org.apache.cassandra.service.CassandraDaemon ;;
  esac
}
ports_of() {
  case "$1" in
  kafka) echo "KAFKA_PORT=$KAFKA_PORT KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT" ;;
  cassandra) echo "CASSANDRA_PORT=$CASSANDRA_PORT CASSANDRA_STORAGE_PORT=$CASSANDRA_STORAGE_PORT CASSANDRA_JMX_PORT=$CASSANDRA_JMX_PORT" ;;
  esac
}
pidfile() { echo "$STATE/run/$1.pid"; }
env_var() { case "$1" in kafka) echo RTGRAPH_TEST_KAFKA ;; cassandra) echo RTGRAPH_TEST_CASSANDRA ;; esac; }

# parse_names ARGS...: set NAMES to the validated server names (default: all).
NAMES=()
parse_names() {
  local n
  for n in "$@"; do
    case "$n" in kafka | cassandra) ;; *) die "unknown server '$n' (kafka or cassandra)" ;; esac
  done
  if [ $# -eq 0 ]; then NAMES=("${SERVERS[@]}"); else NAMES=("$@"); fi
}

# --- processes ---------------------------------------------------------------------------------------

# ours NAME PID: PID is a live (non-zombie) process started by us for NAME from this state dir. Guards
# against PID reuse: a PID file only counts when the process's command line is our server's.
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
      die "$1: port $HOST:${kv#*=} is already in use by a process we did not start (set ${kv%%=*} to a free port; to use a server already running there with with-infra.sh, export $(env_var "$1")=$(addr_of "$1"))"
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
    -e "s#@DATA@#$data#g" "$HERE/kafka/server.properties" >"$conf/server.properties"
  cp="$STATE/libs/kafka/*"
  local logopts=(-Dkafka.logs.dir="$logdir" -Dlog4j2.configurationFile="file:$HERE/kafka/log4j2.properties")
  if [ ! -f "$data/meta.properties" ]; then
    local t0
    t0="$(now)"
    if ! "$JAVA" "${logopts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$(kafka_cluster_id)" \
      -c "$conf/server.properties" >>"$STATE/logs/kafka.log" 2>&1; then
      tail -n 20 "$STATE/logs/kafka.log" >&2
      die "kafka: storage format failed (see $STATE/logs/kafka.log)"
    fi
    say "kafka: formatted new storage in $data ($(since "$t0"))"
  fi
  launch kafka "$JAVA" -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
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
    -e "s#@CASSANDRA_STORAGE_PORT@#$CASSANDRA_STORAGE_PORT#g" "${sync[@]}" \
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
    -cp "$conf:$libs/*" org.apache.cassandra.service.CassandraDaemon
}

server_log() { case "$1" in kafka) echo "$STATE/logs/kafka/server.log" ;; cassandra) echo "$STATE/logs/cassandra/system.log" ;; esac; }

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
  local answer
  if answer="$("$PROBE" -timeout "${START_TIMEOUT}s" -pid "$2" "$1" "$(addr_of "$1")")"; then
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
  parse_names "$@"
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
  for name in "${NAMES[@]}"; do
    if pid="$(live_pid "$name")"; then
      if "$PROBE" -timeout 0 "$name" "$(addr_of "$name")" >/dev/null 2>&1; then
        echo "$name: already running (pid $pid, $(addr_of "$name"))"
        continue
      fi
      say "$name: pid $pid is running but does not answer yet; waiting for it"
      waits+=("$name:$pid")
      continue
    fi
    rm -f "$(pidfile "$name")"
    check_ports_free "$name"
    need_java
    mkdir -p "$STATE/logs"
    fetch_libs "$name"
    "start_$name"
    waits+=("$name:$(cat "$(pidfile "$name")")")
  done
  local w
  for w in "${waits[@]}"; do
    name="${w%%:*}"
    pid="${w#*:}"
    await "$name" "$pid" || rc=1
  done
  trap - INT TERM HUP
  return $rc
}

# stop NAME...: SIGTERM every named server whose PID file names a live process of ours, wait up to
# STOP_TIMEOUT seconds, then SIGKILL. Only PIDs from our PID files are ever signalled.
stop() {
  local name pid pf pids=() i
  for name in "$@"; do
    pf="$(pidfile "$name")"
    if [ ! -f "$pf" ]; then
      echo "$name: not running"
      continue
    fi
    if pid="$(live_pid "$name")"; then
      kill -TERM "$pid" 2>/dev/null || true
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
      say "$name: pid $pid still running ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
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
  parse_names "$@"
  lock
  stop "${NAMES[@]}"
}

cmd_status() {
  local name pid rc=0 answer
  parse_names "$@"
  echo "state dir: $STATE"
  for name in "${NAMES[@]}"; do
    if pid="$(live_pid "$name")"; then
      if [ -x "$PROBE" ] && answer="$("$PROBE" -timeout 0 "$name" "$(addr_of "$name")" 2>&1)"; then
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
}

usage() {
  cat >&2 <<EOF
usage: $0 up|down|status [kafka|cassandra]...
       $0 env
state dir: $STATE (RTGRAPH_INFRA_DIR)
EOF
  exit 2
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
case "$cmd" in
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
status) cmd_status "$@" ;;
env) [ $# -eq 0 ] || usage; cmd_env ;;
-h | --help | help) usage ;;
*) usage ;;
esac
