// Command cdcbench measures the CDC chain end to end: how long a row
// committed in PostgreSQL takes to be visible in rtgraph's API (freshness),
// and how fast a bulk load goes through. deploy/local/cdc-bench.sh (make
// bench-cdc) starts the servers, the connector and rtgraph, then runs it.
//
//	cdcbench fresh -psql "psql args" -table T -api URL -type row -kafka ADDR -topic TOPIC -samples 200
//	cdcbench bulk  -psql "psql args" -table T -api URL -type row -rows 100000
//	cdcbench wait  -api URL -type row -id N
//
// fresh inserts one row at a time (autocommit) and takes the commit time
// from PostgreSQL's clock right after the commit; it then polls
// GET /v1/nodes/{type}/{id} every millisecond until the node is there (bulk
// and wait poll every 20 and 10 ms).
// rtgraph's share is the time from the record's Kafka timestamp (set by
// Connect's producer when it sent the record) to the node being visible.
// All clocks are this machine's.
//
// bulk inserts rows in one statement (one transaction) and waits for the
// last one. wait waits for /readyz and then for one node, and prints the
// time from readiness: with rtgraph started on a topic that already holds
// the records, that is rtgraph alone.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cdcbench fresh|bulk|wait [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	psqlArgs := fs.String("psql", "", "psql arguments (host, port, user, database), space-separated")
	table := fs.String("table", "", "table with columns (id bigint primary key, note text)")
	api := fs.String("api", "http://127.0.0.1:8080", "rtgraph API base URL")
	typ := fs.String("type", "row", "node type the table's rows map to")
	kafka := fs.String("kafka", "", "Kafka bootstrap address (fresh)")
	topic := fs.String("topic", "", "the table's topic (fresh)")
	samples := fs.Int("samples", 200, "rows to time one by one (fresh)")
	first := fs.Int64("first-id", 1, "first row id to insert")
	rows := fs.Int("rows", 100000, "rows to insert in one transaction (bulk)")
	id := fs.Int64("id", 0, "node id to wait for (wait)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	_ = fs.Parse(os.Args[2:])

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var err error
	switch os.Args[1] {
	case "fresh":
		err = fresh(ctx, *psqlArgs, *table, *api, *typ, *kafka, *topic, *samples, *first)
	case "bulk":
		err = bulk(ctx, *psqlArgs, *table, *api, *typ, *rows, *first)
	case "wait":
		err = wait(ctx, *api, *typ, *id)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cdcbench:", err)
		os.Exit(1)
	}
}

// psql is one psql session fed on stdin: every statement's result comes
// back on its own line.
type psql struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startPsql(args string) (*psql, error) {
	cmd := exec.Command("psql", append([]string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, strings.Fields(args)...)...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &psql{cmd: cmd, in: in, out: bufio.NewScanner(out)}, nil
}

// commitMicros runs stmt (autocommit) and returns PostgreSQL's clock, in
// Unix microseconds, read right after the commit.
func (p *psql) commitMicros(stmt string) (int64, error) {
	if _, err := fmt.Fprintf(p.in, "%s;\nSELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;\n", stmt); err != nil {
		return 0, err
	}
	if !p.out.Scan() {
		if err := p.out.Err(); err != nil {
			return 0, err
		}
		return 0, errors.New("psql ended")
	}
	return strconv.ParseInt(strings.TrimSpace(p.out.Text()), 10, 64)
}

func (p *psql) close() {
	_ = p.in.Close()
	_ = p.cmd.Wait()
}

var client = &http.Client{Timeout: 5 * time.Second}

// visible polls the node every interval until the API has it and returns
// when it first saw it.
func visible(ctx context.Context, api, typ string, id int64, interval time.Duration) (time.Time, error) {
	url := fmt.Sprintf("%s/v1/nodes/%s/%d", api, typ, id)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("node %s %d not visible: %w", typ, id, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// kafkaTimes reads the topic from its end on, recording each record's
// timestamp by key id, until ctx ends.
type kafkaTimes struct {
	mu sync.Mutex
	at map[int64]time.Time
}

func (k *kafkaTimes) get(id int64) (time.Time, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	t, ok := k.at[id]
	return t, ok
}

func watchTopic(ctx context.Context, addr, topic string) (*kafkaTimes, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	c, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		return nil, err
	}
	parts, err := c.Partitions(topic)
	if err != nil {
		c.Close()
		return nil, err
	}
	kt := &kafkaTimes{at: map[int64]time.Time{}}
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetNewest)
		if err != nil {
			c.Close()
			return nil, err
		}
		go func() {
			for {
				select {
				case <-ctx.Done():
					pc.Close()
					return
				case m := <-pc.Messages():
					if id, ok := keyID(m.Key); ok {
						kt.mu.Lock()
						kt.at[id] = m.Timestamp
						kt.mu.Unlock()
					}
				}
			}
		}()
	}
	go func() { <-ctx.Done(); c.Close() }()
	return kt, nil
}

// keyID reads the id out of a schemaless key {"id": N}.
func keyID(key []byte) (int64, bool) {
	s := string(key)
	i := strings.Index(s, `"id":`)
	if i < 0 {
		return 0, false
	}
	s = strings.TrimLeft(s[i+5:], " ")
	j := strings.IndexAny(s, ",}")
	if j < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s[:j]), 10, 64)
	return n, err == nil
}

func fresh(ctx context.Context, psqlArgs, table, api, typ, kafka, topic string, samples int, first int64) error {
	p, err := startPsql(psqlArgs)
	if err != nil {
		return err
	}
	defer p.close()
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	kt, err := watchTopic(wctx, kafka, topic)
	if err != nil {
		return fmt.Errorf("watch %s: %w", topic, err)
	}
	var total, share []time.Duration
	for i := range samples {
		id := first + int64(i)
		us, err := p.commitMicros(fmt.Sprintf("INSERT INTO %s (id, note) VALUES (%d, 'fresh')", table, id))
		if err != nil {
			return fmt.Errorf("insert %d: %w", id, err)
		}
		seen, err := visible(ctx, api, typ, id, time.Millisecond)
		if err != nil {
			return err
		}
		total = append(total, seen.Sub(time.UnixMicro(us)))
		// The record may be read a moment after the node is seen.
		for range 200 {
			if at, ok := kt.get(id); ok {
				share = append(share, seen.Sub(at))
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // rows apart, not one batch
	}
	fmt.Printf("freshness, commit in PostgreSQL -> visible in the API, %d rows one at a time: %s\n", len(total), quantiles(total))
	fmt.Printf("rtgraph's share, Kafka record timestamp -> visible, %d rows: %s\n", len(share), quantiles(share))
	return nil
}

func quantiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(f*float64(len(s))))] }
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s", ms(q(0.5)), ms(q(0.9)), ms(q(0.99)), ms(s[len(s)-1]))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func bulk(ctx context.Context, psqlArgs, table, api, typ string, rows int, first int64) error {
	p, err := startPsql(psqlArgs)
	if err != nil {
		return err
	}
	defer p.close()
	last := first + int64(rows) - 1
	us, err := p.commitMicros(fmt.Sprintf("INSERT INTO %s (id, note) SELECT g, 'bulk ' || g FROM generate_series(%d, %d) g", table, first, last))
	if err != nil {
		return fmt.Errorf("bulk insert: %w", err)
	}
	commit := time.UnixMicro(us)
	// Polled every 20 ms: a tighter loop would take CPU from the load.
	seen, err := visible(ctx, api, typ, last, 20*time.Millisecond)
	if err != nil {
		return err
	}
	d := seen.Sub(commit)
	fmt.Printf("bulk load end to end, %d rows in one transaction: last row visible %.1f s after the commit, %.0f rows/s\n",
		rows, d.Seconds(), float64(rows)/d.Seconds())
	return nil
}

func wait(ctx context.Context, api, typ string, id int64) error {
	var ready time.Time
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ready = time.Now()
				break
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	seen, err := visible(ctx, api, typ, id, 10*time.Millisecond)
	if err != nil {
		return err
	}
	fmt.Printf("%.2f\n", seen.Sub(ready).Seconds())
	return nil
}
