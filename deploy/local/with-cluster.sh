#!/usr/bin/env bash
# Run a command against a real cluster: 3 Cassandra 5.0 nodes and 3 KRaft brokers on 127.0.0.1-3,
#
#   deploy/local/with-cluster.sh CMD [ARG]...
#
# Starts the cluster (deploy/local/infra.sh up --cassandra-nodes 3 --kafka-brokers 3) in its own state
# dir (RTGRAPH_INFRA_DIR, default .infra/cluster-run) on its own ports (below), so that it runs beside the
# single-node servers; exports RTGRAPH_TEST_CLUSTER_KAFKA, RTGRAPH_TEST_CLUSTER_CASSANDRA and
# RTGRAPH_INFRA_CLUSTER_SCRIPT (infra.sh, whose `node kill|start|stop` the tests call with these settings);
# runs CMD; then stops the cluster -- also when CMD fails or the run is interrupted -- and exits with
# CMD's status.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARG]...   (e.g. $0 go test -tags cluster ./cmd/rtgraph/)" >&2
  exit 2
fi

export RTGRAPH_INFRA_DIR="${RTGRAPH_INFRA_DIR:-$REPO/.infra/cluster-run}"
export KAFKA_PORT="${CLUSTER_KAFKA_PORT:-19092}" KAFKA_CONTROLLER_PORT="${CLUSTER_KAFKA_CONTROLLER_PORT:-19093}"
export CASSANDRA_PORT="${CLUSTER_CASSANDRA_PORT:-19042}" CASSANDRA_STORAGE_PORT="${CLUSTER_CASSANDRA_STORAGE_PORT:-17000}"
export CASSANDRA_JMX_PORT="${CLUSTER_CASSANDRA_JMX_PORT:-17199}"
export CASSANDRA_NODES=3 KAFKA_BROKERS=3
# Acknowledged writes are in the commit log on disk (group sync, 10 ms window), as on the fault tests'
# servers: the tests kill nodes with SIGKILL, and with the default periodic sync a killed node can come back
# without the last seconds of what it acknowledged -- schema changes included, which has left a restarted
# node unable to apply the schema of tables created just before its kill ("Unknown CF").
export CASSANDRA_COMMITLOG_SYNC="${CASSANDRA_COMMITLOG_SYNC:-group}"
unset RTGRAPH_INFRA_STARTED_FILE

cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  echo "rtgraph infra: stopping the cluster" >&2
  "$HERE/infra.sh" down >&2 || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

envs="$("$HERE/infra.sh" up)" || exit $?
grep -v "^export " <<<"$envs" >&2
while read -r _ kv; do # lines: export NAME=VALUE
  case "${kv%%=*}" in
  RTGRAPH_TEST_CLUSTER_KAFKA | RTGRAPH_TEST_CLUSTER_CASSANDRA) export "${kv?}" ;;
  esac
done < <(grep '^export ' <<<"$envs")
export RTGRAPH_INFRA_CLUSTER_SCRIPT="$HERE/infra.sh"

"$@"
