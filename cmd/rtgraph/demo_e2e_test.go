package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// demoProcess is a running `rtgraph demo`.
type demoProcess struct {
	t         testing.TB
	cmd       *exec.Cmd
	base      string
	stdout    *syncBuffer
	stderr    *syncBuffer
	kafkaAddr string
	exited    chan struct{} // closed when the process has exited
	waitErr   error         // set before exited is closed
}

// watch starts the process and notes when it exits.
func (d *demoProcess) watch() {
	d.t.Helper()
	d.exited = make(chan struct{})
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	d.t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
	})
}

func startDemo(t *testing.T, bin, dataDir, kafkaAddr, httpAddr string, extra ...string) *demoProcess {
	t.Helper()
	args := append([]string{"demo", "--data-dir", dataDir, "--kafka-addr", kafkaAddr, "--http-addr", httpAddr, "--progress", "1s"}, extra...)
	cmd := exec.Command(bin, args...)
	d := &demoProcess{t: t, cmd: cmd, base: "http://" + httpAddr, stdout: &syncBuffer{}, stderr: &syncBuffer{}, kafkaAddr: kafkaAddr}
	cmd.Stdout, cmd.Stderr = d.stdout, d.stderr
	d.watch()
	d.waitFor("ready", 90*time.Second, func() bool {
		code, _ := d.get("/readyz")
		return code == 200
	})
	return d
}

func (d *demoProcess) get(path string) (int, []byte) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(d.base + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (d *demoProcess) post(path, body string) (int, []byte) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Post(d.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		d.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (d *demoProcess) waitFor(what string, limit time.Duration, ok func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		select {
		case <-d.exited:
			d.t.Fatalf("demo: exited (%v) before %s\nstdout:\n%s\nstderr (tail):\n%s", d.waitErr, what, d.stdout.String(), tail(d.stderr.String(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("demo: not %s after %s\nstdout:\n%s\nstderr (tail):\n%s", what, limit, d.stdout.String(), tail(d.stderr.String(), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop sends SIGTERM and requires exit code 0.
func (d *demoProcess) stop() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-d.exited:
		if d.waitErr != nil {
			d.t.Fatalf("demo exit after SIGTERM: %v\nstderr (tail):\n%s", d.waitErr, tail(d.stderr.String(), 4000))
		}
	case <-time.After(60 * time.Second):
		d.t.Fatalf("demo still running 60s after SIGTERM")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type edgeJSON struct {
	Type string `json:"type"`
	From struct{ Type, ID string }
	To   struct{ Type, ID string }
}

func (e edgeJSON) String() string {
	return fmt.Sprintf("%s:%s-%s->%s:%s", e.From.Type, e.From.ID, e.Type, e.To.Type, e.To.ID)
}

// TestDemoEndToEnd uses the binary as a user would: `rtgraph demo` on free
// ports, the README's queries, `rtgraph produce` of a Debezium event, a
// clean SIGTERM and a restart that finds the data again.
func TestDemoEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	kafkaAddr, httpAddr := freeAddr(t), freeAddr(t)
	d := startDemo(t, bin, dataDir, kafkaAddr, httpAddr, "--rate", "400")

	// The README's node query: account 1001 is the generator's first account.
	var node struct {
		Node struct {
			Props map[string]any `json:"props"`
		} `json:"node"`
	}
	d.waitFor("showing account 1001", 60*time.Second, func() bool {
		code, body := d.get("/v1/nodes/account/1001")
		return code == 200 && json.Unmarshal(body, &node) == nil && len(node.Node.Props) > 0
	})

	// 1 hop, then 2 hops from the same node: the 2-hop answer contains an
	// edge that the 1-hop query of its first node returned.
	var oneHop struct {
		Edges []edgeJSON `json:"edges"`
	}
	d.waitFor("showing a profile of account 1001", 60*time.Second, func() bool {
		code, body := d.get("/v1/nodes/account/1001/edges?edge_type=has_profile&direction=out&limit=300")
		return code == 200 && json.Unmarshal(body, &oneHop) == nil && len(oneHop.Edges) > 0
	})
	hop1 := map[string]bool{}
	for _, e := range oneHop.Edges {
		hop1[e.String()] = true
	}
	code, body := d.post("/v1/traversals", `{"start":[{"type":"account","id":"1001"}],"hops":[{"edge_types":["has_profile"],"direction":"out"},{"edge_types":["viewed_title"],"direction":"out"}]}`)
	if code != 200 {
		t.Fatalf("traversal: %d %s", code, body)
	}
	var trav struct {
		Edges []edgeJSON `json:"edges"`
	}
	if err := json.Unmarshal(body, &trav); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range trav.Edges {
		if hop1[e.String()] {
			found = true
		}
	}
	if !found {
		t.Errorf("2-hop traversal shares no edge with the 1-hop query:\n1-hop %v\n2-hop %s", hop1, body)
	}
	// Once the pipeline has recorded watermarks, answers carry one, in
	// the body and in a header.
	d.waitFor("carrying a known watermark", 30*time.Second, func() bool {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(d.base + "/v1/nodes/account/1001")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Watermark struct {
				Known bool `json:"known"`
			} `json:"watermark"`
		}
		return json.NewDecoder(resp.Body).Decode(&body) == nil && body.Watermark.Known &&
			resp.Header.Get("RTGraph-Watermark") != "unknown"
	})

	// The README's frequency-cap query: user u-9001's impressions of two
	// campaigns in three windows. The counts must be consistent: a longer
	// window never counts fewer impressions than a shorter one.
	var counts struct {
		Targets []struct {
			Target string           `json:"target"`
			Counts map[string]int64 `json:"counts"`
		} `json:"targets"`
	}
	d.waitFor("counting impressions of u-9001", 60*time.Second, func() bool {
		code, body := d.get("/v1/counts/user/u-9001?edge_type=impressed&target=campaign:c-500&target=campaign:c-501&windows=1m,1h,1d")
		if code != 200 || json.Unmarshal(body, &counts) != nil || len(counts.Targets) != 2 {
			return false
		}
		return counts.Targets[0].Counts["1d"]+counts.Targets[1].Counts["1d"] > 0
	})
	for _, c := range counts.Targets {
		if c.Counts["1m"] > c.Counts["1h"] || c.Counts["1h"] > c.Counts["1d"] {
			t.Errorf("%s: windows not nested: %v", c.Target, c.Counts)
		}
	}

	// A user's own Debezium event, published with `rtgraph produce`.
	out, err := exec.Command(bin, "produce", "--brokers", kafkaAddr, "--topic", "streaming.public.accounts", "--file", "testdata/account_990001.jsonl").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "published 1 events") {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	d.waitFor("showing the produced account 990001", 60*time.Second, func() bool {
		code, body := d.get("/v1/nodes/account/990001")
		return code == 200 && strings.Contains(string(body), `"country":"GB"`)
	})

	// The progress line reports dead letters from the malformed share.
	d.waitFor("reporting progress", 30*time.Second, func() bool { return strings.Contains(d.stdout.String(), "progress: published") })
	d.stop()

	// Restart with no generator: the graph is still there.
	d2 := startDemo(t, bin, dataDir, kafkaAddr, httpAddr, "--rate", "0")
	for _, path := range []string{"/v1/nodes/account/1001", "/v1/nodes/account/990001"} {
		if code, body := d2.get(path); code != 200 {
			t.Errorf("after restart %s: %d %s", path, code, body)
		}
	}
	d2.stop()
	if !strings.Contains(d.stdout.String(), "curl -s "+d.base+"/v1/nodes/account/1001") {
		t.Errorf("banner does not print the README's node query:\n%s", d.stdout.String())
	}
}
