package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/api"
	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/graph/storetest"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
)

// TestPurgeCommand: `rtgraph purge` erases a node through a running
// server's admin route with the key from RTGRAPH_API_KEY, and says why when
// the server refuses.
func TestPurgeCommand(t *testing.T) {
	schema := storetest.Schema()
	store := memstore.New(schema, memstore.Options{})
	at := time.Now().Add(-time.Hour)
	u, v := graph.NodeKey{Type: "user", ID: "u/1"}, graph.NodeKey{Type: "user", ID: "v"}
	if err := store.Apply(context.Background(), []graph.Mutation{
		{Op: graph.OpUpsertNode, Node: u, EventTime: at},
		{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "follows", From: v, To: u}, EventTime: at},
	}); err != nil {
		t.Fatal(err)
	}
	cfg := api.DefaultConfig()
	cfg.CursorSecret = strings.Repeat("s", 32)
	cfg.Keys = []api.Key{{Name: "ops", Key: "admin-key-0123456789ab", Scopes: []string{api.ScopeAdmin}},
		{Name: "reader", Key: "read-key-0123456789abc", Scopes: []string{api.ScopeGraphRead}}}
	h, err := api.New(api.Options{Config: cfg, Store: store, Purger: store, Schema: schema, Readiness: lifecycle.NewReadiness()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"purge", "--api", srv.URL, "user:u/1"}, &out, &errb,
		[]string{"RTGRAPH_API_KEY=admin-key-0123456789ab"}); code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	if !strings.HasPrefix(out.String(), "purged user:u/1 and every edge at it up to ") {
		t.Fatalf("output %q", out.String())
	}
	if n, _ := store.GetNodes(context.Background(), []graph.NodeKey{u}); len(n) != 0 || len(store.Edges()) != 0 {
		t.Fatalf("after purge: nodes %v, edges %v", n, store.Edges())
	}

	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"purge", "--api", srv.URL, "user:v"}, &out, &errb,
		[]string{"RTGRAPH_API_KEY=read-key-0123456789abc"}); code != exitError || !strings.Contains(errb.String(), "403 Forbidden") || !strings.Contains(errb.String(), "lacks scope admin") {
		t.Fatalf("purge with a read key: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"purge", "--api", srv.URL, "nocolon"}, &out, &errb, nil); code != exitUsage {
		t.Fatalf("purge without TYPE:ID: exit %d, stderr %q", code, errb.String())
	}
}
