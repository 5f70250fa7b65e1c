package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrShutdownTimeout is returned by Run when a stage did not stop within the
// shutdown timeout.
var ErrShutdownTimeout = errors.New("lifecycle: shutdown timed out")

// Stage is one component of a process.
type Stage struct {
	Name string
	// Run does the stage's work and blocks until ctx is cancelled, then
	// finishes what it owns (flush, commit, close) and returns nil: a
	// cancelled context is a clean stop, not an error. Returning early, with
	// or without an error, stops the whole process.
	Run func(ctx context.Context) error
}

// Readiness is the process's readiness: true once every required condition
// has been marked and until shutdown begins. Safe for concurrent use.
type Readiness struct {
	mu       sync.Mutex
	pending  map[string]bool // condition -> marked
	stopping bool
	details  map[string]func() any
}

// SetDetail adds a named detail to what /readyz reports, ready or not: f is
// called at every probe (from the probe's goroutine, so it must be safe for
// concurrent use) and its result, when not nil, is reported under name.
// Details never change readiness: they say what a ready process is having
// trouble with (e.g. partitions stalled on a failing store).
func (r *Readiness) SetDetail(name string, f func() any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.details == nil {
		r.details = map[string]func() any{}
	}
	r.details[name] = f
}

// Details returns the current value of every detail that is not nil.
func (r *Readiness) Details() map[string]any {
	r.mu.Lock()
	fs := maps.Clone(r.details)
	r.mu.Unlock()
	out := map[string]any{}
	for name, f := range fs {
		if v := f(); v != nil {
			out[name] = v
		}
	}
	return out
}

// NewReadiness returns readiness that waits for the named conditions.
func NewReadiness(conditions ...string) *Readiness {
	r := &Readiness{pending: make(map[string]bool, len(conditions))}
	for _, c := range conditions {
		r.pending[c] = false
	}
	return r
}

// Mark records that a condition holds (e.g. "caches_loaded").
func (r *Readiness) Mark(condition string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending[condition] = true
}

// Unmark records that a condition no longer holds.
func (r *Readiness) Unmark(condition string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending[condition] = false
}

// Ready reports whether the process is ready, and if not, why.
func (r *Readiness) Ready() (bool, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return false, []string{"shutting_down"}
	}
	var missing []string
	for c, ok := range r.pending {
		if !ok {
			missing = append(missing, c)
		}
	}
	slices.Sort(missing)
	return len(missing) == 0, missing
}

func (r *Readiness) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopping = true
}

// Run starts the stages in order and waits until ctx is done (the signal
// context of main) or a stage returns. It then turns readiness off and stops
// the stages one at a time in reverse order, waiting for each, within
// shutdownTimeout in all. It returns nil after a clean stop, the first stage
// error otherwise, or ErrShutdownTimeout.
func Run(ctx context.Context, log *slog.Logger, ready *Readiness, shutdownTimeout time.Duration, stages ...Stage) error {
	type running struct {
		cancel context.CancelFunc
		done   chan struct{}
		err    error
	}
	// Stages run under their own contexts, not under ctx: stopping is ordered
	// here, so a signal must not cancel every stage at once.
	rs := make([]*running, len(stages))
	exited := make(chan int, len(stages))
	for i, st := range stages {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r := &running{cancel: cancel, done: make(chan struct{})}
		rs[i] = r
		go func() {
			defer close(r.done)
			r.err = st.Run(sctx)
			exited <- i
		}()
		log.Debug("stage started", "stage", st.Name)
	}

	var firstErr error
	select {
	case <-ctx.Done():
		log.Info("shutdown requested", "cause", context.Cause(ctx).Error())
	case i := <-exited:
		<-rs[i].done
		if rs[i].err != nil {
			firstErr = fmt.Errorf("%s: %w", stages[i].Name, rs[i].err)
			log.Error("stage failed", "stage", stages[i].Name, "err", rs[i].err)
		} else {
			firstErr = fmt.Errorf("lifecycle: stage %s stopped on its own", stages[i].Name)
			log.Error("stage stopped unexpectedly", "stage", stages[i].Name)
		}
	}

	ready.stop()
	deadline := time.NewTimer(shutdownTimeout)
	defer deadline.Stop()
	for i := len(stages) - 1; i >= 0; i-- {
		r := rs[i]
		r.cancel()
		select {
		case <-r.done:
		case <-deadline.C:
			return errors.Join(firstErr, fmt.Errorf("%w: stage %s still running after %s", ErrShutdownTimeout, stages[i].Name, shutdownTimeout))
		}
		if r.err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: stop: %w", stages[i].Name, r.err)
		}
		log.Info("stage stopped", "stage", stages[i].Name)
	}
	return firstErr
}

// HTTPStage serves srv on ln until its context is cancelled, then shuts the
// server down gracefully, letting in-flight requests finish within grace.
func HTTPStage(name string, srv *http.Server, ln net.Listener, grace time.Duration) Stage {
	return Stage{Name: name, Run: func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("serve %s: %w", ln.Addr(), err)
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutdown %s: %w", ln.Addr(), err)
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}}
}

// Register exports the readiness as the gauge rtgraph_ready: 1 while the
// process is ready (what /readyz answers 200 for), 0 while it is starting,
// missing a condition or shutting down. Summed over a fleet it is the
// number of processes that serve; an alert on 0 catches one that never
// becomes ready, which `up` alone does not.
func (r *Readiness) Register(reg prometheus.Registerer) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "rtgraph_ready",
		Help: "1 while the process is ready (GET /readyz answers 200), else 0.",
	}, func() float64 {
		if ok, _ := r.Ready(); ok {
			return 1
		}
		return 0
	}))
}
