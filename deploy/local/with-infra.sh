#!/usr/bin/env bash
# Run a command against real Kafka, Cassandra and Redis:
#
#   deploy/local/with-infra.sh CMD [ARG]...
#
# Starts whichever servers are not already running (deploy/local/infra.sh up), exports RTGRAPH_TEST_KAFKA,
# RTGRAPH_TEST_CASSANDRA and RTGRAPH_TEST_REDIS, runs CMD, then stops only the servers it started itself
# -- also when CMD fails or the run is interrupted -- and exits with CMD's status.
#
# A server whose RTGRAPH_TEST_* variable is already set in the environment is left alone and that address
# is used as is (e.g. shared development servers). Same environment variables as infra.sh otherwise.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INFRA="$HERE/infra.sh"

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARG]...   (e.g. $0 go test -race ./...)" >&2
  exit 2
fi

STARTED_FILE="$(mktemp "${TMPDIR:-/tmp}/rtgraph-with-infra.XXXXXX")" || exit 1
export RTGRAPH_INFRA_STARTED_FILE="$STARTED_FILE" # infra.sh up appends the name of each server it launches

cleanup() {
  local status=$? started=()
  trap - EXIT INT TERM HUP
  if [ -s "$STARTED_FILE" ]; then
    mapfile -t started <"$STARTED_FILE"
    echo "rtgraph infra: stopping what this run started: ${started[*]}" >&2
    if ! RTGRAPH_INFRA_STARTED_FILE="" "$INFRA" down "${started[@]}" >&2 && [ "$status" -eq 0 ]; then
      status=1
    fi
  fi
  rm -f "$STARTED_FILE"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

want=()
[ -n "${RTGRAPH_TEST_KAFKA:-}" ] && echo "rtgraph infra: using RTGRAPH_TEST_KAFKA=$RTGRAPH_TEST_KAFKA as set" >&2 || want+=(kafka)
[ -n "${RTGRAPH_TEST_CASSANDRA:-}" ] && echo "rtgraph infra: using RTGRAPH_TEST_CASSANDRA=$RTGRAPH_TEST_CASSANDRA as set" >&2 || want+=(cassandra)
[ -n "${RTGRAPH_TEST_REDIS:-}" ] && echo "rtgraph infra: using RTGRAPH_TEST_REDIS=$RTGRAPH_TEST_REDIS as set" >&2 || want+=(redis)

if [ ${#want[@]} -gt 0 ]; then
  "$INFRA" up "${want[@]}" >&2 || exit $?
  envs="$("$INFRA" env)" || exit $?
  # shellcheck disable=SC2163 # kv is NAME=VALUE
  while read -r _ kv; do # lines: export NAME=VALUE
    case "${kv%%=*}" in
    RTGRAPH_TEST_KAFKA) [[ " ${want[*]} " == *" kafka "* ]] && export "$kv" ;;
    RTGRAPH_TEST_CASSANDRA) [[ " ${want[*]} " == *" cassandra "* ]] && export "$kv" ;;
    RTGRAPH_TEST_REDIS) [[ " ${want[*]} " == *" redis "* ]] && export "$kv" ;;
    esac
  done <<<"$envs"
fi
unset RTGRAPH_INFRA_STARTED_FILE

"$@"
