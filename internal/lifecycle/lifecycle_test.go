package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder notes events in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, ",")
}

func blocking(rec *recorder, ready *Readiness, name string) Stage {
	return Stage{Name: name, Run: func(ctx context.Context) error {
		<-ctx.Done()
		if ok, _ := ready.Ready(); ok {
			rec.add(name + ":stopped-while-ready")
		}
		rec.add("stop:" + name)
		return nil
	}}
}

func TestRunStopsInReverseOrderAfterReadinessOff(t *testing.T) {
	rec := &recorder{}
	ready := NewReadiness()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Run(ctx, discard, ready, 5*time.Second,
			blocking(rec, ready, "http"), blocking(rec, ready, "pipeline"), blocking(rec, ready, "flusher"))
	}()
	if ok, _ := ready.Ready(); !ok {
		t.Fatal("no conditions: should be ready")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("clean stop returned %v", err)
	}
	if got, want := rec.String(), "stop:flusher,stop:pipeline,stop:http"; got != want {
		t.Errorf("stop order = %s, want %s", got, want)
	}
	if ok, why := ready.Ready(); ok || why[0] != "shutting_down" {
		t.Errorf("after stop: ready=%v why=%v", ok, why)
	}
}

func TestRunStageFailureStopsOthers(t *testing.T) {
	rec := &recorder{}
	ready := NewReadiness()
	boom := errors.New("boom")
	err := Run(context.Background(), discard, ready, 5*time.Second,
		blocking(rec, ready, "http"),
		Stage{Name: "pipeline", Run: func(context.Context) error { return boom }},
	)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "pipeline") {
		t.Fatalf("err = %v, want boom naming the stage", err)
	}
	if rec.String() != "stop:http" {
		t.Errorf("events = %s", rec.String())
	}
}

func TestRunStageReturningNilEarlyIsAnError(t *testing.T) {
	err := Run(context.Background(), discard, NewReadiness(), time.Second,
		Stage{Name: "quitter", Run: func(context.Context) error { return nil }})
	if err == nil || !strings.Contains(err.Error(), "quitter") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunShutdownTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	defer close(release)
	err := Run(ctx, discard, NewReadiness(), 50*time.Millisecond,
		Stage{Name: "stuck", Run: func(context.Context) error { <-release; return nil }})
	if !errors.Is(err, ErrShutdownTimeout) || !strings.Contains(err.Error(), "stuck") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadinessConditions(t *testing.T) {
	r := NewReadiness("caches_loaded", "store")
	if ok, why := r.Ready(); ok || strings.Join(why, ",") != "caches_loaded,store" {
		t.Fatalf("ready=%v why=%v", ok, why)
	}
	r.Mark("store")
	r.Mark("caches_loaded")
	if ok, _ := r.Ready(); !ok {
		t.Fatal("all marked: should be ready")
	}
	r.Unmark("store")
	if ok, why := r.Ready(); ok || why[0] != "store" {
		t.Fatalf("ready=%v why=%v", ok, why)
	}
}

func TestHealthHandlers(t *testing.T) {
	r := NewReadiness("store")
	rec := httptest.NewRecorder()
	ReadyHandler(r).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"store"`) || rec.Header().Get("Retry-After") == "" {
		t.Errorf("not ready: %d %s", rec.Code, rec.Body)
	}
	r.Mark("store")
	rec = httptest.NewRecorder()
	ReadyHandler(r).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 {
		t.Errorf("ready: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	LiveHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/livez", nil))
	if rec.Code != 200 {
		t.Errorf("live: %d", rec.Code)
	}
}

func TestHTTPStageServesThenShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan struct{})
	finish := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		close(inFlight)
		<-finish
		_, _ = w.Write([]byte("done"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Run(ctx, discard, NewReadiness(), 5*time.Second, HTTPStage("http", srv, ln, 5*time.Second))
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	got := make(chan string)
	go func() {
		resp, err := client.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-inFlight
	cancel() // shutdown begins while the request is in flight
	time.Sleep(20 * time.Millisecond)
	close(finish)
	if body := <-got; body != "done" {
		t.Errorf("in-flight request got %q, want it completed", body)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	client.CloseIdleConnections()
}

// TestReadinessGauge checks rtgraph_ready follows Ready: 0 until every
// condition is marked, 1 then, 0 again once a condition is lost.
func TestReadinessGauge(t *testing.T) {
	r := NewReadiness("a", "b")
	reg := prometheus.NewRegistry()
	if err := r.Register(reg); err != nil {
		t.Fatal(err)
	}
	value := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil || len(mfs) != 1 || mfs[0].GetName() != "rtgraph_ready" {
			t.Fatalf("gather = %v, %v; want rtgraph_ready alone", mfs, err)
		}
		return mfs[0].GetMetric()[0].GetGauge().GetValue()
	}
	for _, step := range []struct {
		do   func()
		want float64
	}{
		{func() {}, 0},
		{func() { r.Mark("a") }, 0},
		{func() { r.Mark("b") }, 1},
		{func() { r.Unmark("a") }, 0},
		{func() { r.Mark("a") }, 1},
		{r.stop, 0},
	} {
		step.do()
		if got := value(); got != step.want {
			t.Fatalf("rtgraph_ready = %v, want %v (ready: %v)", got, step.want, fmt.Sprint(r.Ready()))
		}
	}
}
