package cassandra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	drivererr "github.com/rtgraph/rtgraph/graph/cassandra/internal/drivererr"
)

func TestClassify(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want errClass
	}{
		{"write timeout", bg, &gocql.RequestErrWriteTimeout{}, classTimeout},
		{"read timeout", bg, fmt.Errorf("wrapped: %w", &gocql.RequestErrReadTimeout{}), classTimeout},
		{"no response", bg, gocql.ErrTimeoutNoResponse, classTimeout},
		{"heartbeat failed", bg, fmt.Errorf("gocql: heartbeat failed"), classConnection},
		{"frame on a reserved stream", bg, drivererr.ProtocolError("Query timed out before it could start"), classConnection},
		{"frame on a reserved stream, wrapped", bg, fmt.Errorf("read edges: %w", drivererr.ProtocolError("x")), classConnection},
		{"heartbeat failed, wrapped", bg, fmt.Errorf("read nodes: %w", fmt.Errorf("gocql: heartbeat failed")), classConnection},
		{"unavailable", bg, &gocql.RequestErrUnavailable{}, classUnavailable},
		{"overloaded", bg, &gocql.RequestErrOverloaded{}, classOverloaded},
		{"bootstrapping", bg, &gocql.RequestErrBootstrapping{}, classOverloaded},
		{"write failure", bg, &gocql.RequestErrWriteFailure{}, classFailure},
		{"read failure", bg, &gocql.RequestErrReadFailure{}, classFailure},
		{"no connections", bg, gocql.ErrNoConnections, classConnection},
		{"connection closed", bg, gocql.ErrConnectionClosed, classConnection},
		{"eof", bg, io.EOF, classConnection},
		{"net error", bg, &net.OpError{Op: "dial", Err: errors.New("refused")}, classConnection},
		{"syntax", bg, &gocql.RequestErrSyntax{}, classInvalid},
		{"invalid", bg, &gocql.RequestErrInvalid{}, classInvalid},
		{"already exists", bg, &gocql.RequestErrAlreadyExists{}, classInvalid},
		{"unauthorized", bg, &gocql.RequestErrUnauthorized{}, classAuth},
		{"credentials", bg, &gocql.RequestErrCredentials{}, classAuth},
		{"caller cancelled", cancelled, context.Canceled, classCanceled},
		{"unknown", bg, errors.New("something else"), classOther},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := classify(c.ctx, c.err); got != c.want {
				t.Fatalf("classify(%v) = %s, want %s", c.err, got, c.want)
			}
		})
	}
}

func TestRetrier(t *testing.T) {
	cfg := RetryConfig{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	cases := []struct {
		name      string
		errs      []error // returned by successive attempts; nil = success
		attempts  int
		retryable bool
		ok        bool
	}{
		{"first try", []error{nil}, 1, false, true},
		{"timeout then success", []error{&gocql.RequestErrWriteTimeout{}, nil}, 2, false, true},
		{"retries exhausted", []error{gocql.ErrTimeoutNoResponse, &gocql.RequestErrUnavailable{}, &gocql.RequestErrOverloaded{}}, 3, true, false},
		{"permanent not retried", []error{&gocql.RequestErrSyntax{}}, 1, false, false},
		{"unknown not retried", []error{errors.New("bug")}, 1, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := newMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			r := &retrier{cfg: cfg, metrics: m}
			n := 0
			err = r.do(context.Background(), opWrite, func(context.Context) error {
				e := c.errs[n]
				n++
				return e
			})
			if n != c.attempts {
				t.Fatalf("attempts %d, want %d", n, c.attempts)
			}
			if (err == nil) != c.ok || graph.IsRetryable(err) != c.retryable {
				t.Fatalf("err %v: want ok=%v retryable=%v", err, c.ok, c.retryable)
			}
			if !c.ok && !errors.Is(err, c.errs[len(c.errs)-1]) && !errors.As(err, new(*gocql.RequestErrSyntax)) {
				t.Fatalf("err %v does not wrap the last driver error", err)
			}
			if got := testutil.ToFloat64(m.retries.WithLabelValues(opWrite)); got != float64(c.attempts-1) {
				t.Fatalf("retries metric %v, want %d", got, c.attempts-1)
			}
			failed := 0
			for _, e := range c.errs {
				if e != nil {
					failed++
				}
			}
			if got := testutil.CollectAndCount(m.errors); failed > 0 && got == 0 {
				t.Fatalf("errors metric has no series after %d failures", failed)
			}
		})
	}
}

func TestRetrierCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &retrier{cfg: RetryConfig{MaxAttempts: 10, InitialBackoff: time.Hour, MaxBackoff: time.Hour}}
	n := 0
	err := r.do(ctx, opWrite, func(context.Context) error {
		n++
		cancel() // the caller gives up while the request is failing
		return gocql.ErrTimeoutNoResponse
	})
	if n != 1 || !errors.Is(err, context.Canceled) || !graph.IsRetryable(err) {
		t.Fatalf("after %d attempts got %v, want one attempt and a retryable context.Canceled", n, err)
	}
}

func TestMetricsNeedTheirOwnRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := newMetrics(reg); err == nil {
		t.Fatal("registering twice on one registry succeeded")
	}
}
