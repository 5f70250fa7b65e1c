package cassandra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
)

// Options carry a Store's collaborators. The zero value is usable.
type Options struct {
	// Registerer receives the Store's metrics. Nil keeps them in a private
	// registry (not exported); never the global default registry.
	Registerer prometheus.Registerer
	// Logger receives the Store's events. Nil discards them.
	Logger *slog.Logger
	// Now is the clock that decides TTL expiry on reads and which expired
	// writes to skip; nil means time.Now. Cassandra drops expiring rows at
	// their expires_at (rounded up to the second) by its own clock,
	// whatever this one says.
	Now func() time.Time
	// DayCacheSize bounds the cache of edge_days rows known to be written,
	// which spares rewriting one row per edge upsert. Default 65536.
	DayCacheSize int
}

// Sizes that bound one call's work.
const (
	// maxBatchStatements caps one single-partition batch; a larger group of
	// statements for one partition is sent as several batches.
	maxBatchStatements = 64
	// maxINValues caps the values of one IN restriction.
	maxINValues = 100
	// maxScanRows caps the rows one Adjacency call reads (a key-order page
	// with a narrow since/until over a huge node could otherwise read the
	// whole node). A call that reaches it returns the edges found so far and
	// a cursor after the last row read.
	maxScanRows = 100_000
	// maxRepairsInFlight bounds background deletes of dead index rows.
	maxRepairsInFlight = 16
)

// Store is the Cassandra graph.Store. It is safe for concurrent use. It
// does not own its session: close the Store, then the session.
type Store struct {
	session *gocql.Session
	schema  *graph.Schema
	readCL  gocql.Consistency
	writeCL gocql.Consistency
	limit   int // requests in flight, whole Store (the workers); goroutines per call
	jobs    chan job
	workers sync.WaitGroup
	retry   *retrier
	m       *metrics
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	maxScan int         // rows one Adjacency call may read; maxScanRows outside tests
	maxPage int         // edges one page may hold; maxPageLimit outside tests
	degree  degreeSizes // how CountEdges slices its reads; defaultDegreeSizes outside tests
	// capture, when set (benchmarks only), sees every plan Apply has sent,
	// so a baseline can replay the very same rows.
	capture func(context.Context, *plan)

	// days remembers edge_days rows written by this Store: key → the
	// expiry written (microseconds, 0 = never expires).
	days *lru.Cache[dayKey, int64]

	// mu is held shared by every call for its whole duration and
	// exclusively by Close, so Close waits for calls in flight and no call
	// starts after it.
	mu     sync.RWMutex
	closed bool
	// repairs tracks background repair deletes; Close waits for them.
	repairs   sync.WaitGroup
	repairSem chan struct{}
	// truncs is this Store's copy of type_truncates.
	truncs truncCache
}

var _ graph.Store = (*Store)(nil)

// New returns a Store writing to and reading from the keyspace of session
// (built by NewSession, migrated by Migrate). cfg supplies consistency
// levels, retry policy and concurrency bounds; schema checks every
// mutation and query.
func New(session *gocql.Session, cfg Config, schema *graph.Schema, opts Options) (*Store, error) {
	if session == nil {
		return nil, errors.New("cassandra: new store: nil session")
	}
	if schema == nil {
		return nil, errors.New("cassandra: new store: nil schema")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	size := opts.DayCacheSize
	if size <= 0 {
		size = 1 << 16
	}
	days, err := lru.New[dayKey, int64](size)
	if err != nil {
		return nil, fmt.Errorf("cassandra: new store: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{
		session:   session,
		schema:    schema,
		readCL:    gocql.ParseConsistency(cfg.Consistency.Read),
		writeCL:   gocql.ParseConsistency(cfg.Consistency.Write),
		limit:     cfg.MaxConcurrentRequests,
		retry:     &retrier{cfg: cfg.Retry, metrics: m},
		m:         m,
		log:       logger,
		now:       now,
		timeout:   cfg.Timeout,
		maxScan:   maxScanRows,
		maxPage:   maxPageLimit,
		degree:    defaultDegreeSizes,
		days:      days,
		repairSem: make(chan struct{}, maxRepairsInFlight),
	}
	s.startWorkers(cfg.MaxConcurrentRequests)
	return s, nil
}

// enter starts a call; false means the Store is closed. A true return must
// be paired with leave.
func (s *Store) enter() bool {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return false
	}
	return true
}

func (s *Store) leave() { s.mu.RUnlock() }

// Close waits for calls in flight and background repairs, then marks the
// Store closed and stops its workers. It does not close the session. A
// second Close returns graph.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return graph.ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.repairs.Wait()
	s.stopWorkers()
	return nil
}

// query prepares a statement (the driver prepares and caches it on first
// use) marked idempotent, at consistency cl.
func (s *Store) query(cl gocql.Consistency, cql string, args ...any) *gocql.Query {
	return s.session.Query(cql, args...).Consistency(cl).Idempotent(true)
}

// Write statements. Every one carries the mutation's event time as its
// timestamp, so Cassandra's last-write-wins is the graph's; props values
// carry the position and the live or deleted state first (layout.go), so
// equal timestamps are decided by position, then by the delete, then by
// the properties. No write is a tombstone.
const (
	// cqlUpsertNode writes a node's value, live (an upsert) or deleted (a
	// node delete).
	cqlUpsertNode  = `INSERT INTO nodes (type, id, props) VALUES (?, ?, ?) USING TIMESTAMP ?`
	cqlNodeDeleted = `INSERT INTO node_deletes (type, id, deleted_at, deleted_pos) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`
	cqlUpsertByKey = `INSERT INTO edges_by_key (node_type, node_id, edge_type, direction, bucket, neighbor, props, expires_at)` +
		` VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?`
	cqlUpsertByTime = `INSERT INTO edges_by_time (node_type, node_id, edge_type, direction, day, event_time, neighbor)` +
		` VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?`
	cqlUpsertDay = `INSERT INTO edge_days (node_type, node_id, edge_type, direction, day)` +
		` VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?`
	// cqlUpsertClaim writes a node's claim at a constrained end of an edge
	// type (claimValue): the greatest (event time, position, target) wins.
	cqlUpsertClaim = `INSERT INTO edge_claims (node_type, edge_type, direction, node_id, claim)` +
		` VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?`
	// An edge delete writes the deleted value over the properties only:
	// expires_at stays, and edges_by_time rows are left to reads (see
	// validate).
	cqlDeleteByKey = `UPDATE edges_by_key USING TIMESTAMP ? AND TTL ? SET props = ?` +
		` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ? AND neighbor = ?`
	cqlDeleteByTime = `DELETE FROM edges_by_time USING TIMESTAMP ?` +
		` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND day = ? AND event_time = ? AND neighbor = ?`
)

// Tables, for partition keys of the write plan.
const (
	tNodes uint8 = iota
	tNodeDeletes
	tByKey
	tByTime
	tDays
	tClaims
	tTruncates
)

// partKey identifies one partition of one table: statements with equal
// partKeys go into one single-partition batch.
type partKey struct {
	table    uint8
	typ, id  string
	edgeType string
	dir      int8
	bucket   int32 // bucket (edges_by_key) or day (edges_by_time)
	// now is the now_in_seconds of the group's request (0: none), so that
	// expiring cells get the local deletion time planned (see keyExpiry).
	now int64
}

// dayKey identifies one edge_days row.
type dayKey struct {
	typ, id, edgeType string
	dir               int8
	day               int32
}

type stmt struct {
	cql  string
	args []any
	now  int64 // now_in_seconds of the request sending it; 0 = none
}

type group struct {
	stmts []stmt
	// days are the edge_days rows this group writes, cached once it is
	// acknowledged.
	days []dayWrite
}

type dayWrite struct {
	key    dayKey
	expiry int64
}

// plan is the statements of one Apply, grouped by partition.
type plan struct {
	groups map[partKey]*group
	order  []partKey // deterministic execution order, for tests and logs
	// dayPlanned dedupes edge_days writes within the plan.
	dayPlanned map[dayKey]int64
	// purges are the plan's node purges, whose rows purgeRows removes once
	// the plan is written.
	purges []purge
	// truncates are the plan's truncates, noted in the Store's copy once
	// written.
	truncates []planTruncate
	// keeps reports a node upsert with kept properties, which the plan
	// cannot be sent with; checked holds the checked mutations.
	keeps   bool
	checked []graph.Mutation
}

// planTruncate is a truncate of a plan.
type planTruncate struct {
	typ string
	ver nodeDelete
}

// purge is a node purge of a plan: the node and the purge's event time in
// microseconds.
type purge struct {
	node graph.NodeKey
	ts   int64
}

func (p *plan) add(k partKey, cql string, args ...any) *group {
	g, ok := p.groups[k]
	if !ok {
		g = &group{}
		p.groups[k] = g
		p.order = append(p.order, k)
	}
	g.stmts = append(g.stmts, stmt{cql, args, k.now})
	return g
}

// Apply checks every mutation against the schema (none is written if one
// fails: the error wraps the *graph.SchemaError), then writes them all,
// grouped into one unlogged batch per partition, the batches in parallel
// (at most max_concurrent_requests at once; one request per partition and
// now_in_seconds, see keyExpiry). No write reads first: an edge delete
// writes a deleted value over the edge's properties in edges_by_key and
// leaves its edges_by_time rows to reads, which recognise and remove them.
// Forward and reverse rows of an edge are different partitions and are not
// written atomically: a failed Apply may leave one side written, and the
// caller's retry of the whole batch completes it. Edge upserts and deletes
// already expired (event time + TTL in the past) are not written at all.
func (s *Store) Apply(ctx context.Context, muts []graph.Mutation) error {
	if !s.enter() {
		return graph.ErrClosed
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return &graph.RetryableError{Op: "apply", Err: err}
	}
	p, counts, err := s.buildPlan(muts)
	if err != nil {
		return err
	}
	if p.keeps {
		// Kept properties are resolved against the stored nodes: checked
		// mutations, read, then planned again with full property sets.
		full, err := s.resolveKeeps(ctx, p.checked)
		if err != nil {
			return s.callErr(ctx, "apply", fmt.Errorf("kept properties: %w", err))
		}
		if p, _, err = s.buildPlan(full); err != nil {
			return err
		}
	}
	if err := s.execPlan(ctx, p); err != nil {
		return err
	}
	for _, t := range p.truncates {
		s.noteTruncate(t.typ, t.ver)
	}
	// Purges are written (node value, node_deletes) before their rows go,
	// so readers hide those rows from the start.
	for _, pg := range p.purges {
		if err := s.purgeRows(ctx, pg.node, pg.ts); err != nil {
			return s.callErr(ctx, "apply", fmt.Errorf("purge %s: %w", pg.node, err))
		}
	}
	if s.capture != nil {
		s.capture(ctx, p)
	}
	for op, n := range counts {
		s.m.muts.WithLabelValues(op.String()).Add(float64(n))
	}
	return nil
}

// buildPlan checks muts and turns them into statements grouped by
// partition. It sends nothing; it reads only the edge_days cache.
func (s *Store) buildPlan(muts []graph.Mutation) (*plan, map[graph.Op]int, error) {
	checked := make([]graph.Mutation, len(muts))
	for i, m := range muts {
		if err := s.schema.Check(&m); err != nil {
			return nil, nil, fmt.Errorf("cassandra: apply mutation %d: %w", i, err)
		}
		checked[i] = m
	}
	p := &plan{groups: make(map[partKey]*group, 4*len(checked)), dayPlanned: make(map[dayKey]int64), checked: checked}
	nowUS := s.now().UnixMicro()
	counts := map[graph.Op]int{}
	for i, m := range checked {
		counts[m.Op]++
		ts := m.EventTime.UnixMicro()
		switch m.Op {
		case graph.OpTruncateType:
			pos := m.Pos
			p.add(partKey{table: tTruncates, typ: m.Node.Type}, cqlTruncate, m.Node.Type, ts, pos[:], ts)
			p.truncates = append(p.truncates, planTruncate{typ: m.Node.Type, ver: nodeDelete{at: ts, pos: pos}})
		case graph.OpUpsertNode:
			if len(m.Keep) > 0 {
				p.keeps = true
			}
			enc, err := graph.EncodeProps(m.Props)
			if err != nil {
				return nil, nil, fmt.Errorf("cassandra: apply mutation %d: %w", i, err)
			}
			p.add(partKey{table: tNodes, typ: m.Node.Type, id: m.Node.ID},
				cqlUpsertNode, m.Node.Type, []byte(m.Node.ID), liveValue(m.Pos, enc), ts)
		case graph.OpDeleteNode:
			// The node's value becomes the deleted one; its edges stay, and
			// readers hide them while the node's value is deleted.
			p.add(partKey{table: tNodes, typ: m.Node.Type, id: m.Node.ID},
				cqlUpsertNode, m.Node.Type, []byte(m.Node.ID), deletedValue(m.Pos), ts)
		case graph.OpPurgeNode:
			// A delete, and node_deletes keeps the purge's version
			// (deleted_at, deleted_pos) for the edges it removes for good:
			// at equal times the greater position wins there too, as both
			// cells are written at the purge's time.
			pos := m.Pos
			idv, tsv, posv := any([]byte(m.Node.ID)), any(ts), any(pos[:])
			p.add(partKey{table: tNodes, typ: m.Node.Type, id: m.Node.ID},
				cqlUpsertNode, m.Node.Type, idv, deletedValue(m.Pos), tsv)
			p.add(partKey{table: tNodeDeletes, typ: m.Node.Type, id: m.Node.ID},
				cqlNodeDeleted, m.Node.Type, idv, tsv, posv, tsv)
			p.purges = append(p.purges, purge{node: m.Node, ts: ts})
		case graph.OpUpsertEdge:
			enc, err := graph.EncodeProps(m.Props)
			if err != nil {
				return nil, nil, fmt.Errorf("cassandra: apply mutation %d: %w", i, err)
			}
			s.planEdgeUpsert(p, m, liveValue(m.Pos, enc), nowUS)
		case graph.OpDeleteEdge:
			s.planEdgeDelete(p, m, nowUS)
		}
	}
	return p, counts, nil
}

// side is one direction's copy of an edge: the node whose partition holds
// it and the neighbour it points at.
type side struct {
	node, nbr graph.NodeKey
	dir       int8
}

func sides(k graph.EdgeKey, reverse bool) []side {
	out := []side{{node: k.From, nbr: k.To, dir: dirOut}}
	if reverse {
		out = append(out, side{node: k.To, nbr: k.From, dir: dirIn})
	}
	return out
}

// planEdgeUpsert adds an edge upsert's rows, in each direction kept: the
// edges_by_key row (props, expiry), the edges_by_time row and, unless this
// Store wrote it already, the edge_days row; and, at each end its type
// constrains (multiplicity), the node's claim. val is the stored value
// (liveValue).
//
// The claim is written whether or not the upsert is, or stays, the node's
// claim: Cassandra keeps the greatest, and reads show an edge of a
// constrained type only while the claim of each constrained end names the
// edge's other end. It expires with the edges_by_key cells of the upsert
// (the same keyExpiry), so it never goes before the edge it names, and
// every edge it can hide, being of the same type and not newer, has
// expired by then.
func (s *Store) planEdgeUpsert(p *plan, m graph.Mutation, val []byte, nowUS int64) {
	ts := m.EventTime.UnixMicro()
	var exp64 int64 // expires_at, microseconds; 0 = never
	if m.TTL > 0 {
		exp64 = ts + m.TTL.Microseconds()
		if exp64 <= nowUS {
			s.m.expired.Inc()
			return
		}
	}
	kx := keyExpiry(ts, m.TTL)
	// The edges_by_time row expires at the same second as the edges_by_key
	// cells (indexExpiry).
	var ix cellExpiry
	day := dayOf(ts)
	// The day row must outlive every edge of its day: the last of them
	// expires by the end of the day plus the TTL.
	var dayExpiry int64
	var dx cellExpiry
	if m.TTL > 0 {
		ix = indexExpiry(exp64, nowUS)
		dayExpiry = (int64(day)+1)*dayMicros + m.TTL.Microseconds()
		dx = indexExpiry(dayExpiry, nowUS)
	}
	et, _ := s.schema.EdgeType(m.Edge.Type)
	// Each value is boxed once for all the statements that bind it: the
	// write path allocates per statement otherwise, and its garbage is most
	// of the client's cost besides the driver's.
	tsv, kttlv, ittlv, dayv, etv, valv := any(ts), any(kx.ttl), any(ix.ttl), any(day), any(m.Edge.Type), any(val)
	for _, sd := range sides(m.Edge, et.Reverse) {
		nb := neighborKey(sd.nbr)
		b := bucketOf(nb)
		typv, idv, dirv, nbv := any(sd.node.Type), any([]byte(sd.node.ID)), any(sd.dir), any(nb)
		p.add(partKey{table: tByKey, typ: sd.node.Type, id: sd.node.ID, edgeType: m.Edge.Type, dir: sd.dir, bucket: int32(b), now: kx.now},
			cqlUpsertByKey, typv, idv, etv, dirv, b, nbv, valv, exp64, tsv, kttlv)
		p.add(partKey{table: tByTime, typ: sd.node.Type, id: sd.node.ID, edgeType: m.Edge.Type, dir: sd.dir, bucket: day, now: ix.now},
			cqlUpsertByTime, typv, idv, etv, dirv, dayv, tsv, nbv, tsv, ittlv)
		dk := dayKey{typ: sd.node.Type, id: sd.node.ID, edgeType: m.Edge.Type, dir: sd.dir, day: day}
		if covered(p.dayPlanned, dk, dayExpiry) || s.dayCached(dk, dayExpiry) {
			continue
		}
		p.dayPlanned[dk] = dayExpiry
		g := p.add(partKey{table: tDays, typ: sd.node.Type, id: sd.node.ID, edgeType: m.Edge.Type, dir: sd.dir, now: dx.now},
			cqlUpsertDay, typv, idv, etv, dirv, dayv, tsv, dx.ttl)
		g.days = append(g.days, dayWrite{key: dk, expiry: dayExpiry})
	}
	for _, c := range claimsOf(m.Edge, et) {
		p.add(partKey{table: tClaims, typ: c.node.Type, id: c.node.ID, edgeType: m.Edge.Type, dir: c.dir, now: kx.now},
			cqlUpsertClaim, c.node.Type, etv, c.dir, []byte(c.node.ID), claimValue(m.Pos, neighborKey(c.nbr)), tsv, kttlv)
	}
}

// claimsOf is the ends of edge k that its type constrains, as sides: the
// node holding the claim, its direction, and the claimed neighbour.
func claimsOf(k graph.EdgeKey, et *graph.EdgeType) []side {
	var out []side
	if et.Constrains(graph.Out) {
		out = append(out, side{node: k.From, nbr: k.To, dir: dirOut})
	}
	if et.Constrains(graph.In) {
		out = append(out, side{node: k.To, nbr: k.From, dir: dirIn})
	}
	return out
}

// planEdgeDelete adds an edge delete's rows: the deleted value over the
// edges_by_key properties, in each direction kept. In edge types with a TTL
// the value expires like an upsert of the same event time would (the same
// keyExpiry, so that the two compare by value), which is also when every
// upsert it can hide has expired: at or before the delete's time plus the
// TTL. A delete already past that is not written, as nothing it could hide
// is visible. In types without TTL the deleted value stays for good, as
// node_deletes rows do.
func (s *Store) planEdgeDelete(p *plan, m graph.Mutation, nowUS int64) {
	ts := m.EventTime.UnixMicro()
	if m.TTL > 0 && ts+m.TTL.Microseconds() <= nowUS {
		s.m.expired.Inc()
		return
	}
	kx := keyExpiry(ts, m.TTL)
	et, _ := s.schema.EdgeType(m.Edge.Type) // Check has found it
	tsv, ttlv, valv, etv := any(ts), any(kx.ttl), any(deletedValue(m.Pos)), any(m.Edge.Type)
	for _, sd := range sides(m.Edge, et.Reverse) {
		nb := neighborKey(sd.nbr)
		b := bucketOf(nb)
		p.add(partKey{table: tByKey, typ: sd.node.Type, id: sd.node.ID, edgeType: m.Edge.Type, dir: sd.dir, bucket: int32(b), now: kx.now},
			cqlDeleteByKey, tsv, ttlv, valv, sd.node.Type, []byte(sd.node.ID), etv, sd.dir, b, nb)
	}
}

// cellExpiry is how a statement's cells expire in Cassandra: the TTL it
// binds (seconds; 0 = never) and the now_in_seconds its request carries
// (0 = none, the coordinator's clock). Cassandra sets an expiring cell's
// local deletion time to now + TTL.
type cellExpiry struct {
	ttl int
	now int64
}

// keyExpiry is the expiry of the edges_by_key cells written at event time
// ts (microseconds) for an edge type with TTL ttl (0 = none): the same for
// every write of that event time, whenever it is applied and whatever the
// clocks say.
//
// It has to be. At equal timestamps Cassandra 5.0 (Cells.resolveRegular)
// looks at expiry before values: an expiring cell (or a tombstone) beats
// one that never expires, then the later local deletion time wins, then the
// smaller TTL, and only then the greater value. With the TTL of a write
// computed as its remaining lifetime, two upserts of one event time applied
// a second apart would be decided by when they were applied, not by
// position. So the TTL is the type's (whole seconds, rounded up) and the
// request's now_in_seconds is the expiry rounded up to a second, minus that
// TTL: both are functions of ts alone, and Cassandra drops the cell at
// expires_at rounded up to the second, by its own clock.
//
// A type whose TTL is beyond Cassandra's ceiling is written without TTL at
// all (reads alone enforce expires_at), so its cells compare by value too;
// so are event times whose expiry the protocol cannot carry (after 2106).
// A cluster in storage_compatibility_mode CASSANDRA_4 (5.0's default) caps
// local deletion times at 2038-01-19: expiries after that are cut to it,
// alike for every write of one event time (so still decided by value), and
// such rows go before their expires_at (reads still hide them after it).
func keyExpiry(ts int64, ttl time.Duration) cellExpiry {
	if ttl <= 0 {
		return cellExpiry{}
	}
	ttlSec := ceilDiv(ttl.Microseconds(), 1_000_000)
	if ttlSec > maxCassandraTTL {
		return cellExpiry{}
	}
	now := ceilDiv(ts+ttl.Microseconds(), 1_000_000) - ttlSec
	if now <= 0 || now+ttlSec > maxNowInSeconds {
		return cellExpiry{}
	}
	return cellExpiry{ttl: int(ttlSec), now: now}
}

// indexExpiry is the expiry of an index row (edges_by_time, edge_days) that
// must live until expUS: the remaining lifetime from the plan's clock,
// rounded so that the row's local deletion time is expUS rounded up to the
// second, like the edges_by_key cells of keyExpiry. Index rows have no value
// to compare, so only that time matters. Past Cassandra's ceiling the row
// is written without TTL and reads alone enforce the expiry.
func indexExpiry(expUS, nowUS int64) cellExpiry {
	now := nowUS / 1_000_000
	ttl := ceilDiv(expUS, 1_000_000) - now
	if ttl > maxCassandraTTL || now <= 0 || now+ttl > maxNowInSeconds {
		return cellExpiry{}
	}
	return cellExpiry{ttl: int(max(ttl, 1)), now: now}
}

// ttlSeconds rounds a remaining lifetime up to whole seconds, so Cassandra
// never drops a row before its expiry; past Cassandra's ceiling it returns
// 0 (no TTL) and reads alone enforce the expiry.
func ttlSeconds(remainingUS int64) int {
	sec := ceilDiv(remainingUS, 1_000_000)
	if sec > maxCassandraTTL {
		return 0
	}
	return int(max(sec, 1))
}

// ceilDiv is a/b rounded up, for a >= 0 and b > 0.
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// covered reports whether an edge_days row with expiry want (0 = never) is
// already planned with an expiry at least as late.
func covered(m map[dayKey]int64, k dayKey, want int64) bool {
	have, ok := m[k]
	return ok && expiryCovers(have, want)
}

func expiryCovers(have, want int64) bool {
	if have == 0 {
		return true
	}
	return want != 0 && have >= want
}

func (s *Store) dayCached(k dayKey, want int64) bool {
	have, ok := s.days.Get(k)
	return ok && expiryCovers(have, want)
}

// execPlan sends every group, one statement alone, several as unlogged
// single-partition batches, all on the workers.
func (s *Store) execPlan(ctx context.Context, p *plan) error {
	tasks := make([]task, 0, len(p.order))
	for _, k := range p.order {
		grp := p.groups[k]
		for start := 0; start < len(grp.stmts); start += maxBatchStatements {
			chunk := grp.stmts[start:min(start+maxBatchStatements, len(grp.stmts))]
			tasks = append(tasks, task{op: opWrite, f: func(ctx context.Context) error { return s.send(ctx, chunk) }})
		}
	}
	if err := s.runAll(ctx, tasks); err != nil {
		return s.callErr(ctx, "apply", err)
	}
	for _, k := range p.order {
		for _, d := range p.groups[k].days {
			s.days.Add(d.key, d.expiry)
		}
	}
	return nil
}

func (s *Store) send(ctx context.Context, stmts []stmt) error {
	// Statements of one group share their now_in_seconds (it is part of
	// the partKey).
	now := stmts[0].now
	if len(stmts) == 1 {
		q := s.query(s.writeCL, stmts[0].cql, stmts[0].args...)
		if now != 0 {
			q = q.WithNowInSeconds(int(now))
		}
		return q.ExecContext(ctx)
	}
	b := s.session.Batch(gocql.UnloggedBatch).Consistency(s.writeCL)
	if now != 0 {
		b = b.WithNowInSeconds(int(now))
	}
	for _, st := range stmts {
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.cql, Args: st.args, Idempotent: true})
	}
	return b.ExecContext(ctx)
}

// callErr shapes the error of a public call: a cancelled caller context is
// retryable whatever the request saw; retryable and permanent errors from
// the requests pass through.
func (s *Store) callErr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && !graph.IsRetryable(err) {
		return &graph.RetryableError{Op: op, Err: ctx.Err()}
	}
	return err
}
