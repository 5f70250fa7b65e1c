package cassandra

import (
	"context"
	"sync"

	"github.com/rtgraph/rtgraph/graph"
)

// task is one request: op names it for metrics, f sends it and is retried
// by the retrier.
type task struct {
	op string
	f  func(context.Context) error
}

type job struct {
	ctx  context.Context
	t    task
	done func(error)
}

// The Store sends every request through a fixed set of workers, one per
// allowed in-flight request (max_concurrent_requests). This is the bound on
// requests in flight for all calls together, and it spares a goroutine (and
// its stack growth through the driver's deep call chain) per request: the
// workers' stacks are grown once. A caller hands its requests over one at a
// time and blocks while every worker is busy, so callers share the workers
// first come, first served and backpressure reaches them.
//
// Invariant: a task never submits to the pool (it would wait for itself
// when all workers do); it is one request.
func (s *Store) startWorkers(n int) {
	s.jobs = make(chan job)
	s.workers.Add(n)
	for range n {
		go func() {
			defer s.workers.Done()
			for j := range s.jobs {
				if err := j.ctx.Err(); err != nil {
					j.done(&graph.RetryableError{Op: j.t.op, Err: err})
					continue
				}
				j.done(s.retry.do(j.ctx, j.t.op, j.t.f))
			}
		}()
	}
}

// stopWorkers ends the workers once no call can submit any more.
func (s *Store) stopWorkers() {
	close(s.jobs)
	s.workers.Wait()
}

// do runs one request on the workers, with retries, and returns its error.
func (s *Store) do(ctx context.Context, op string, f func(context.Context) error) error {
	done := make(chan error, 1)
	select {
	case s.jobs <- job{ctx: ctx, t: task{op: op, f: f}, done: func(err error) { done <- err }}:
	case <-ctx.Done():
		return &graph.RetryableError{Op: op, Err: ctx.Err()}
	}
	return <-done
}

// runAll runs tasks on the workers and waits for all of them. The first
// error cancels the tasks not yet done and is returned.
func (s *Store) runAll(ctx context.Context, tasks []task) error {
	switch len(tasks) {
	case 0:
		return nil
	case 1:
		return s.do(ctx, tasks[0].op, tasks[0].f)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	finish := func(err error) {
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
				cancel()
			}
			mu.Unlock()
		}
		wg.Done()
	}
submit:
	for _, t := range tasks {
		wg.Add(1)
		select {
		case s.jobs <- job{ctx: cctx, t: t, done: finish}:
		case <-cctx.Done():
			wg.Done()
			break submit
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if first == nil && ctx.Err() != nil {
		first = &graph.RetryableError{Op: tasks[0].op, Err: ctx.Err()}
	}
	return first
}
