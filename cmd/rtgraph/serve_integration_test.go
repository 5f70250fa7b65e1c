package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/rtgraph/rtgraph/internal/testenv"
)

// TestServeOnRealKafkaAndCassandra runs the production path as an operator
// would: `rtgraph migrate` into a fresh keyspace, `rtgraph serve` with the
// Cassandra backend consuming real Kafka, a Debezium event and a malformed
// one published with `rtgraph produce`; the node is served by the API, the
// bad event is dead-lettered, and SIGTERM exits 0.
// servedKeyspace creates what a process on real Kafka and Cassandra
// needs (topics, a migrated keyspace dropped at the end, a config file of
// the streaming mapping) and returns the binary, the config file, the
// broker and the input topic.
func servedKeyspace(t *testing.T) (bin, cfgFile, kafkaAddr, topic string) {
	t.Helper()
	kafkaAddr = testenv.Kafka(t)
	cassHost, cassPort, err := net.SplitHostPort(testenv.Cassandra(t))
	if err != nil {
		t.Fatal(err)
	}
	bin = buildBinary(t)
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	keyspace := "rtgraph_serve_" + suffix
	topic = "streaming.public.accounts"
	dlq := "rtgraph.serve-test.dlq." + suffix
	group := "rtgraph-serve-test-" + suffix

	sc := sarama.NewConfig()
	sc.Version = sarama.V4_0_0_0
	admin, err := sarama.NewClusterAdmin([]string{kafkaAddr}, sc)
	if err != nil {
		t.Fatal(err)
	}
	// The shipped mappings join the demo's metadata caches, so their
	// (compacted) topics must exist; empty is fine.
	for _, tp := range []string{topic, dlq, "meta.titles", "meta.campaigns"} {
		err := admin.CreateTopic(tp, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false)
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("create topic %s: %v", tp, err)
		}
	}
	admin.Close()
	t.Cleanup(func() {
		cluster := gocql.NewCluster(cassHost)
		cluster.Port, _ = strconv.Atoi(cassPort)
		cluster.Timeout = 30 * time.Second
		if s, err := cluster.CreateSession(); err == nil {
			_ = s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec()
			s.Close()
		}
	})

	cfgFile = filepath.Join(t.TempDir(), "rtgraph.yaml")
	cfg := fmt.Sprintf(`store:
  backend: cassandra
kafka:
  brokers: [%q]
cassandra:
  hosts: [%q]
  port: %s
  keyspace: %s
ingest:
  group_id: %s
  dead_letter_topic: %s
  topics:
    %s:
      mapping: streaming
      format: debezium
      entity_type: account
      key_fields: [account_id]
enrich:
  caches:
    - {name: titles, topic: meta.titles}
    - {name: campaigns, topic: meta.campaigns}
`, kafkaAddr, cassHost, cassPort, keyspace, group, dlq, topic)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(bin, "migrate", "--config", cfgFile).CombinedOutput()
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}

	return bin, cfgFile, kafkaAddr, topic
}

func TestServeOnRealKafkaAndCassandra(t *testing.T) {
	bin, cfgFile, kafkaAddr, topic := servedKeyspace(t)
	httpAddr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--config", cfgFile)
	cmd.Env = append(os.Environ(), "RTGRAPH_HTTP_ADDR="+httpAddr)
	d := &demoProcess{t: t, cmd: cmd, base: "http://" + httpAddr, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = d.stdout, d.stderr
	d.watch()
	d.waitFor("ready (store open, caches loaded, in the consumer group)", 120*time.Second, func() bool {
		code, _ := d.get("/readyz")
		return code == 200
	})

	for _, f := range []string{"testdata/account_990001.jsonl", "testdata/malformed_account.jsonl"} {
		out, err := exec.Command(bin, "produce", "--brokers", kafkaAddr, "--topic", topic, "--file", f).CombinedOutput()
		if err != nil {
			t.Fatalf("produce %s: %v\n%s", f, err, out)
		}
	}
	d.waitFor("serving account 990001 from Cassandra", 90*time.Second, func() bool {
		code, body := d.get("/v1/nodes/account/990001")
		return code == 200 && strings.Contains(string(body), `"country":"GB"`)
	})
	deadLetters := regexp.MustCompile(`(?m)^rtgraph_ingest_dead_letters_total\{[^}]*topic="streaming\.public\.accounts"[^}]*\} ([0-9.e+]+)$`)
	d.waitFor("dead-lettering the malformed event", 60*time.Second, func() bool {
		_, body := d.get("/metrics")
		m := deadLetters.FindSubmatch(body)
		return m != nil && string(m[1]) != "0"
	})
	d.stop()
}

// TestProcessesByRole runs ingestion and queries in separate processes on
// one Cassandra keyspace: one `rtgraph ingest` and two `rtgraph api`. Both
// API processes serve what the ingest process wrote, with the consumer
// group's watermark; neither joins the group (no pipeline metrics), and
// the ingest process serves no query route. Every process exports
// rtgraph_ready and the group's watermark, the same value in each.
func TestProcessesByRole(t *testing.T) {
	bin, cfgFile, kafkaAddr, topic := servedKeyspace(t)
	start := func(role string) *demoProcess { return startRole(t, bin, role, 120*time.Second, "--config", cfgFile) }
	ingester := start("ingest")
	apis := []*demoProcess{start("api"), start("api")}

	out, err := exec.Command(bin, "produce", "--brokers", kafkaAddr, "--topic", topic, "--file", "testdata/account_990001.jsonl").CombinedOutput()
	if err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	for i, a := range apis {
		a.waitFor(fmt.Sprintf("api %d serving account 990001 with a known watermark", i), 90*time.Second, func() bool {
			code, body := a.get("/v1/nodes/account/990001")
			return code == 200 && strings.Contains(string(body), `"country":"GB"`) && strings.Contains(string(body), `"known":true`)
		})
		if _, body := a.get("/metrics"); strings.Contains(string(body), "rtgraph_ingest_") {
			t.Errorf("api %d exposes pipeline metrics: it runs a pipeline", i)
		}
	}
	if code, _ := ingester.get("/v1/nodes/account/990001"); code != 404 {
		t.Errorf("ingest process answers a query route with %d, want 404", code)
	}
	if _, body := ingester.get("/metrics"); !strings.Contains(string(body), "rtgraph_ingest_") {
		t.Errorf("ingest process has no pipeline metrics")
	}
	// Every process says it is ready and reports the group's one watermark:
	// the ingest process that wrote it and the API processes that read it.
	ready := regexp.MustCompile(`(?m)^rtgraph_ready 1$`)
	watermark := regexp.MustCompile(`(?m)^rtgraph_watermark_event_time_seconds\{group="[^"]+"\} (\S+)$`)
	procs := append([]*demoProcess{ingester}, apis...)
	ingester.waitFor("every process ready with the same watermark", 30*time.Second, func() bool {
		seen := map[string]bool{}
		for _, d := range procs {
			_, body := d.get("/metrics")
			m := watermark.FindSubmatch(body)
			if !ready.Match(body) || m == nil {
				return false
			}
			seen[string(m[1])] = true
		}
		return len(seen) == 1
	})
	for _, a := range apis {
		a.stop()
	}
	ingester.stop()
}

// startRole starts `rtgraph ROLE ARGS...` on a free HTTP address and waits
// up to limit until it is ready.
func startRole(t testing.TB, bin, role string, limit time.Duration, args ...string) *demoProcess {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{role}, args...)...)
	cmd.Env = append(os.Environ(), "RTGRAPH_HTTP_ADDR="+addr)
	d := &demoProcess{t: t, cmd: cmd, base: "http://" + addr, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = d.stdout, d.stderr
	d.watch()
	d.waitFor(role+" ready", limit, func() bool {
		code, _ := d.get("/readyz")
		return code == 200
	})
	return d
}
