package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/rtgraph/rtgraph/internal/testenv"
)

// buildBinary builds rtgraph once per test run.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rtgraph")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	return bin
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func runCmd(args []string, environ []string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, environ)
	return code, out.String(), errb.String()
}

func TestUsageAndVersion(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{nil, exitUsage, "Commands:"},
		{[]string{"help"}, exitOK, "Commands:"},
		{[]string{"version"}, exitOK, "rtgraph "},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"config"}, exitUsage, "config needs a subcommand"},
		{[]string{"config", "print", "--nope"}, exitUsage, "flag provided but not defined"},
		{[]string{"config", "print", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"produce", "--topic", "t"}, exitUsage, "--topic and --file are required"},
		{[]string{"produce", "--topic", "t", "--file", "f", "--topic-config", "a=b"}, exitUsage, "need --create-partitions"},
		{[]string{"produce", "--topic", "t", "--file", "f", "--create-partitions", "2", "--topic-config", "novalue"}, exitUsage, "is not k=v"},
		{[]string{"produce", "--topic", "t", "--file", "f", "--max-message-bytes", "0"}, exitUsage, "--max-message-bytes must be positive"},
		{[]string{"produce", "--topic", "t", "--file", "/nonexistent.jsonl", "--brokers", "nohost"}, exitUsage, "--brokers"},
		{[]string{"dlq"}, exitUsage, "dlq needs a subcommand: replay"},
		{[]string{"group", "rewind"}, exitUsage, "--to is required"},
		{[]string{"group", "rewind", "--to", "yesterday"}, exitUsage, "--to:"},
		{[]string{"group", "rewind", "--to", "2026-11-25T00:00:00Z"}, exitError, "ingest.topics: no input topics"},
		{[]string{"ingest", "--config", "/nonexistent.yaml"}, exitError, "/nonexistent.yaml"},
		{[]string{"ingest"}, exitError, "ingest.topics: must name at least one input topic"},
		{[]string{"health", "--url", "http://127.0.0.1:1/readyz", "--timeout", "500ms"}, exitError, "health:"},
	}
	for _, tt := range tests {
		code, out, errs := runCmd(tt.args, nil)
		if code != tt.code || !strings.Contains(out+errs, tt.contains) {
			t.Errorf("rtgraph %v: code %d, output %q; want code %d containing %q", tt.args, code, out+errs, tt.code, tt.contains)
		}
	}
}

func TestConfigPrint(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rtgraph.yaml")
	if err := os.WriteFile(file, []byte("cassandra:\n  keyspace: graph_prod\n  username: svc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"RTGRAPH_CASSANDRA_PASSWORD=hunter2", "RTGRAPH_KAFKA_BROKERS=10.1.1.1:9092,10.1.1.2:9092"}
	code, out, errs := runCmd([]string{"config", "print", "--config", file}, env)
	if code != exitOK {
		t.Fatalf("code %d: %s", code, errs)
	}
	for _, want := range []string{"keyspace: graph_prod", "username: svc", "10.1.1.2:9092", "password: '********'"} {
		if !strings.Contains(out, want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errs, "hunter2") {
		t.Error("config print revealed a secret")
	}
	// RTGRAPH_CONFIG names the file when --config is absent.
	code, out, _ = runCmd([]string{"config", "print"}, append(env, "RTGRAPH_CONFIG="+file))
	if code != exitOK || !strings.Contains(out, "keyspace: graph_prod") {
		t.Errorf("RTGRAPH_CONFIG ignored: %d\n%s", code, out)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"RTGRAPH_STORE_BACKEND=mysql"}, "store.backend"},
		{[]string{"RTGRAPH_HTTP_ADDR=nope"}, "http.addr"},
		{[]string{"RTGRAPH_CASSANDRA_PORT=0"}, "cassandra.port"},
		{[]string{"RTGRAPH_KAFKA_VERSION=2.0.0"}, "kafka.version"},
		{[]string{"RTGRAPH_LOG_FORMAT=xml"}, "log.format"},
		{[]string{"RTGRAPH_SHUTDOWN_TIMEOUT=0s"}, "shutdown_timeout"},
		{[]string{"RTGRAPH_HTTP_WRITE_TIMEOUT=5s"}, "http.write_timeout"},
		{[]string{"RTGRAPH_CASANDRA_PORT=9042"}, "RTGRAPH_CASANDRA_PORT"},
	}
	for _, tt := range tests {
		code, _, errs := runCmd([]string{"config", "print"}, tt.env)
		if code != exitError || !strings.Contains(errs, tt.want) {
			t.Errorf("env %v: code %d, stderr %q; want 1 naming %q", tt.env, code, errs, tt.want)
		}
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := defaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestServeStopsCleanlyOnSIGTERM runs the real binary as a user would:
// it becomes ready, serves metrics, and exits 0 on SIGTERM.
func TestServeStopsCleanlyOnSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "RTGRAPH_HTTP_ADDR="+addr, "RTGRAPH_EMBEDDED_DIR="+t.TempDir(), "RTGRAPH_STORE_BACKEND=embedded")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s; logs:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("go_goroutines")) {
		t.Errorf("/metrics: %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM; logs:\n%s", logs.String())
	}
	for _, want := range []string{`"msg":"shutdown requested"`, `"stage":"store"`, `"stage":"http"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
	if strings.Index(logs.String(), `"msg":"stage stopped","stage":"store"`) > strings.Index(logs.String(), `"msg":"stage stopped","stage":"http"`) {
		t.Errorf("http stopped before the store:\n%s", logs.String())
	}
}

// TestMigrateTwiceIsANoOp runs `rtgraph migrate` against the real Cassandra
// into a fresh keyspace: the first run applies every file, the second none.
func TestMigrateTwiceIsANoOp(t *testing.T) {
	host, port, err := net.SplitHostPort(testenv.Cassandra(t))
	if err != nil {
		t.Fatal(err)
	}
	keyspace := fmt.Sprintf("rtgraph_cmdtest_%d", time.Now().UnixNano()%1e9)
	env := []string{"RTGRAPH_CASSANDRA_HOSTS=" + host, "RTGRAPH_CASSANDRA_PORT=" + port, "RTGRAPH_CASSANDRA_KEYSPACE=" + keyspace}
	t.Cleanup(func() {
		cluster := gocql.NewCluster(host)
		fmt.Sscan(port, &cluster.Port)
		if s, err := cluster.CreateSession(); err == nil {
			_ = s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec()
			s.Close()
		}
	})
	code, out, errs := runCmd([]string{"migrate"}, env)
	if code != exitOK || !strings.Contains(out, "applied 0001_") {
		t.Fatalf("first migrate: code %d\nstdout %s\nstderr %s", code, out, errs)
	}
	code, out, errs = runCmd([]string{"migrate"}, env)
	if code != exitOK || strings.Contains(out, "applied") || !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: code %d\nstdout %s\nstderr %s", code, out, errs)
	}
}

// TestDemoRefusesOwnTopics: rtgraph demo runs the built-in vertical; a
// configuration naming its own topics or caches is refused rather than
// silently replaced.
func TestDemoRefusesOwnTopics(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rtgraph.yaml")
	yaml := "ingest:\n  topics:\n    shop.public.orders:\n      format: debezium\n" +
		"enrich:\n  caches:\n    - name: sellers\n      topic: shop.sellers\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd([]string{"demo", "--config", file, "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0"}, nil)
	if code != exitUsage || !strings.Contains(out+errs, "would ignore ingest.topics and enrich.caches") {
		t.Fatalf("demo with its own topics: code %d, output %q", code, out+errs)
	}
}

// TestCountsOffByEmptyList: `counts: {edge_types: []}` is a deployment
// without frequency-cap counts, not an error; no list at all keeps the
// default, and an unknown edge type is still refused.
func TestCountsOffByEmptyList(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rtgraph.yaml")
	if err := os.WriteFile(file, []byte("counts:\n  edge_types: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(file, nil)
	if err != nil || !cfg.countsOff {
		t.Fatalf("empty edge_types: %v, counts off %v; want no error and counts off", err, cfg != nil && cfg.countsOff)
	}
	if cfg, err := loadConfig("", nil); err != nil || cfg.countsOff || len(cfg.Counts.EdgeTypes) != 1 {
		t.Fatalf("defaults: %v, %+v", err, cfg)
	}
	if err := os.WriteFile(file, []byte("counts:\n  edge_types: [\"no such\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(file, nil); err == nil || !strings.Contains(err.Error(), "counts.edge_types") {
		t.Fatalf("bad edge type name: %v", err)
	}
}
