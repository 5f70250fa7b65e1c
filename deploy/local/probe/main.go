// Command probe waits until a local Kafka broker or Cassandra node truly answers.
//
// It is built once by deploy/local/infra.sh into $RTGRAPH_INFRA_DIR/bin/probe and used as
//
//	probe [-timeout 180s] [-pid N] [-nodes N] kafka 127.0.0.1:9092
//	probe [-timeout 180s] [-pid N] [-nodes N] cassandra 127.0.0.1:9042
//
// Kafka answers when a metadata request (sarama, protocol version 4.0) returns at least -nodes
// brokers (default 1) and names a controller; Cassandra answers when CQL `SELECT release_version
// FROM system.local` returns a row and, with -nodes N, the node knows N-1 peers that have joined
// the ring (system.peers_v2 rows with tokens and a native address), so that a cluster is whole. The probe
// retries until the deadline; with -pid it gives up as soon as that process has exited. On success
// it prints one line (what answered) and exits 0; otherwise it prints the last error and exits 1.
// -timeout 0 tries exactly once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// nodes is the -nodes flag: the cluster size an answer must show.
var nodes int

func main() {
	timeout := flag.Duration("timeout", 180*time.Second, "give up after this long (0: try once)")
	pid := flag.Int("pid", 0, "fail early when this process is gone")
	interval := flag.Duration("interval", 500*time.Millisecond, "pause between attempts")
	flag.IntVar(&nodes, "nodes", 1, "brokers (Kafka) or ring members (Cassandra) that must answer")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: probe [-timeout D] [-pid N] [-nodes N] kafka|cassandra HOST:PORT")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	kind, addr := flag.Arg(0), flag.Arg(1)
	var try func(context.Context, string) (string, error)
	switch kind {
	case "kafka":
		try = kafka
	case "cassandra":
		try = cassandra
	default:
		flag.Usage()
		os.Exit(2)
	}

	start := time.Now()
	deadline := start.Add(*timeout)
	for {
		attempt := 10 * time.Second
		if left := time.Until(deadline); *timeout > 0 && left < attempt {
			attempt = max(left, time.Second)
		}
		ctx, cancel := context.WithTimeout(context.Background(), attempt)
		what, err := try(ctx, addr)
		cancel()
		if err == nil {
			fmt.Printf("%s at %s answers (%s) after %.1fs\n", kind, addr, what, time.Since(start).Seconds())
			return
		}
		if *pid > 0 && !alive(*pid) {
			fmt.Fprintf(os.Stderr, "probe: %s process %d exited before %s answered: %v\n", kind, *pid, addr, err)
			os.Exit(1)
		}
		if *timeout <= 0 || time.Now().Add(*interval).After(deadline) {
			fmt.Fprintf(os.Stderr, "probe: %s at %s did not answer within %s: %v\n", kind, addr, *timeout, err)
			os.Exit(1)
		}
		time.Sleep(*interval)
	}
}

// alive reports whether process pid still exists (and is not a zombie).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no procfs: trust kill(0)
	}
	// state is the field after "(comm)"; comm may contain spaces, so look from the last ')'.
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' {
			return i+2 >= len(b) || b[i+2] != 'Z'
		}
	}
	return true
}

// kafka sends a metadata request and requires at least one broker in the answer.
func kafka(ctx context.Context, addr string) (string, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = "rtgraph-infra-probe"
	cfg.Net.DialTimeout = 3 * time.Second
	cfg.Net.ReadTimeout = 5 * time.Second
	cfg.Net.WriteTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 0
	cfg.Metadata.Full = false
	if dl, ok := ctx.Deadline(); ok {
		cfg.Metadata.Timeout = time.Until(dl)
	}
	client, err := sarama.NewClient([]string{addr}, cfg) // sends the first metadata request
	if err != nil {
		return "", err
	}
	defer client.Close()
	if err := client.RefreshMetadata(); err != nil {
		return "", err
	}
	brokers := client.Brokers()
	if len(brokers) < max(nodes, 1) {
		return "", fmt.Errorf("metadata answer lists %d broker(s), want %d", len(brokers), max(nodes, 1))
	}
	ctrl, err := client.Controller()
	if err != nil {
		return "", fmt.Errorf("no controller yet: %w", err)
	}
	return fmt.Sprintf("metadata: %d broker(s), controller %d", len(brokers), ctrl.ID()), nil
}

// cassandra connects with CQL and reads the server version from system.local.
func cassandra(ctx context.Context, addr string) (string, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", err
	}
	cluster := gocql.NewCluster(host)
	cluster.Port = port
	cluster.Timeout = 5 * time.Second
	cluster.ConnectTimeout = 3 * time.Second
	cluster.Consistency = gocql.One
	cluster.NumConns = 1
	// MaxRetries must be >= 1: gocql v2.1.2's hostConnPool.connect loops MaxRetries times and, with 0,
	// adds a nil *Conn to the pool, so the first query panics in hostConnPool.Pick.
	cluster.ReconnectionPolicy = &gocql.ConstantReconnectionPolicy{MaxRetries: 1, Interval: time.Second}
	session, err := cluster.CreateSession()
	if err != nil {
		return "", err
	}
	defer session.Close()
	var version string
	if err := session.Query(`SELECT release_version FROM system.local`).ScanContext(ctx, &version); err != nil {
		return "", err
	}
	if nodes <= 1 {
		return "release_version " + version, nil
	}
	iter := session.Query(`SELECT peer, tokens, native_address FROM system.peers_v2`).IterContext(ctx)
	joined := 0
	var (
		peer, native net.IP
		tokens       []string
	)
	for iter.Scan(&peer, &tokens, &native) {
		if len(tokens) > 0 && native != nil {
			joined++
		}
	}
	if err := iter.Close(); err != nil {
		return "", err
	}
	if joined < nodes-1 {
		return "", fmt.Errorf("%d of %d peers joined the ring", joined, nodes-1)
	}
	return fmt.Sprintf("release_version %s, ring of %d", version, joined+1), nil
}
