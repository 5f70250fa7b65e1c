package cassandra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"syscall"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/cenkalti/backoff/v5"

	"github.com/rtgraph/rtgraph/graph"
)

// errClass is what kind of failure a driver error is; it decides retrying
// and is the "class" label of rtgraph_cassandra_errors_total.
type errClass string

const (
	classTimeout     errClass = "timeout"     // server read/write timeout, or no response in time
	classUnavailable errClass = "unavailable" // not enough live replicas
	classOverloaded  errClass = "overloaded"  // coordinator overloaded or bootstrapping
	classFailure     errClass = "failure"     // a replica failed the read or write
	classConnection  errClass = "connection"  // no connection, connection lost, no streams
	classCanceled    errClass = "canceled"    // the caller's context ended
	classInvalid     errClass = "invalid"     // syntax, invalid request, config, already exists
	classAuth        errClass = "auth"        // unauthorized, bad credentials
	classOther       errClass = "other"       // anything unrecognised: not retried
)

func (c errClass) retryable() bool {
	switch c {
	case classTimeout, classUnavailable, classOverloaded, classFailure, classConnection:
		return true
	}
	return false
}

// classify maps a driver error to its class. Unrecognised errors are not
// retried: retrying a bug or a data error would only delay its report.
func classify(ctx context.Context, err error) errClass {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return classCanceled
	}
	var (
		wto  *gocql.RequestErrWriteTimeout
		rto  *gocql.RequestErrReadTimeout
		una  *gocql.RequestErrUnavailable
		ovl  *gocql.RequestErrOverloaded
		boot *gocql.RequestErrBootstrapping
		wf   *gocql.RequestErrWriteFailure
		rf   *gocql.RequestErrReadFailure
		syn  *gocql.RequestErrSyntax
		inv  *gocql.RequestErrInvalid
		cfg  *gocql.RequestErrConfig
		ae   *gocql.RequestErrAlreadyExists
		una2 *gocql.RequestErrUnauthorized
		cred *gocql.RequestErrCredentials
		nerr net.Error
	)
	switch {
	case errors.As(err, &wto), errors.As(err, &rto), errors.Is(err, gocql.ErrTimeoutNoResponse),
		errors.Is(err, context.DeadlineExceeded):
		return classTimeout
	case errors.As(err, &una):
		return classUnavailable
	case errors.As(err, &ovl), errors.As(err, &boot):
		return classOverloaded
	case errors.As(err, &wf), errors.As(err, &rf):
		return classFailure
	case errors.Is(err, gocql.ErrNoConnections), errors.Is(err, gocql.ErrConnectionClosed),
		errors.Is(err, gocql.ErrNoStreams), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		errors.As(err, &nerr), isHeartbeatFailure(err), isConnProtocolError(err):
		return classConnection
	case errors.As(err, &syn), errors.As(err, &inv), errors.As(err, &cfg), errors.As(err, &ae):
		return classInvalid
	case errors.As(err, &una2), errors.As(err, &cred):
		return classAuth
	}
	return classOther
}

// heartbeatFailure is the text of the error the driver gives every request
// in flight on a connection it closes after its heartbeats failed (a node
// that stopped answering, e.g. paused or overloaded, then came back). The
// driver makes it with fmt.Errorf, so there is no sentinel to match.
const heartbeatFailure = "gocql: heartbeat failed"

func isHeartbeatFailure(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == heartbeatFailure {
			return true
		}
	}
	return false
}

// connProtocolError is the driver's (unexported) error type for a frame a
// node sent on a reserved stream. Cassandra 5.0 does that when it sheds a
// request that waited longer than native_transport_timeout in its queue
// (an OverloadedException "Query timed out before it could start", written
// on stream 0 instead of the request's): the driver then closes the
// connection and hands this error to every request in flight on it,
// whatever became of them. Seen after a node paused for 30 s resumes.
const connProtocolError = "*gocql.protocolError"

func isConnProtocolError(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if reflect.TypeOf(e).String() == connProtocolError {
			return true
		}
	}
	return false
}

// retrier runs one request with the configured backoff. It is safe for
// concurrent use: each call builds its own backoff state.
type retrier struct {
	cfg     RetryConfig
	metrics *metrics // nil: not measured
}

// do runs f until it succeeds, fails permanently or MaxAttempts is reached,
// sleeping an exponentially growing, jittered interval between attempts.
// op names the request kind (a fixed label value). The error is
//   - a *graph.RetryableError when ctx ended or every attempt failed
//     transiently;
//   - otherwise the permanent driver error, wrapped with op.
func (r *retrier) do(ctx context.Context, op string, f func(context.Context) error) error {
	var bo *backoff.ExponentialBackOff // built on the first failure only: most requests succeed at once
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			r.metrics.retry(op)
		}
		start := time.Now()
		err := f(ctx)
		r.metrics.observe(op, time.Since(start))
		if err == nil {
			return nil
		}
		class := classify(ctx, err)
		r.metrics.failed(op, class)
		switch {
		case class == classCanceled || ctx.Err() != nil:
			return &graph.RetryableError{Op: op, Err: ctx.Err()}
		case !class.retryable():
			return fmt.Errorf("cassandra: %s: %w", op, err)
		case attempt >= r.cfg.MaxAttempts:
			return &graph.RetryableError{Op: op, Err: fmt.Errorf("after %d attempts: %w", attempt, err)}
		}
		if bo == nil {
			bo = &backoff.ExponentialBackOff{
				InitialInterval:     r.cfg.InitialBackoff,
				RandomizationFactor: 0.5,
				Multiplier:          2,
				MaxInterval:         r.cfg.MaxBackoff,
			}
			bo.Reset()
		}
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &graph.RetryableError{Op: op, Err: ctx.Err()}
		}
	}
}
