package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
)

// Frequency-cap counts (graph.CountStore) on the Store's Pebble database.
//
// Key layout, beside the graph's tables of keys.go (table byte 'c'):
//
//	c <user> <edge type> <target> <t> <event id>    one impression; empty value
//
// <user> and <target> are node keys and <edge type> a string, escaped as in
// keys.go; <t> is the event time in microseconds, big-endian (event times
// are at or after 1970, so byte order is time order); the event id ends the
// key unescaped, since nothing follows it. The key is the impression's
// identity (see package graph), so recording an impression again rewrites
// the same key with the same empty value: exact under redelivery without
// reading first, and without the writer lock the graph tables need.
//
// One user's impressions of one edge type are one contiguous key range
// ("the partition"), ordered by target, then time: a count read is one
// iterator over that range with one seek per target, to the first
// impression after the longest window's start, then a forward scan to
// as_of. Its cost is the targets asked for plus the impressions counted.
//
// Expiry. Keys are removed by a sweep (CountOptions.SweepInterval) once
// their event time is sweepMargin past retention. Reads never depend on it:
// graph.CountRules only accepts queries whose windows lie inside retention,
// and the margin keeps a sweep from removing what a read that started
// shortly before it may still count.
const tCount = 'c'

// sweepMargin is how long past retention the sweep waits before removing
// an impression; see above.
const sweepMargin = time.Minute

// CountOptions are the collaborators and settings of Counts.
type CountOptions struct {
	// Logger receives sweep failures; nil discards.
	Logger *slog.Logger
	// Registerer receives the count metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock for retention, lateness and a query's default as_of;
	// nil means time.Now.
	Now func() time.Time
	// SweepInterval is how often impressions past retention are removed
	// from disk. Default 10m; at least 1s. A sweep reads the whole count
	// table (skipping through each target's live impressions), so it is
	// kept infrequent: stale keys are invisible to reads regardless.
	SweepInterval time.Duration
}

// Counts is the embedded graph.CountStore, sharing a Store's database.
//
// It is safe for concurrent use. Writes are blind, idempotent sets in one
// Pebble batch per call, synced when the Store's Config.Sync is set; reads
// take a consistent snapshot through one iterator. Close it before closing
// the Store: its sweep uses the Store's database.
type Counts struct {
	s     *Store
	rules *graph.CountRules
	log   *slog.Logger
	now   func() time.Time
	m     *countMetrics

	// mu is held shared by every call and exclusively by Close, so no call
	// runs once Close has returned.
	mu     sync.RWMutex
	closed bool

	// sealMu orders impression writes and the seal pass's snapshot (see
	// rollup.go): writers hold it shared from deciding on markers to their
	// commit. passMu serialises the passes that rewrite rollups: seal,
	// sweep and purge.
	sealMu sync.RWMutex
	passMu sync.Mutex
	// rolled holds the count prefixes (user, edge type) that have had a
	// rollup since the store opened: the users whose lookups look for
	// rollups. It only grows; see rolledUp.
	rolledMu sync.RWMutex
	rolled   map[string]struct{}

	// slots admits lookups to the CPU: a lookup reads while holding one of
	// GOMAXPROCS slots, and waits its turn (in arrival order) for one. A
	// read is CPU-bound (the block cache holds what it reads), so more
	// reads at once than cores only share the cores by preemption, whose
	// 10 ms slices put tens of milliseconds into the unlucky lookups' tail.
	slots chan struct{}

	interval  time.Duration
	stopOnce  sync.Once
	stopSweep chan struct{}
	sweepDone chan struct{}
}

var _ graph.CountStore = (*Counts)(nil)

// NewCounts starts counting on s: rules says which edge types are counted
// and for how long impressions are kept. It starts the sweep.
func NewCounts(s *Store, rules *graph.CountRules, opts CountOptions) (*Counts, error) {
	if s == nil || rules == nil {
		return nil, errors.New("embedded: new counts: nil store or rules")
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = 10 * time.Minute
	}
	if interval < time.Second {
		return nil, fmt.Errorf("%w: embedded counts sweep interval %s: must be at least 1s", ErrInvalidConfig, interval)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	m, err := newCountMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("embedded: new counts: %w", err)
	}
	c := &Counts{s: s, rules: rules, log: logger, now: now, m: m, interval: interval,
		slots:     make(chan struct{}, runtime.GOMAXPROCS(0)),
		stopSweep: make(chan struct{}), sweepDone: make(chan struct{}), rolled: map[string]struct{}{}}
	if err := c.loadRolled(); err != nil {
		return nil, fmt.Errorf("embedded: new counts: %w", err)
	}
	go c.sweepLoop()
	return c, nil
}

// Close stops the sweep and waits for calls in progress. It does not close
// the Store. A second Close returns graph.ErrClosed.
func (c *Counts) Close() error {
	c.stopOnce.Do(func() { close(c.stopSweep) })
	<-c.sweepDone
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return graph.ErrClosed
	}
	c.closed = true
	return nil
}

// enter admits a call; on success the caller must call c.leave.
func (c *Counts) enter(ctx context.Context, op string) error {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return graph.ErrClosed
	}
	if err := c.s.enter(ctx, op); err != nil {
		c.mu.RUnlock()
		return err
	}
	return nil
}

func (c *Counts) leave() {
	c.s.life.RUnlock()
	c.mu.RUnlock()
}

// countPrefix is the key range of one user's impressions of one edge type.
func countPrefix(b []byte, user graph.NodeKey, edgeType string) []byte {
	return appendStr(appendNode(append(b, tCount), user), edgeType)
}

func countKey(b []byte, im graph.Impression) []byte {
	b = appendNode(countPrefix(b, im.User, im.EdgeType), im.Target)
	b = binary.BigEndian.AppendUint64(b, uint64(im.EventTime.UnixMicro()))
	return append(b, im.EventID...)
}

// RecordImpressions implements graph.CountWriter: every impression is
// checked (none is written if one is invalid), those inside retention are
// set in one batch.
func (c *Counts) RecordImpressions(ctx context.Context, imps []graph.Impression) (graph.RecordResult, error) {
	keep, res, err := c.rules.CheckImpressions(imps, c.now())
	if err != nil {
		c.m.invalidCalls.Inc()
		return graph.RecordResult{}, fmt.Errorf("embedded: record impressions: %w", err)
	}
	if err := c.enter(ctx, "record impressions"); err != nil {
		return graph.RecordResult{}, err
	}
	defer c.leave()
	if len(keep) > 0 {
		b := c.s.db.NewBatch()
		defer func() { _ = b.Close() }()
		c.sealMu.RLock()
		defer c.sealMu.RUnlock()
		now := micros(c.now())
		var key, marker []byte
		for _, im := range keep {
			key = countKey(key[:0], im)
			if err := b.Set(key, nil, nil); err != nil {
				return graph.RecordResult{}, fmt.Errorf("embedded: record impressions: %w", err)
			}
			if at := im.EventTime.UnixMicro(); needsMarker(at, now) {
				marker = markerKey(marker[:0], key, len(key)-len(im.EventID)-8)
				if err := b.Set(marker, nil, nil); err != nil {
					return graph.RecordResult{}, fmt.Errorf("embedded: record impressions: %w", err)
				}
			}
		}
		opt := pebble.NoSync
		if c.s.cfg.Sync {
			opt = pebble.Sync
		}
		if err := b.Commit(opt); err != nil {
			return graph.RecordResult{}, fmt.Errorf("embedded: record impressions: commit: %w", err)
		}
	}
	c.m.accepted.Add(float64(res.Accepted))
	c.m.tooOld.Add(float64(res.TooOld))
	c.m.tooNew.Add(float64(res.TooNew))
	return res, nil
}

// Counts implements graph.CountReader with one iterator over the user's
// impressions of the edge type.
func (c *Counts) Counts(ctx context.Context, q graph.CountQuery) (graph.CountResult, error) {
	p, err := c.rules.Plan(q, c.now())
	if err != nil {
		return graph.CountResult{}, fmt.Errorf("embedded: counts: %w", err)
	}
	if err := c.enter(ctx, "counts"); err != nil {
		return graph.CountResult{}, err
	}
	defer c.leave()
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return graph.CountResult{}, &graph.RetryableError{Op: "counts", Err: ctx.Err()}
	}
	start := time.Now()
	res, rows, err := c.read(p)
	<-c.slots
	c.m.rowsRead.Add(float64(rows))
	if err != nil {
		return graph.CountResult{}, err
	}
	c.m.readSeconds.Observe(time.Since(start).Seconds())
	return res, nil
}

// read runs the plan: targets are visited in key order, so the iterator
// only moves forward.
func (c *Counts) read(p *graph.CountPlan) (graph.CountResult, int, error) {
	q := p.Query
	res := p.NewResult()
	prefix := countPrefix(make([]byte, 0, 128), q.User, q.EdgeType)
	type target struct {
		i   int
		key []byte // prefix, target
	}
	ts := make([]target, len(q.Targets))
	size := 0
	for _, t := range q.Targets {
		size += len(prefix) + len(t.Type) + len(t.ID) + 4
	}
	arena := make([]byte, 0, size) // every target's key, escapes aside
	for i, t := range q.Targets {
		start := len(arena)
		arena = appendNode(append(arena, prefix...), t)
		ts[i] = target{i, arena[start:len(arena):len(arena)]}
	}
	slices.SortFunc(ts, func(a, b target) int { return bytes.Compare(a.key, b.key) })
	// Most users have no rollup (rolledUp, a hint: impressions alone always
	// give the answer): their lookups read the user's impressions through
	// an iterator bounded to them. Others read through one iterator over
	// the impression, marker and rollup tables ('c' to 'h'), so the three
	// are read at one instant.
	rolled := c.rolledUp(prefix)
	opts := &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)}
	if rolled {
		opts = &pebble.IterOptions{LowerBound: []byte{tCount}, UpperBound: []byte{tRollup + 1}}
	}
	it, err := c.s.db.NewIter(opts)
	if err != nil {
		return graph.CountResult{}, 0, fmt.Errorf("embedded: counts: %w", err)
	}
	defer it.Close()
	from := max(0, p.Since+1) // first event time counted
	rows := 0
	var seek []byte
	var covered []span // spans of the target counted from their rollups
	// past: the iterator stands at the first key at or after an earlier
	// target's seek key (every key between was read), or it is exhausted.
	// Targets are read in key order and a target's rows sort before the
	// next one's, so when that key is at or after this target's seek key,
	// it is where the seek would land: the seek is skipped, and a user's
	// impressions of consecutive targets are read in one pass.
	past, exhausted := false, false
	for _, t := range ts {
		counts := res.Targets[t.i].Counts
		covered = covered[:0]
		if rolled {
			if covered, err = c.useRollups(it, p, t.key, from, counts, covered); err != nil {
				return graph.CountResult{}, rows, err
			}
			rows += len(covered)
			past = false
		}
		seek = binary.BigEndian.AppendUint64(append(seek[:0], t.key...), uint64(from))
		n := len(t.key)
		ci := 0
		// Impressions are read in time order: runN of them, from runAt
		// to runEnd, fall in the same windows and are added at once.
		var runAt, runEnd, runN int64
		var ok bool
		switch {
		case past && exhausted:
			ok = false
		case past && bytes.Compare(it.Key(), seek) >= 0:
			ok = true
		default:
			ok = it.SeekGE(seek)
		}
		past, exhausted = true, !ok
		for ok {
			k := it.Key()
			if len(k) < n+8 || !bytes.Equal(k[:n], t.key) {
				break
			}
			at := int64(binary.BigEndian.Uint64(k[n : n+8]))
			if at > p.AsOf {
				break
			}
			for ci < len(covered) && covered[ci].end <= at {
				ci++
			}
			if ci < len(covered) && at >= covered[ci].start {
				// Counted from its rollup: skip the span, and the ones
				// right after it counted so too, in one seek.
				for ci+1 < len(covered) && covered[ci+1].start == covered[ci].end {
					ci++
				}
				seek = binary.BigEndian.AppendUint64(append(seek[:0], t.key...), uint64(covered[ci].end))
				ci++
				ok = it.SeekGE(seek)
				continue
			}
			if rows++; rows > graph.MaxCountRows {
				return graph.CountResult{}, rows, fmt.Errorf("embedded: counts of %s %s: %w: more than %d impressions to read",
					q.User, q.EdgeType, graph.ErrCountTooLarge, graph.MaxCountRows)
			}
			if at > runEnd || runN == 0 {
				p.AddN(counts, runAt, runN)
				runAt, runEnd, runN = at, p.RunEnd(at), 0
			}
			runN++
			ok = it.Next()
			exhausted = !ok
		}
		p.AddN(counts, runAt, runN)
		if err := it.Error(); err != nil {
			return graph.CountResult{}, rows, fmt.Errorf("embedded: counts: %w", err)
		}
	}
	return res, rows, nil
}

// useRollups adds to counts the rollups of target (its count key prefix
// tkey) that the plan can use whole: buckets starting at or after from,
// not marked, not cut by a window's start or as_of; days first, then hours
// outside the days used. It returns the spans they cover, ascending,
// appended to covered.
func (c *Counts) useRollups(it *pebble.Iterator, p *graph.CountPlan, tkey []byte, from int64, counts []int64, covered []span) ([]span, error) {
	// The target's marked hours (markers are few and short-lived).
	var marked []int64
	mp := append([]byte{tMarker}, tkey[1:]...)
	mseek := binary.BigEndian.AppendUint64(slices.Clip(mp), uint64(dayOf(from)))
	for ok := it.SeekGE(mseek); ok && bytes.HasPrefix(it.Key(), mp); ok = it.Next() {
		k := it.Key()
		if len(k) < len(mp)+8 {
			return covered, fmt.Errorf("embedded: counts: marker %q: %w", k, errBadKey)
		}
		if b := int64(binary.BigEndian.Uint64(k[len(mp):])); len(marked) == 0 || marked[len(marked)-1] != b {
			marked = append(marked, b)
		}
	}
	markedIn := func(lo, hi int64) bool {
		for _, m := range marked {
			if m >= lo && m < hi {
				return true
			}
		}
		return false
	}
	dayStart, dayEnd := len(covered), len(covered) // the days used: covered[dayStart:dayEnd]
	for _, level := range []byte{levelDay, levelHour} {
		sp := spanOf(level)
		rp := append(append([]byte{tRollup}, tkey[1:]...), level)
		first := from - from%sp
		if first < from {
			first += sp
		}
		di := dayStart // the next day used, when reading hours
		seek := binary.BigEndian.AppendUint64(slices.Clip(rp), uint64(first))
		for ok := it.SeekGE(seek); ok && bytes.HasPrefix(it.Key(), rp); {
			k, v := it.Key(), it.Value()
			if len(k) != len(rp)+8 || len(v) != 8 {
				return covered, fmt.Errorf("embedded: counts: rollup %q: %w", k, errBadKey)
			}
			b := int64(binary.BigEndian.Uint64(k[len(rp):]))
			if b+sp-1 > p.AsOf {
				break
			}
			if level == levelHour {
				for di < dayEnd && covered[di].end <= b {
					di++
				}
				if di < dayEnd && b >= covered[di].start {
					// Inside a day used: one seek past it and the
					// used days right after it, not a step per hour.
					end := covered[di].end
					for di+1 < dayEnd && covered[di+1].start == end {
						di++
						end = covered[di].end
					}
					seek = binary.BigEndian.AppendUint64(seek[:len(rp)], uint64(end))
					ok = it.SeekGE(seek)
					continue
				}
			}
			if !markedIn(b, b+sp) && p.AddRange(counts, b, b+sp-1, int64(binary.BigEndian.Uint64(v))) {
				covered = append(covered, span{b, b + sp})
			}
			ok = it.Next()
		}
		if err := it.Error(); err != nil {
			return covered, err
		}
		if level == levelDay {
			dayEnd = len(covered)
		}
	}
	slices.SortFunc(covered, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	return covered, nil
}

// span is [start, end) in microseconds.
type span struct{ start, end int64 }

func (c *Counts) sweepLoop() {
	defer close(c.sweepDone)
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.stopSweep
		cancel()
	}()
	for {
		select {
		case <-c.stopSweep:
			return
		case <-tick.C:
			if _, err := c.SweepCounts(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, graph.ErrClosed) {
				c.log.Warn("embedded count sweep failed", "err", err)
			}
			if _, err := c.SealCounts(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, graph.ErrClosed) {
				c.log.Warn("embedded count seal pass failed", "err", err)
			}
		}
	}
}

// sweepSkipAfter is how many live keys of one target the sweep steps over
// one by one before seeking past the rest of the target's keys: a seek
// costs several steps, and most targets have few impressions.
const sweepSkipAfter = 8

// SweepCounts removes the impressions whose event time is more than
// retention plus a minute in the past, and returns how many it removed. The
// background sweep calls it; it is exported for tools and tests. Deletes are
// committed every Config.CommitEvery keys, without fsync: a sweep lost to a
// crash is simply done again.
func (c *Counts) SweepCounts(ctx context.Context) (int, error) {
	if err := c.enter(ctx, "sweep counts"); err != nil {
		return 0, err
	}
	defer c.leave()
	c.passMu.Lock()
	defer c.passMu.Unlock()
	horizon := micros(c.now().Add(-c.rules.Retention() - sweepMargin)) // remove t <= horizon
	if err := c.dropRollupsThrough(ctx, nil, horizon, false); err != nil {
		return 0, fmt.Errorf("embedded: sweep counts: %w", err)
	}
	it, err := c.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tCount}, UpperBound: []byte{tCount + 1}})
	if err != nil {
		return 0, fmt.Errorf("embedded: sweep counts: %w", err)
	}
	defer it.Close()
	b := c.s.db.NewBatch()
	defer func() { _ = b.Close() }()
	removed, pending := 0, 0
	commit := func() error {
		if pending == 0 {
			return nil
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
		c.m.swept.Add(float64(pending))
		removed += pending
		pending = 0
		_ = b.Close()
		b = c.s.db.NewBatch()
		return nil
	}
	var live []byte // the target whose live keys are being stepped over
	stepped := 0
	for ok := it.First(); ok; {
		if err := ctx.Err(); err != nil {
			return removed, &graph.RetryableError{Op: "sweep counts", Err: err}
		}
		k := it.Key()
		if live != nil && bytes.HasPrefix(k, live) {
			if stepped++; stepped > sweepSkipAfter {
				ok = it.SeekGE(prefixEnd(live))
				live = nil
				continue
			}
			ok = it.Next()
			continue
		}
		live = nil
		n, err := countGroupLen(k)
		if err != nil {
			return removed, fmt.Errorf("embedded: sweep counts: key %q: %w", k, err)
		}
		if int64(binary.BigEndian.Uint64(k[n:n+8])) <= horizon {
			if err := b.Delete(k, nil); err != nil {
				return removed, fmt.Errorf("embedded: sweep counts: %w", err)
			}
			if pending++; pending >= c.s.cfg.CommitEvery {
				if err := commit(); err != nil {
					return removed, fmt.Errorf("embedded: sweep counts: commit: %w", err)
				}
			}
		} else {
			// Keys of a target are in time order: the rest are live too.
			live = append(live[:0:0], k[:n]...)
			stepped = 0
		}
		ok = it.Next()
	}
	if err := it.Error(); err != nil {
		return removed, fmt.Errorf("embedded: sweep counts: %w", err)
	}
	if err := commit(); err != nil {
		return removed, fmt.Errorf("embedded: sweep counts: commit: %w", err)
	}
	return removed, nil
}

// PurgeUser implements graph.CountPurger: it deletes the user's count keys
// (every edge type and target) of event times at or before through. An
// impression of that period that arrives later is recorded again: nothing
// here remembers the purge.
func (c *Counts) PurgeUser(ctx context.Context, user graph.NodeKey, through time.Time) (int, error) {
	if err := c.enter(ctx, "purge counts"); err != nil {
		return 0, err
	}
	defer c.leave()
	c.passMu.Lock()
	defer c.passMu.Unlock()
	limit := through.UnixMicro()
	prefix := appendNode([]byte{tCount}, user)
	// The rollups of buckets holding purged impressions go first: a lookup
	// then reads those buckets impression by impression.
	if err := c.dropRollupsThrough(ctx, prefix[1:], limit, true); err != nil {
		return 0, fmt.Errorf("embedded: purge counts: %w", err)
	}
	it, err := c.s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("embedded: purge counts: %w", err)
	}
	b := c.s.db.NewBatch()
	defer func() { _ = b.Close() }()
	removed := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		n, err := countGroupLen(k)
		if err != nil {
			_ = it.Close()
			return removed, fmt.Errorf("embedded: purge counts: key %q: %w", k, err)
		}
		if int64(binary.BigEndian.Uint64(k[n:])) > limit {
			continue
		}
		if err := b.Delete(k, nil); err != nil {
			_ = it.Close()
			return removed, fmt.Errorf("embedded: purge counts: %w", err)
		}
		removed++
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("embedded: purge counts: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("embedded: purge counts: commit: %w", err)
	}
	return removed, nil
}

// countGroupLen returns the length of the 'c' <user> <edge type> <target>
// part of a count key, after checking that 8 time bytes follow it.
func countGroupLen(k []byte) (int, error) {
	if len(k) == 0 || k[0] != tCount {
		return 0, errBadKey
	}
	i := 1
	for range 5 { // user type, user id, edge type, target type, target id
		j, err := skipStr(k, i)
		if err != nil {
			return 0, err
		}
		i = j
	}
	if len(k) < i+8 {
		return 0, errBadKey
	}
	return i, nil
}

// skipStr returns the index just past the escaped string starting at k[i].
func skipStr(k []byte, i int) (int, error) {
	end, _ := strEnd(k[i:])
	if end < 0 {
		return 0, errBadKey
	}
	return i + end + 2, nil
}

type countMetrics struct {
	accepted, tooOld, tooNew prometheus.Counter
	invalidCalls             prometheus.Counter
	rowsRead                 prometheus.Counter
	swept                    prometheus.Counter
	sealed                   prometheus.Counter
	readSeconds              prometheus.Histogram
}

func newCountMetrics(reg prometheus.Registerer) (*countMetrics, error) {
	imps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rtgraph_embedded_impressions_total",
		Help: "Impressions given to the embedded count store, by outcome: accepted (stored, duplicates included), too_old (at or before now - retention), too_new (beyond now + lateness).",
	}, []string{"outcome"})
	m := &countMetrics{
		accepted: imps.WithLabelValues("accepted"),
		tooOld:   imps.WithLabelValues("too_old"),
		tooNew:   imps.WithLabelValues("too_new"),
		invalidCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_embedded_impression_calls_invalid_total",
			Help: "RecordImpressions calls refused because an impression was invalid (nothing of them written).",
		}),
		rowsRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_embedded_count_rows_read_total",
			Help: "Impression keys read by count lookups.",
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_embedded_impressions_swept_total",
			Help: "Impressions removed from disk by the count sweep, past retention.",
		}),
		sealed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_embedded_count_buckets_sealed_total",
			Help: "Count rollups (hours and days) written by the seal pass: buckets sealed, or sealed again after a late impression.",
		}),
		readSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rtgraph_embedded_count_read_seconds",
			Help:    "Duration of count lookups that succeeded.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2, 16),
		}),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{imps, m.invalidCalls, m.rowsRead, m.swept, m.sealed, m.readSeconds} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
