package cassandra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/rtgraph/rtgraph/graph"
)

// Frequency-cap counts (graph.CountStore) on the impressions table of
// schemas/cql/0200_impressions.cql.
//
// # Layout
//
// One row per impression, PRIMARY KEY ((user_type, user_id, edge_type),
// target, event_time, event_id); target is the neighbour encoding of
// layout.go (type, 0x00, id), event_time microseconds. The key is the
// impression's identity (see package graph): recording it again rewrites
// the same row, so counts are exact under redelivery and replay without
// reading first.
//
// # One partition read
//
// A lookup is one statement on one partition:
//
//	SELECT target, event_time FROM impressions WHERE <partition>
//	  AND target IN (targets) AND event_time > since AND event_time <= as_of
//
// since = as_of − the longest window asked for. Cassandra serves it as one
// slice per target, each starting at since, so older rows of the partition
// are never read; the rows come back in a few pages at most (5,000 rows a
// page) and every window is counted from them in one pass. A failed page
// restarts the whole statement (it is idempotent), so a result never mixes
// two reads.
//
// # Partition size
//
// A partition holds one user's impressions of one edge type over retention
// (7d + lateness): ~60-100 bytes a row on disk, so a user shown 2,000 ads a
// day has ~14k rows (~1.4 MB); Cassandra's guidance (~100k rows / 100 MB)
// is reached at ~14,000 impressions a day for one user. A coarser time
// bucket in the partition key would bound it further, but would turn the
// 7-day window into eight partition reads; heavy users that large are
// bots, which the upstream filters, and MaxCountRows bounds a lookup.
//
// # Writes and expiry
//
// Rows are written USING TIMESTAMP event time AND TTL event time +
// retention + ttlSlack − now (rounded up to whole seconds): the row expires
// after every window that may still be asked for has passed it, whatever
// the delay before it was written. ttlSlack absorbs clock skew between
// rtgraph and the Cassandra nodes, which expire rows by their own clocks.
// A call's rows are grouped by partition into unlogged single-partition
// batches of at most 64 statements, sent in parallel within
// max_concurrent_requests, each retried like every other request.

const (
	cqlInsertImpression = `INSERT INTO impressions (user_type, user_id, edge_type, target, event_time, event_id)` +
		` VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?`
	// cqlPurgeImpressions deletes a user's partition of one edge type up
	// to a timestamp: rows are written at their event time, so the
	// impressions of event times at or before it go, later ones stay, and
	// a late one of the purged period is shadowed.
	cqlPurgeImpressions = `DELETE FROM impressions USING TIMESTAMP ? WHERE user_type = ? AND user_id = ? AND edge_type = ?`
	cqlCountImpressions = `SELECT target, event_time FROM impressions` +
		` WHERE user_type = ? AND user_id = ? AND edge_type = ? AND target IN ? AND event_time > ? AND event_time <= ?`
)

// Request kinds of the count store (the "op" label of the request metrics).
const (
	opWriteImpressions = "write_impressions"
	opReadCounts       = "read_counts"
)

// defaultTTLSlack is added to every impression's TTL; see the Writes section.
const defaultTTLSlack = time.Minute

// CountOptions carry the collaborators of Counts. The zero value is usable.
type CountOptions struct {
	// Registerer receives the count metrics. Nil keeps them in a private
	// registry; never the global default registry.
	Registerer prometheus.Registerer
	// Logger receives the count store's events. Nil discards them.
	Logger *slog.Logger
	// Now is the clock for retention, lateness, TTLs and a query's default
	// as_of; nil means time.Now.
	Now func() time.Time
}

// Counts is the Cassandra graph.CountStore. It uses its Store's session,
// consistency levels, retry policy and in-flight bound. It is safe for
// concurrent use. Close it before the Store.
type Counts struct {
	s        *Store
	rules    *graph.CountRules
	now      func() time.Time
	log      *slog.Logger
	m        *countMetrics
	ttlSlack time.Duration

	// mu is held shared by every call and exclusively by Close.
	mu     sync.RWMutex
	closed bool
}

var _ graph.CountStore = (*Counts)(nil)

// NewCounts returns the count store over s's keyspace (migrated: it needs
// the impressions table). rules says which edge types are counted and for
// how long impressions are kept.
func NewCounts(s *Store, rules *graph.CountRules, opts CountOptions) (*Counts, error) {
	if s == nil || rules == nil {
		return nil, errors.New("cassandra: new counts: nil store or rules")
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newCountMetrics(reg)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Counts{s: s, rules: rules, now: now, log: logger, m: m, ttlSlack: defaultTTLSlack}, nil
}

// Close waits for calls in flight and refuses later ones. It does not
// close the Store or the session. A second Close returns graph.ErrClosed.
func (c *Counts) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return graph.ErrClosed
	}
	c.closed = true
	return nil
}

// enter admits a call: the Counts and its Store are open and ctx is live.
// On success the caller must call c.leave.
func (c *Counts) enter(ctx context.Context, op string) error {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return graph.ErrClosed
	}
	if !c.s.enter() {
		c.mu.RUnlock()
		return graph.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		c.leave()
		return &graph.RetryableError{Op: op, Err: err}
	}
	return nil
}

func (c *Counts) leave() {
	c.s.leave()
	c.mu.RUnlock()
}

type countPartition struct {
	userType, userID, edgeType string
}

// RecordImpressions implements graph.CountWriter.
func (c *Counts) RecordImpressions(ctx context.Context, imps []graph.Impression) (graph.RecordResult, error) {
	now := c.now()
	keep, res, err := c.rules.CheckImpressions(imps, now)
	if err != nil {
		c.m.invalidCalls.Inc()
		return graph.RecordResult{}, fmt.Errorf("cassandra: record impressions: %w", err)
	}
	if err := c.enter(ctx, "record impressions"); err != nil {
		return graph.RecordResult{}, err
	}
	defer c.leave()

	groups := make(map[countPartition][]stmt)
	var order []countPartition
	expiresAfter := (c.rules.Retention() + c.ttlSlack).Microseconds()
	nowUS := now.UnixMicro()
	for _, im := range keep {
		k := countPartition{im.User.Type, im.User.ID, im.EdgeType}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		ts := im.EventTime.UnixMicro()
		// CheckImpressions kept only event times after now − retention, so
		// the remaining lifetime is at least ttlSlack.
		ttl := ttlSeconds(ts + expiresAfter - nowUS)
		groups[k] = append(groups[k], stmt{cql: cqlInsertImpression, args: []any{
			im.User.Type, []byte(im.User.ID), im.EdgeType, neighborKey(im.Target), ts, []byte(im.EventID), ts, ttl,
		}})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.s.limit)
	for _, k := range order {
		stmts := groups[k]
		for start := 0; start < len(stmts); start += maxBatchStatements {
			chunk := stmts[start:min(start+maxBatchStatements, len(stmts))]
			g.Go(func() error {
				return c.s.do(gctx, opWriteImpressions, func(ctx context.Context) error { return c.s.send(ctx, chunk) })
			})
		}
	}
	if err := g.Wait(); err != nil {
		return graph.RecordResult{}, c.s.callErr(ctx, "record impressions", err)
	}
	c.m.accepted.Add(float64(res.Accepted))
	c.m.tooOld.Add(float64(res.TooOld))
	c.m.tooNew.Add(float64(res.TooNew))
	return res, nil
}

// Counts implements graph.CountReader with one single-partition statement.
func (c *Counts) Counts(ctx context.Context, q graph.CountQuery) (graph.CountResult, error) {
	p, err := c.rules.Plan(q, c.now())
	if err != nil {
		return graph.CountResult{}, fmt.Errorf("cassandra: counts: %w", err)
	}
	if err := c.enter(ctx, "counts"); err != nil {
		return graph.CountResult{}, err
	}
	defer c.leave()
	start := time.Now()

	targets := make([][]byte, len(p.Query.Targets))
	index := make(map[string]int, len(targets))
	for i, t := range p.Query.Targets {
		targets[i] = neighborKey(t)
		index[string(targets[i])] = i
	}
	var res graph.CountResult
	rows := 0
	err = c.s.do(ctx, opReadCounts, func(ctx context.Context) error {
		// A retried attempt starts from zero.
		res, rows = p.NewResult(), 0
		iter := c.s.query(c.s.readCL, cqlCountImpressions,
			q.User.Type, []byte(q.User.ID), q.EdgeType, targets, p.Since, p.AsOf).IterContext(ctx)
		var target []byte
		var at int64
		for iter.Scan(&target, &at) {
			i, ok := index[string(target)]
			if !ok {
				_ = iter.Close()
				return fmt.Errorf("cassandra: counts: row for target %q, which was not asked for", target)
			}
			if rows++; rows > graph.MaxCountRows {
				_ = iter.Close()
				return fmt.Errorf("%w: more than %d impressions to read", graph.ErrCountTooLarge, graph.MaxCountRows)
			}
			p.Add(res.Targets[i].Counts, at)
		}
		return iter.Close()
	})
	c.m.rowsRead.Add(float64(rows))
	if err != nil {
		return graph.CountResult{}, c.s.callErr(ctx, "counts", err)
	}
	c.m.readSeconds.Observe(time.Since(start).Seconds())
	return res, nil
}

type countMetrics struct {
	accepted, tooOld, tooNew prometheus.Counter
	invalidCalls             prometheus.Counter
	rowsRead                 prometheus.Counter
	readSeconds              prometheus.Histogram
}

func newCountMetrics(reg prometheus.Registerer) (*countMetrics, error) {
	imps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtgraph_cassandra_impressions_total",
		Help: "Impressions given to the Cassandra count store, by outcome: accepted (written, duplicates included), too_old (at or before now - retention), too_new (beyond now + lateness).",
	}, []string{"outcome"})
	m := &countMetrics{
		accepted: imps.WithLabelValues("accepted"),
		tooOld:   imps.WithLabelValues("too_old"),
		tooNew:   imps.WithLabelValues("too_new"),
		invalidCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_cassandra_impression_calls_invalid_total",
			Help: "RecordImpressions calls refused because an impression was invalid (nothing of them written).",
		}),
		rowsRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_cassandra_count_rows_read_total",
			Help: "Impression rows read by count lookups (retried attempts included).",
		}),
		readSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rtgraph_cassandra_count_read_seconds",
			Help: "Duration of count lookups that succeeded, retries included.",
			// 100 µs to ~3 s.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 15),
		}),
	}
	for _, col := range []prometheus.Collector{imps, m.invalidCalls, m.rowsRead, m.readSeconds} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("cassandra: register count metrics: %w", err)
		}
	}
	return m, nil
}

// PurgeUser implements graph.CountPurger with one partition delete per
// counted edge type, at the timestamp through (impressions are written at
// their event time). It reads nothing, so it returns -1.
func (c *Counts) PurgeUser(ctx context.Context, user graph.NodeKey, through time.Time) (int, error) {
	if err := c.enter(ctx, "purge counts"); err != nil {
		return 0, err
	}
	defer c.leave()
	ts := through.UnixMicro()
	var tasks []task
	for _, et := range c.rules.Config().EdgeTypes {
		tasks = append(tasks, task{op: opWrite, f: func(ctx context.Context) error {
			return c.s.query(c.s.writeCL, cqlPurgeImpressions, ts, user.Type, []byte(user.ID), et).ExecContext(ctx)
		}})
	}
	if err := c.s.runAll(ctx, tasks); err != nil {
		return 0, c.s.callErr(ctx, "purge counts", err)
	}
	return -1, nil
}
