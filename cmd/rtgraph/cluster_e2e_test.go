//go:build cluster

package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/rtgraph/rtgraph/verticals/rides/ridesgen"
	"github.com/rtgraph/rtgraph/verticals/rides/ridesoracle"
)

// The cluster tests (make test-cluster, deploy/local/with-cluster.sh) run on
// a real 3-node Cassandra and a real 3-broker Kafka on 127.0.0.1-3, named by
// these variables; the infra script's node command kills and restarts one
// server of them.
const (
	envClusterKafka     = "RTGRAPH_TEST_CLUSTER_KAFKA"     // broker addresses, comma-separated
	envClusterCassandra = "RTGRAPH_TEST_CLUSTER_CASSANDRA" // node addresses (one port), comma-separated
	envClusterInfra     = "RTGRAPH_INFRA_CLUSTER_SCRIPT"   // deploy/local/infra.sh, with the cluster's settings in the environment
)

func clusterEnv(t testing.TB) (brokers, hosts []string, port, infra string) {
	t.Helper()
	k, c, infra := os.Getenv(envClusterKafka), os.Getenv(envClusterCassandra), os.Getenv(envClusterInfra)
	if k == "" || c == "" || infra == "" {
		t.Fatalf("%s, %s and %s must be set: run make test-cluster (deploy/local/with-cluster.sh starts the cluster)",
			envClusterKafka, envClusterCassandra, envClusterInfra)
	}
	brokers = strings.Split(k, ",")
	for _, a := range strings.Split(c, ",") {
		h, p, ok := strings.Cut(a, ":")
		if !ok || (port != "" && p != port) {
			t.Fatalf("%s=%q: every node is HOST:PORT on one port", envClusterCassandra, c)
		}
		hosts, port = append(hosts, h), p
	}
	return brokers, hosts, port, infra
}

// node runs the infra script's node command (kill, start or stop) for one
// server of the cluster.
func clusterNode(t testing.TB, infra, action, kind string, i int) {
	t.Helper()
	start := time.Now()
	out, err := exec.Command(infra, "node", action, kind, strconv.Itoa(i), "--cassandra-nodes", "3", "--kafka-brokers", "3").CombinedOutput()
	if err != nil {
		t.Errorf("%s %s node %d: %v\n%s", action, kind, i, err, out)
		return
	}
	t.Logf("%s %s node %d in %s", action, kind, i, time.Since(start).Round(100*time.Millisecond))
}

// TestClusterRidesUnderFaults ingests the rides vertical's adversarial
// records with three `rtgraph ingest` processes in one consumer group into a
// keyspace of replication factor 3 written and read at LOCAL_QUORUM, from
// topics of replication factor 3 with min.insync.replicas 2, and queries it
// through two `rtgraph api` processes, once per fault, each run on its own
// topics, keyspace and group:
//
//   - broker-kill: one Kafka broker killed (SIGKILL) while the records are
//     published and ingested, restarted later;
//   - rolling-restart: the three ingest processes stopped and restarted one
//     after the other, each replacement ready before the next stops;
//   - cassandra-node-kill: one Cassandra node killed the same way as the
//     broker, restarted later. Last, so that the schema changes of the
//     other runs (a keyspace each) never race a node's restart.
//
// Queries run throughout; the only errors they may see are the documented
// 503 (retry later). At the end, every node, edge list and count read
// through each API process must equal what ridesoracle computes from the
// records: nothing lost, nothing counted twice.
func TestClusterRidesUnderFaults(t *testing.T) {
	brokers, hosts, cassPort, infra := clusterEnv(t)
	bin := buildBinary(t)
	dir, asOf := ridesGenerate(t)
	scenarios := []struct {
		name  string
		fault func(t *testing.T, restartIngest func(i int))
	}{
		{"broker-kill", func(t *testing.T, _ func(int)) {
			time.Sleep(2 * time.Second) // ingest under way
			clusterNode(t, infra, "kill", "kafka", 3)
			time.Sleep(20 * time.Second)
			clusterNode(t, infra, "start", "kafka", 3)
		}},
		{"rolling-restart", func(t *testing.T, restartIngest func(int)) {
			for i := range 3 {
				restartIngest(i)
			}
		}},
		{"cassandra-node-kill", func(t *testing.T, _ func(int)) {
			time.Sleep(2 * time.Second) // ingest under way
			clusterNode(t, infra, "kill", "cassandra", 2)
			time.Sleep(20 * time.Second)
			clusterNode(t, infra, "start", "cassandra", 2)
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			clusterRidesRun(t, bin, dir, asOf, brokers, hosts, cassPort, sc.fault)
		})
	}
}

// clusterRidesRun runs one scenario of TestClusterRidesUnderFaults: fault
// runs in its own goroutine while the records are published.
func clusterRidesRun(t *testing.T, bin, dir string, asOf time.Time, brokers, hosts []string, cassPort string,
	fault func(t *testing.T, restartIngest func(i int))) {
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	prefix := "c" + suffix + "."
	keyspace := "rtgraph_cluster_" + suffix
	dlq := "rtgraph.cluster-test.dlq." + suffix
	group := "rtgraph-cluster-test-" + suffix
	vdir := filepath.Join(t.TempDir(), "rides")
	copyVertical(t, ridesVerticalDir, vdir, prefix)

	sc := clusterSaramaConfig()
	admin, err := sarama.NewClusterAdmin(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	minISR := "2"
	var topics []string
	for _, tp := range ridesgen.Topics {
		topics = append(topics, prefix+tp)
	}
	for _, name := range append(append([]string{}, topics...), dlq) {
		detail := &sarama.TopicDetail{NumPartitions: 6, ReplicationFactor: 3, ConfigEntries: map[string]*string{"min.insync.replicas": &minISR}}
		if err := admin.CreateTopic(name, detail, false); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
	admin.Close()
	t.Cleanup(func() {
		if a, err := sarama.NewClusterAdmin(brokers, sc); err == nil {
			for _, tp := range append(topics, dlq) {
				_ = a.DeleteTopic(tp)
			}
			a.Close()
		}
		cluster := gocql.NewCluster(hosts...)
		cluster.Port, _ = strconv.Atoi(cassPort)
		cluster.Timeout = 30 * time.Second
		if s, err := cluster.CreateSession(); err == nil {
			_ = s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec()
			s.Close()
		}
	})

	cfgFile := filepath.Join(t.TempDir(), "rtgraph.yaml")
	if err := os.WriteFile(cfgFile, []byte(clusterConfig(brokers, hosts, cassPort, keyspace, group, dlq)), 0o600); err != nil {
		t.Fatal(err)
	}
	clusterMigrate(t, bin, cfgFile, hosts, cassPort)

	start := func(role string) *demoProcess {
		d := startRole(t, bin, role, 180*time.Second, "--config", cfgFile, "--vertical", vdir)
		d.kafkaAddr = brokers[0]
		return d
	}
	var ingesters []*demoProcess
	for range 3 {
		ingesters = append(ingesters, start("ingest"))
	}
	apis := []*demoProcess{start("api"), start("api")}
	restartIngest := func(i int) {
		d := ingesters[i]
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("stop ingest %d: %v", i, err)
			return
		}
		<-d.exited
		ingesters[i] = start("ingest")
		t.Logf("ingest process %d restarted", i)
	}

	// Queries throughout: any answer but 200, 404 and 503 is an error.
	stopQueries := make(chan struct{})
	var queries sync.WaitGroup
	var qmu sync.Mutex
	statuses := map[int]int{}
	var slowest time.Duration
	for _, a := range apis {
		queries.Add(1)
		go func() {
			defer queries.Done()
			client := &http.Client{Timeout: 20 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stopQueries:
					return
				case <-time.After(50 * time.Millisecond):
				}
				path := fmt.Sprintf("/v1/nodes/rider/%d/edges?edge_type=requested&limit=50", i%200)
				began := time.Now()
				resp, err := client.Get(a.base + path)
				took := time.Since(began)
				code := 0
				if err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				qmu.Lock()
				statuses[code]++
				slowest = max(slowest, took)
				qmu.Unlock()
			}
		}()
	}

	// The fault while the records are published and ingested.
	var faults sync.WaitGroup
	faults.Add(1)
	faultsFrom := time.Now()
	var faultsTook time.Duration
	go func() {
		defer faults.Done()
		fault(t, restartIngest)
		faultsTook = time.Since(faultsFrom)
	}()
	produced := map[string]int{}
	for _, tp := range ridesgen.Topics {
		out, err := exec.Command(bin, "produce", "--brokers", strings.Join(brokers, ","), "--topic", prefix+tp,
			"--file", filepath.Join(dir, tp+".jsonl")).CombinedOutput()
		if err != nil {
			t.Fatalf("produce %s: %v\n%s", tp, err, out)
		}
		var n int
		if _, err := fmt.Sscanf(string(out), "published %d events", &n); err != nil {
			t.Fatalf("produce %s: %s", tp, out)
		}
		produced[tp] = n
	}
	t.Logf("published every record %s after the fault began", time.Since(faultsFrom).Round(100*time.Millisecond))
	faults.Wait()
	t.Logf("fault over in %s", faultsTook.Round(100*time.Millisecond))

	// Ingested: the group has committed every partition's end offset.
	caughtUp := time.Now()
	waitGroupCaughtUp(t, brokers, group, topics, 240*time.Second)
	t.Logf("the group caught up %s after the fault ended", time.Since(caughtUp).Round(100*time.Millisecond))
	close(stopQueries)
	queries.Wait()
	t.Logf("queries during the fault, by status: %v; slowest %s", statuses, slowest.Round(time.Millisecond))
	for code, n := range statuses {
		if code != 200 && code != 404 && code != 503 {
			t.Errorf("%d queries answered %d (only 200, 404 and 503 are documented here)", n, code)
		}
	}
	if t.Failed() {
		for i, a := range apis {
			t.Logf("api %d log (warnings and errors):\n%s", i, grepLines(a.stderr.String(), "level=WARN", "level=ERROR"))
		}
	}

	now := time.Now()
	x, err := ridesoracle.Compute(dir, asOf, now)
	if err != nil {
		t.Fatal(err)
	}
	for tp, n := range produced {
		if x.Records[tp] != n {
			t.Errorf("%s: produce published %d records, the oracle read %d", tp, n, x.Records[tp])
		}
	}
	for i, a := range apis {
		c := &ridesCompare{d: a, x: x, client: &http.Client{Timeout: 30 * time.Second}}
		c.run()
		t.Logf("api %d: compared %d nodes (%d existing), %d edge lists (%d visible edges), %d count lookups",
			i, len(x.Known), len(x.Nodes), c.lists, len(x.Edges), len(x.Counts))
		if len(c.diffs) > 0 {
			sort.Strings(c.diffs)
			shown := c.diffs
			if len(shown) > 200 {
				shown = shown[:200]
			}
			t.Errorf("api %d: %d differences from the oracle:\n%s", i, len(c.diffs), strings.Join(shown, "\n"))
		}
	}
	for _, d := range append(apis, ingesters...) {
		d.stop()
	}
}

// waitGroupCaughtUp waits until group's committed offset of every partition
// of topics is the partition's end offset.
func waitGroupCaughtUp(t testing.TB, brokers []string, group string, topics []string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		behind, err := groupLag(brokers, group, topics)
		if err == nil && behind == 0 {
			return
		}
		last = fmt.Sprint(behind, " records behind ", err)
		time.Sleep(time.Second)
	}
	t.Fatalf("group %s not caught up after %s: %s", group, limit, last)
}

// groupLag is the group's lag over topics, read with a client of its own.
func groupLag(brokers []string, group string, topics []string) (int64, error) {
	client, err := sarama.NewClient(brokers, clusterSaramaConfig())
	if err != nil {
		return -1, err
	}
	defer client.Close()
	lag, _, err := lagOf(client, group, topics)
	return lag, err
}

// grepLines returns the lines of s that contain any of words.
func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
