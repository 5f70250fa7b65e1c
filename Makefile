# rtgraph — every task starts here. `make` (or `make help`) lists the targets.
#
# Tests that need real Kafka and Cassandra get them from deploy/local: the
# servers are fetched from Maven Central with Maven (cached in ~/.m2), started
# on 127.0.0.1 with Java 17, and stopped again by the target that started them.

SHELL       := /bin/bash
GO          ?= go
BIN         := bin/rtgraph
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
CONFIG      ?=
GOTESTFLAGS ?= -race -count=1 -timeout 45m
# Packages whose tests need the real servers (test-integration runs only these).
INTEGRATION_PKGS := ./internal/smoke/... ./graph/cassandra/... ./ingest/... ./api/... ./enrich/... ./internal/produce/... ./internal/export/... ./cmd/rtgraph/...
FUZZTIME    ?= 30s
# Extra flags for `make run`, e.g. DEMOFLAGS="--rate 1000 --data-dir /tmp/rtgraph".
DEMOFLAGS   ?=
BENCHTIME   ?= 400x

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/rtgraph.
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/rtgraph

.PHONY: run
run: build ## Run the whole system on the embedded default with a live demo stream (no servers needed).
	$(BIN) demo $(if $(CONFIG),--config $(CONFIG),) $(DEMOFLAGS)

# The Python client's virtual environment: the client with pandas, pyarrow,
# networkx and pytest. The export's read-back test reads Parquet with it.
PYENV := clients/python/.venv

.PHONY: python-env
python-env: ## Create clients/python/.venv with the Python client and its test extras (pandas, pyarrow, networkx, pytest).
	test -x $(PYENV)/bin/python || python3 -m venv $(PYENV)
	$(PYENV)/bin/python -m pip install -q --disable-pip-version-check './clients/python[test]'

.PHONY: test
test: python-env ## Run every test: unit and integration, starting real Kafka and Cassandra when needed.
	RTGRAPH_TEST_PYTHON=$(CURDIR)/$(PYENV)/bin/python deploy/local/with-infra.sh $(GO) test $(GOTESTFLAGS) ./...

.PHONY: test-python
test-python: build python-env ## The Python client's tests (pytest) against real `rtgraph demo` processes on free ports.
	RTGRAPH_BIN=$(CURDIR)/$(BIN) clients/python/run-tests.sh

.PHONY: test-unit
test-unit: ## Run the tests that need no servers (integration tests skip, loudly).
	RTGRAPH_SKIP_INTEGRATION=1 $(GO) test $(GOTESTFLAGS) ./...

.PHONY: test-integration
test-integration: ## Run only the integration tests, against real Kafka and Cassandra.
	deploy/local/with-infra.sh $(GO) test $(GOTESTFLAGS) $(INTEGRATION_PKGS)

.PHONY: test-api-contract
test-api-contract: ## API contract test: Schemathesis (pinned, in .venv-schemathesis) against the demo's served spec, with and without API keys.
	scripts/schemathesis.sh

# The fault tests' own servers: a state dir and ports of their own, so that
# pausing and killing them never touches the servers the other targets use.
FAULTS_INFRA := RTGRAPH_INFRA_DIR=$(CURDIR)/.infra/faults KAFKA_PORT=29092 KAFKA_CONTROLLER_PORT=29093 \
	CASSANDRA_PORT=29042 CASSANDRA_STORAGE_PORT=27000 CASSANDRA_JMX_PORT=27199 REDIS_PORT=29379 KAFKA_HEAP=512m CASSANDRA_HEAP=1g \
	CASSANDRA_COMMITLOG_SYNC=group
# Records of the poison test (1% poison); 1M takes about 7 minutes on 2 busy cores, so CI runs fewer.
FAULTS_POISON_RECORDS ?= 200000

.PHONY: test-cluster
test-cluster: ## Cluster tests: 3 Cassandra nodes (RF 3, LOCAL_QUORUM) and 3 KRaft brokers on 127.0.0.1-3; a node killed, a broker killed, a rolling restart, 3 ingest and 2 api processes; BenchmarkCluster once at a tiny size (docs/reliability.md).
	deploy/local/with-cluster.sh $(GO) test -tags cluster -count=1 -timeout 40m -v -run '^TestCluster' ./cmd/rtgraph/
	# The benchmark gets a fresh cluster of its own: a Cassandra node killed by the tests can come back
	# unable to apply later schema changes ("Unknown CF"), so nothing creates a keyspace after a kill.
	RTGRAPH_INFRA_DIR=$(CURDIR)/.infra/cluster-bench \
	RTGRAPH_BENCH_CLUSTER_EVENTS=3000 RTGRAPH_BENCH_CLUSTER_RATE=50 RTGRAPH_BENCH_CLUSTER_HOLD=5s \
	deploy/local/with-cluster.sh $(GO) test -tags cluster -count=1 -timeout 40m -v -run '^$$' -bench '^BenchmarkCluster' -benchtime 1x ./cmd/rtgraph/

.PHONY: test-faults
test-faults: ## Fault tests: Kafka and Cassandra paused, killed, restarted under load, poison records (own servers; docs/reliability.md).
	env -u RTGRAPH_TEST_KAFKA -u RTGRAPH_TEST_CASSANDRA -u RTGRAPH_TEST_REDIS $(FAULTS_INFRA) RTGRAPH_FAULTS_INFRA=$(CURDIR)/deploy/local/infra.sh \
		RTGRAPH_FAULTS_POISON_RECORDS=$(FAULTS_POISON_RECORDS) \
		deploy/local/with-infra.sh $(GO) test -tags faults -count=1 -timeout 40m -v -run '^TestFault' ./ingest/

.PHONY: test-cdc-smoke
test-cdc-smoke: ## CDC chain smoke test: real PostgreSQL -> Debezium 3.6.1 on Kafka Connect 4.3.1 -> real Kafka, 3 connector configs (own servers; deploy/local/README.md).
	deploy/local/cdc-smoke.sh

# The CDC end-to-end test's own PostgreSQL and Kafka Connect (state dir and ports); it uses the Kafka and
# Cassandra of with-infra.sh (started if not running) and stops only what it started.
CDC_E2E_INFRA := RTGRAPH_TEST_CDC_INFRA_DIR=$(CURDIR)/.infra/cdc-e2e PG_PORT=26432 CONNECT_PORT=28183

.PHONY: test-cdc
test-cdc: ## CDC end to end: PostgreSQL -> Debezium (json, plain, flat) -> Kafka -> rtgraph on Cassandra; every node and edge compared with PostgreSQL (deploy/local/README.md).
	$(CDC_E2E_INFRA) RTGRAPH_TEST_CDC=1 deploy/local/with-infra.sh $(GO) test -count=1 -timeout 40m -v -run '^TestCDCEndToEnd$$' ./cmd/rtgraph/

.PHONY: bench
bench: bench-store bench-read bench-ingest bench-query bench-degree bench-fcap bench-cluster ## Run every benchmark (figures go to docs/benchmarks.md by hand).

.PHONY: bench-smoke
bench-smoke: ## Every benchmark once at small sizes, on Pebble and real servers: keeps them running (CI); the figures mean nothing.
	RTGRAPH_BENCH_EVENTS=10000 RTGRAPH_BENCH_USERS=2000 RTGRAPH_BENCH_QUERIES=20 RTGRAPH_BENCH_DEGREE=2000 \
	deploy/local/with-infra.sh $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./...
	CDC_BENCH_SAMPLES=5 CDC_BENCH_ROWS=1000 deploy/local/cdc-bench.sh

.PHONY: bench-cluster
bench-cluster: ## Cluster figures: events/s with 1, 2 and 3 ingest processes; recovery from a broker kill, a rolling restart and a node kill under steady load; Cassandra's default periodic commit-log sync (RTGRAPH_BENCH_CLUSTER_*; docs/reliability.md).
	CASSANDRA_COMMITLOG_SYNC=periodic \
	deploy/local/with-cluster.sh $(GO) test -tags cluster -count=1 -timeout 90m -run '^$$' -bench '^BenchmarkCluster' -benchtime 1x ./cmd/rtgraph/

.PHONY: bench-store
bench-store: ## Graph-store benchmarks on Pebble and on real Cassandra.
	deploy/local/with-infra.sh $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./graph/embedded/ ./graph/cassandra/

.PHONY: bench-read
bench-read: ## Read path per edge and per node: a 300-edge page and a 100-node get from the store (decoded, raw bytes, raw Pebble ceiling), the page through the API handler (docs/benchmarks.md).
	$(GO) test -run '^$$' -bench '^BenchmarkAdjacencyPage300$$' -benchtime 2000x ./graph/embedded/
	$(GO) test -run '^$$' -bench '^BenchmarkGetNodes100$$' -benchtime 2000x ./graph/embedded/
	$(GO) test -run '^$$' -bench '^BenchmarkEdgesPage300$$' -benchtime 2000x ./api/

.PHONY: bench-query
bench-query: ## Query API latency: 1/2/3 hops and supernode, Pebble and real Cassandra (docs/bench-query.md).
	deploy/local/with-infra.sh $(GO) test -run '^$$' -bench Query -benchtime 1x -timeout 60m ./api/

.PHONY: bench-degree
bench-degree: ## Degree of a 200,000-edge supernode through the API, Pebble and real Cassandra (RTGRAPH_BENCH_DEGREE).
	deploy/local/with-infra.sh $(GO) test -run '^$$' -bench Degree -benchtime 1x -timeout 30m ./api/

.PHONY: bench-ingest
bench-ingest: ## Pipeline end to end on real Kafka: events/s, freshness, raw ceilings (RTGRAPH_BENCH_EVENTS, default 1M).
	deploy/local/with-infra.sh $(GO) test -run '^$$' -bench Ingest -benchtime 1x -timeout 90m -v ./ingest/

.PHONY: bench-cdc
bench-cdc: ## CDC freshness (commit in PostgreSQL -> visible in the API) and bulk load through real Debezium (CDC_BENCH_*; deploy/local/cdc-bench.sh).
	deploy/local/cdc-bench.sh

.PHONY: bench-fcap
bench-fcap: ## Frequency-cap lookup benchmarks on Pebble and real Cassandra, with the raw ceiling; rtgraph's HTTP API against a Redis peer.
	deploy/local/with-infra.sh $(GO) test -run '^$$' -bench CountsLookup -benchtime 20000x -timeout 90m -v ./graph/embedded/ ./graph/cassandra/
	RTGRAPH_BENCH_FCAP_IMPRESSIONS=2000000 RTGRAPH_BENCH_FCAP_USERS=20000 RTGRAPH_BENCH_FCAP_HEAVY=100 RTGRAPH_BENCH_FCAP_HEAVY_IMPRESSIONS=5000 \
	RTGRAPH_BENCH_FCAP_LOOKUPS=40000 RTGRAPH_BENCH_FCAP_ROUNDS=10 \
	deploy/local/with-infra.sh $(GO) test -run '^$$' -bench FcapPeerRedis -benchtime 1x -timeout 60m -v ./api/

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 30s).
	scripts/fuzz.sh $(FUZZTIME)

.PHONY: infra-up
infra-up: ## Start real Kafka and Cassandra on 127.0.0.1 (idempotent).
	deploy/local/infra.sh up

.PHONY: infra-down
infra-down: ## Stop the servers infra-up started (by PID file).
	deploy/local/infra.sh down

.PHONY: migrate
migrate: build ## Apply the CQL migrations to the configured Cassandra.
	$(BIN) migrate $(if $(CONFIG),--config $(CONFIG),)

.PHONY: lint
lint: ## go vet and staticcheck (pinned with go tool), with the fault and cluster tests' build tags.
	$(GO) vet -tags faults,cluster ./...
	$(GO) tool staticcheck -tags faults,cluster ./...

.PHONY: fmt
fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: clean
clean: ## Remove build output (not data, not the servers' state).
	rm -rf bin
