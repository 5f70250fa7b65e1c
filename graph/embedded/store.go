package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
)

// Deps are what the store is given rather than creates.
type Deps struct {
	// Logger receives the store's events and Pebble's own; nil discards.
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock for TTL expiry; nil means time.Now. Tests set it.
	Now func() time.Time
	// CommitHook, nil in production, is called with the representation
	// (pebble.Batch.Repr: header, then the operations) of every batch Apply
	// commits, just before committing it and with the writer lock held, so
	// calls come one at a time in commit order. The slice is valid only
	// during the call. Benchmarks set it to capture the store's exact writes
	// and replay them against a bare Pebble database.
	CommitHook func(repr []byte)
}

// Store is the Pebble-backed graph.Store.
//
// Concurrency. Two locks, always taken in this order:
//   - life (RWMutex) guards the database handle's lifetime: every call holds
//     it shared for its whole duration, Close holds it exclusively, so the
//     handle is never used after it is closed.
//   - wmu serialises every read-modify-write (Apply, the node-delete cleanup
//     and the expiry sweep). Invariant: while wmu is held, the stored
//     records and the index entries derived from them change only through
//     the holder, so a decision taken from a read (is this upsert newer?
//     which index entries does the old version have?) is still true when
//     its batch is applied. wmu is released once the batch is in the
//     memtable, before waiting for the fsync, so concurrent Apply calls share
//     WAL syncs.
//
// Readers take no lock besides life: a Pebble iterator reads a consistent
// snapshot, and each record and its index entries change in one batch.
type Store struct {
	cfg    Config
	schema *graph.Schema
	// typeNames interns the schema's node type names, so reads decoding a
	// key share one string per type.
	typeNames map[string]string
	db        *pebble.DB
	// release frees what db's options hold (the disk-health checker, the
	// cache reference) once db is closed.
	release io.Closer
	log     *slog.Logger
	now     func() time.Time
	m       *metrics

	life   sync.RWMutex
	closed bool

	wmu sync.Mutex
	// purges filters the purge checks of edge upserts (purges.go); wmu.
	purges *purgeFilter
	// commitHook is Deps.CommitHook; nil unless a benchmark sets it.
	commitHook func(repr []byte)

	stopOnce  sync.Once
	stopSweep chan struct{}
	sweepDone chan struct{}
}

var _ graph.Store = (*Store)(nil)

// Open opens (creating if needed) the store in cfg.Dir and starts the expiry
// sweep. Data written before a previous Close or crash is there again.
func Open(cfg Config, schema *graph.Schema, deps Deps) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if schema == nil {
		return nil, errors.New("embedded: open: nil schema")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("embedded: open: %w", err)
	}
	opts, release := PebbleOptions(cfg, logger)
	db, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		_ = release.Close()
		return nil, fmt.Errorf("embedded: open %s: %w", cfg.Dir, err)
	}
	s := &Store{
		cfg: cfg, schema: schema, typeNames: map[string]string{}, db: db, release: release, log: logger, now: now, m: m,
		stopSweep: make(chan struct{}), sweepDone: make(chan struct{}), commitHook: deps.CommitHook,
	}
	for _, name := range schema.NodeTypes() {
		s.typeNames[name] = name
	}
	if s.purges, err = loadPurgeFilter(db, 0); err != nil {
		_ = db.Close()
		_ = release.Close()
		return nil, fmt.Errorf("embedded: open %s: %w", cfg.Dir, err)
	}
	go s.sweepLoop()
	logger.Info("embedded store opened", "dir", cfg.Dir)
	return s, nil
}

// PebbleOptions returns the options Open opens cfg's database with: block
// cache of cfg.CacheBytes, memtables of cfg.MemTableBytes, bloom filters
// (10 bits per key) on every level, the newest format, and a file system
// that logs disk operations stalled for 5s; Pebble's log lines and stalled
// disks go to logger (nil discards). The returned closer releases the cache
// reference and stops the disk-health checker; call it once the database
// opened with the options is closed, or when opening it failed. Open uses
// it, and so do the benchmarks that open a bare Pebble database with the
// store's options (embeddedtest.OpenBare), so the two cannot drift apart.
func PebbleOptions(cfg Config, logger *slog.Logger) (*pebble.Options, io.Closer) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cache := pebble.NewCache(cfg.CacheBytes)
	// The disk-health wrapper is made here rather than by Pebble so that it
	// is closed when opening fails too (Pebble leaks its goroutine then),
	// and so that a stalled disk is logged as such.
	fsys, fsCloser := vfs.WithDiskHealthChecks(vfs.Default, 5*time.Second, nil, func(info vfs.DiskSlowInfo) {
		logger.Warn("embedded disk slow", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
	})
	opts := &pebble.Options{
		FS:           fsys,
		Cache:        cache,
		MemTableSize: uint64(cfg.MemTableBytes),
		Logger:       pebbleLogger{logger},
		// Point lookups of records and end nodes dominate writes; bloom
		// filters make the misses (new nodes and edges) cheap.
		FormatMajorVersion: pebble.FormatNewest,
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return opts, &optsRelease{cache: cache, fs: fsCloser}
}

// optsRelease releases what PebbleOptions allocated, once.
type optsRelease struct {
	once  sync.Once
	cache *pebble.Cache
	fs    io.Closer
}

func (r *optsRelease) Close() error {
	var err error
	r.once.Do(func() {
		err = r.fs.Close()
		r.cache.Unref()
	})
	return err
}

// Close stops the sweep and closes the database; it waits for calls in
// progress. Later calls, Close included, return graph.ErrClosed.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stopSweep) })
	<-s.sweepDone
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return graph.ErrClosed
	}
	s.closed = true
	err := s.db.Close()
	_ = s.release.Close()
	if err != nil {
		return fmt.Errorf("embedded: close: %w", err)
	}
	s.log.Info("embedded store closed", "dir", s.cfg.Dir)
	return nil
}

// enter takes life shared; the caller must call s.life.RUnlock when done.
func (s *Store) enter(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return &graph.RetryableError{Op: op, Err: err}
	}
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return graph.ErrClosed
	}
	return nil
}

// GetNodes reads the nodes among keys from one consistent snapshot.
func (s *Store) GetNodes(ctx context.Context, keys []graph.NodeKey) (map[graph.NodeKey]graph.Node, error) {
	return s.getNodes(ctx, keys, false)
}

// GetNodesRaw implements graph.RawNodeReader.
func (s *Store) GetNodesRaw(ctx context.Context, keys []graph.NodeKey) (map[graph.NodeKey]graph.Node, error) {
	return s.getNodes(ctx, keys, true)
}

func (s *Store) getNodes(ctx context.Context, keys []graph.NodeKey, raw bool) (map[graph.NodeKey]graph.Node, error) {
	if len(keys) > s.cfg.MaxGetNodes {
		return nil, fmt.Errorf("embedded: get nodes: %w: %d keys, at most %d", graph.ErrInvalidQuery, len(keys), s.cfg.MaxGetNodes)
	}
	if err := s.enter(ctx, "get nodes"); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	start := time.Now()
	defer func() { s.m.readSeconds.WithLabelValues("get_nodes").Observe(time.Since(start).Seconds()) }()

	type want struct {
		k   graph.NodeKey
		key []byte
	}
	ws := make([]want, 0, len(keys))
	size := 0
	for _, k := range keys {
		size += 1 + len(k.Type) + len(k.ID) + 4
	}
	// The keys in one arena, the property bytes of raw reads in another:
	// a few allocations per call, not several per node.
	arena := make([]byte, 0, size)
	for _, k := range keys {
		start := len(arena)
		arena = appendNode(append(arena, tNode), k)
		ws = append(ws, want{k, arena[start:len(arena):len(arena)]})
	}
	var props []byte
	// Seeking in key order lets the iterator move forward only.
	slices.SortFunc(ws, func(a, b want) int { return bytes.Compare(a.key, b.key) })
	// One snapshot for the nodes and their types' truncates.
	snap := s.db.NewSnapshot()
	defer snap.Close()
	tr := s.truncates(snap)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{tNode}, UpperBound: []byte{tNode + 1}})
	if err != nil {
		return nil, fmt.Errorf("embedded: get nodes: %w", err)
	}
	defer it.Close()
	out := make(map[graph.NodeKey]graph.Node, len(keys))
	for i, w := range ws {
		if i > 0 && bytes.Equal(w.key, ws[i-1].key) {
			continue
		}
		if !it.SeekGE(w.key) || !bytes.Equal(it.Key(), w.key) {
			continue
		}
		r, err := viewRecord(it.Value())
		if err != nil {
			return nil, fmt.Errorf("embedded: get node %s: %w", w.k, err)
		}
		if !r.visible() {
			continue
		}
		if live, err := tr.untruncated(w.k.Type, r); err != nil {
			return nil, fmt.Errorf("embedded: get node %s: %w", w.k, err)
		} else if !live {
			continue
		}
		// r.props aliases the iterator's buffer: copy it out. The arena is
		// sized for the rest of the call when it runs out, so earlier
		// nodes' bytes stay where they are.
		if cap(props)-len(props) < len(r.props) {
			props = make([]byte, 0, max(len(r.props), (len(ws)-i)*(len(r.props)+16)))
		}
		start := len(props)
		props = append(props, r.props...)
		r.props = props[start:len(props):len(props)]
		n := graph.Node{Key: w.k, EventTime: fromMicros(r.upAt), PropsJSON: r.props}
		if !raw {
			if n.Props, err = s.schema.DecodeNodeProps(w.k.Type, r.props); err != nil {
				return nil, fmt.Errorf("embedded: get node %s: %w", w.k, err)
			}
		}
		out[w.k] = n
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("embedded: get nodes: %w", err)
	}
	return out, nil
}

// scanPlan is where one adjacency query reads: a table, the key range of
// the node's edges of the type, and how to turn an entry into an edge.
type scanPlan struct {
	prefix     []byte // table, node, edge type
	lo, hi     []byte // bounds, narrowed by since/until for time tables
	timeTable  bool   // entries carry <inv> after the prefix
	filterTime bool   // since/until must be checked per entry (key tables)
}

func (s *Store) plan(q graph.AdjacencyQuery) scanPlan {
	var table byte
	switch {
	case q.Direction == graph.Out && q.Order == graph.OrderKey:
		table = tEdge
	case q.Direction == graph.Out:
		table = tOutTime
	case q.Order == graph.OrderKey:
		table = tIn
	default:
		table = tInTime
	}
	if table == tEdge {
		p := appendStr(appendNode([]byte{tEdge}, q.Node), q.EdgeType)
		return scanPlan{prefix: p, lo: p, hi: prefixEnd(p), filterTime: true}
	}
	p := adjPrefix(table, q.Node, q.EdgeType)
	pl := scanPlan{prefix: p, lo: p, hi: prefixEnd(p), timeTable: table == tOutTime || table == tInTime}
	if !pl.timeTable {
		pl.filterTime = true
		return pl
	}
	// Newest first: Until (exclusive) bounds the start, Since (inclusive)
	// the end. Event times are never before 1970 (graph.Schema.Check), so a
	// bound at or before it is either empty or no bound.
	if !q.Until.IsZero() {
		if ceilMicros(q.Until) <= 0 {
			pl.lo = pl.hi
			return pl
		}
		pl.lo = appendInv(slices.Clone(p), ceilMicros(q.Until)-1)
	}
	if !q.Since.IsZero() && ceilMicros(q.Since) > 0 {
		pl.hi = appendInv(slices.Clone(p), ceilMicros(q.Since)-1)
	}
	if bytes.Compare(pl.lo, pl.hi) > 0 {
		pl.lo = pl.hi
	}
	return pl
}

// ceilMicros rounds a query bound up to a whole microsecond. Stored times
// are whole microseconds, so for t stored and b a bound: t >= b exactly when
// t >= ceil(b), and t < b exactly when t < ceil(b).
func ceilMicros(b time.Time) int64 {
	us := b.UnixMicro()
	if b.Sub(time.UnixMicro(us)) > 0 {
		us++
	}
	return us
}

const cursorV1 = 1

// Cursor layout: version byte, graph.QueryFingerprint (8 bytes, big-endian),
// then the last scanned key with the plan's prefix removed. Resuming seeks
// just past that key, so a cursor stays valid whatever is written meanwhile.
func encodeCursor(fp uint64, suffix []byte) []byte {
	b := make([]byte, 0, 9+len(suffix))
	b = append(b, cursorV1)
	b = binary.BigEndian.AppendUint64(b, fp)
	return append(b, suffix...)
}

func decodeCursor(c []byte, fp uint64, pl scanPlan) ([]byte, error) {
	if len(c) < 9 || c[0] != cursorV1 {
		return nil, fmt.Errorf("%w: unknown version or too short", graph.ErrInvalidCursor)
	}
	if binary.BigEndian.Uint64(c[1:9]) != fp {
		return nil, fmt.Errorf("%w: cursor belongs to another query", graph.ErrInvalidCursor)
	}
	suffix := c[9:]
	rest := suffix
	if pl.timeTable {
		if len(rest) < 8 {
			return nil, fmt.Errorf("%w: malformed position", graph.ErrInvalidCursor)
		}
		rest = rest[8:]
	}
	if _, tail, err := readNode(rest); err != nil || len(tail) != 0 {
		return nil, fmt.Errorf("%w: malformed position", graph.ErrInvalidCursor)
	}
	return suffix, nil
}

// Adjacency reads one page from a single index: the out or in index, in key
// or newest-first order. Entries that are expired or, for key order,
// outside since/until are skipped; at most cfg.MaxScan entries are read.
func (s *Store) Adjacency(ctx context.Context, q graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	if _, err := s.schema.CheckQuery(q); err != nil {
		return graph.AdjacencyPage{}, fmt.Errorf("embedded: adjacency: %w", err)
	}
	if q.Limit > s.cfg.MaxPageLimit {
		return graph.AdjacencyPage{}, fmt.Errorf("embedded: adjacency: %w: limit %d above %d", graph.ErrInvalidQuery, q.Limit, s.cfg.MaxPageLimit)
	}
	pl := s.plan(q)
	fp := graph.QueryFingerprint(q)
	lo := pl.lo
	var after []byte
	if q.Cursor != nil {
		suffix, err := decodeCursor(q.Cursor, fp, pl)
		if err != nil {
			return graph.AdjacencyPage{}, fmt.Errorf("embedded: adjacency: %w", err)
		}
		after = append(slices.Clone(pl.prefix), suffix...)
		if bytes.Compare(after, lo) >= 0 {
			lo = after
		}
	}
	if err := s.enter(ctx, "adjacency"); err != nil {
		return graph.AdjacencyPage{}, err
	}
	defer s.life.RUnlock()
	start := time.Now()
	defer func() { s.m.readSeconds.WithLabelValues("adjacency").Observe(time.Since(start).Seconds()) }()

	// One snapshot for the scan and the end nodes' records it consults,
	// read through one iterator over the node table (cheaper than a point
	// Get per neighbour, which builds an iterator each time).
	snap := s.db.NewSnapshot()
	defer snap.Close()
	nodes, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{tNode}, UpperBound: []byte{tNode + 1}})
	if err != nil {
		return graph.AdjacencyPage{}, fmt.Errorf("embedded: adjacency: %w", err)
	}
	defer nodes.Close()
	tr := s.truncates(snap)
	if ok, err := s.present(nodes, tr, q.Node); err != nil || !ok {
		return graph.AdjacencyPage{}, err
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: pl.hi})
	if err != nil {
		return graph.AdjacencyPage{}, fmt.Errorf("embedded: adjacency: %w", err)
	}
	defer it.Close()
	now := micros(s.now())
	var since, until int64 = -1 << 63, 1<<63 - 1
	if !q.Since.IsZero() {
		since = ceilMicros(q.Since)
	}
	if !q.Until.IsZero() {
		until = ceilMicros(q.Until)
	}
	var page graph.AdjacencyPage
	// lastReturned and lastScanned are keys; the cursor is the former when
	// a further visible edge exists, the latter when the scan budget ran out.
	var lastReturned, lastScanned []byte
	// The page's far-end ids and property bytes are gathered in two arenas
	// and handed out as slices of one string and one byte slice once the
	// scan ends, so a page costs a few allocations, not several per edge.
	var ids, props []byte
	spans := make([]edgeSpans, 0, min(q.Limit, 1000))
	page.Edges = make([]graph.Edge, 0, min(q.Limit, 1000))
	nkey := []byte{tNode}
	scanned := 0
	for ok := it.First(); ok; ok = it.Next() {
		key := it.Key()
		if after != nil && bytes.Equal(key, after) {
			continue
		}
		if scanned == s.cfg.MaxScan {
			page.Next = encodeCursor(fp, bytes.Clone(lastScanned[len(pl.prefix):]))
			break
		}
		scanned++
		lastScanned = append(lastScanned[:0], key...)
		r, err := viewRecord(it.Value())
		if err != nil {
			return graph.AdjacencyPage{}, fmt.Errorf("embedded: adjacency: %w", err)
		}
		if !r.visible() || r.expired(now) || (pl.filterTime && (r.upAt < since || r.upAt >= until)) {
			continue
		}
		if len(page.Edges) == q.Limit {
			// One more visible edge exists: resume right after the last
			// one returned.
			page.Next = encodeCursor(fp, bytes.Clone(lastReturned[len(pl.prefix):]))
			break
		}
		rest := key[len(pl.prefix):]
		if pl.timeTable {
			rest = rest[8:]
		}
		// The far end's node key is 'n' followed by its encoding in the
		// index key: no decode is needed to look it up.
		nkey = append(nkey[:1], rest...)
		typ, id, idEsc, err := s.splitNode(rest)
		if err != nil {
			return graph.AdjacencyPage{}, fmt.Errorf("embedded: adjacency: %w", err)
		}
		if ok, err := s.presentKey(nodes, tr, nkey, typ); err != nil {
			return graph.AdjacencyPage{}, err
		} else if !ok {
			continue
		}
		sp := edgeSpans{idFrom: len(ids), propsFrom: len(props)}
		if idEsc {
			esc, _, err := readStr(id)
			if err != nil {
				return graph.AdjacencyPage{}, fmt.Errorf("embedded: adjacency: %w", err)
			}
			ids = append(ids, esc...)
		} else {
			ids = append(ids, id...)
		}
		sp.idTo = len(ids)
		props = append(props, r.props...)
		sp.propsTo = len(props)
		spans = append(spans, sp)
		e := graph.Edge{Key: graph.EdgeKey{Type: q.EdgeType, From: q.Node, To: graph.NodeKey{Type: typ}}, EventTime: fromMicros(r.upAt)}
		if r.expires != 0 {
			e.ExpiresAt = fromMicros(r.expires)
		}
		page.Edges = append(page.Edges, e)
		lastReturned = append(lastReturned[:0], key...)
	}
	if err := it.Error(); err != nil {
		return graph.AdjacencyPage{}, fmt.Errorf("embedded: adjacency: %w", err)
	}
	allIDs := string(ids)
	for i := range page.Edges {
		e, sp := &page.Edges[i], spans[i]
		e.Key.To.ID = allIDs[sp.idFrom:sp.idTo]
		e.PropsJSON = props[sp.propsFrom:sp.propsTo:sp.propsTo]
		if !q.RawProps {
			if e.Props, err = s.schema.DecodeEdgeProps(q.EdgeType, e.PropsJSON); err != nil {
				return graph.AdjacencyPage{}, fmt.Errorf("embedded: adjacency: %w", err)
			}
		}
		if q.Direction == graph.In {
			e.Key.From, e.Key.To = e.Key.To, q.Node
		}
	}
	return page, nil
}

// edgeSpans locates one edge's far-end id and property bytes in a page's
// arenas.
type edgeSpans struct{ idFrom, idTo, propsFrom, propsTo int }

// splitNode splits the encoded node key at the front of b into its type,
// interned as the schema's name when it is a declared node type, and the
// id's encoded bytes, which need unescaping only when esc is set.
func (s *Store) splitNode(b []byte) (typ string, id []byte, esc bool, err error) {
	tEnd, tEsc := strEnd(b)
	if tEnd < 0 {
		return "", nil, false, errBadKey
	}
	if tEsc {
		if typ, _, err = readStr(b); err != nil {
			return "", nil, false, err
		}
	} else if name, ok := s.typeNames[string(b[:tEnd])]; ok {
		typ = name
	} else {
		typ = string(b[:tEnd])
	}
	rest := b[tEnd+2:]
	iEnd, iEsc := strEnd(rest)
	if iEnd < 0 {
		return "", nil, false, errBadKey
	}
	if iEsc {
		return typ, rest[:iEnd+2], true, nil
	}
	return typ, rest[:iEnd], false, nil
}

// present reports whether node k lets its edges be seen (see package
// graph): it exists, or its type is implicit and it is not deleted
// (implicit types are never truncated).
func (s *Store) present(nodes *pebble.Iterator, tr *truncReader, k graph.NodeKey) (bool, error) {
	return s.presentKey(nodes, tr, nodeKey(k), k.Type)
}

// presentKey is present for the node whose node-table key is key and whose
// type is typ.
func (s *Store) presentKey(nodes *pebble.Iterator, tr *truncReader, key []byte, typ string) (bool, error) {
	var r record
	found := nodes.SeekGE(key) && bytes.Equal(nodes.Key(), key)
	if found {
		var err error
		if r, err = viewRecord(nodes.Value()); err != nil {
			return false, fmt.Errorf("embedded: adjacency: node %q: %w", key, err)
		}
		if r.visible() {
			live, err := tr.untruncated(typ, r)
			if err != nil {
				return false, fmt.Errorf("embedded: adjacency: node %q: %w", key, err)
			}
			if live {
				return true, nil
			}
		}
	} else if err := nodes.Error(); err != nil {
		return false, fmt.Errorf("embedded: adjacency: node %q: %w", key, err)
	}
	nt, ok := s.schema.NodeType(typ)
	return ok && nt.Implicit && !(found && r.hasDel), nil
}

// pebbleLogger sends Pebble's log lines to slog; Pebble's informational
// lines (flushes, compactions) go to debug.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble", "msg", fmt.Sprintf(format, args...))
}

// Fatalf is called by Pebble on unrecoverable corruption; it must not
// return, as Pebble's default logger exits.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("pebble fatal", "msg", msg)
	panic("embedded: pebble: " + msg)
}

// truncReader reads the truncate versions of node types from one reader (a
// snapshot, or the writer's batch), each type once.
type truncReader struct {
	r    pebble.Reader
	seen map[string]*ver // nil: the type was never truncated
}

func (s *Store) truncates(r pebble.Reader) *truncReader {
	return &truncReader{r: r}
}

// of returns the version of typ's newest truncate, or nil.
func (tr *truncReader) of(typ string) (*ver, error) {
	if v, ok := tr.seen[typ]; ok {
		return v, nil
	}
	var out *ver
	b, closer, err := tr.r.Get(truncKey(typ))
	switch {
	case err == nil:
		at, pos, derr := decodeVer(b)
		closer.Close()
		if derr != nil {
			return nil, fmt.Errorf("truncate of %q: %w", typ, derr)
		}
		out = &ver{at: at, pos: pos}
	case !isNotFound(err):
		return nil, err
	}
	if tr.seen == nil {
		tr.seen = make(map[string]*ver)
	}
	tr.seen[typ] = out
	return out, nil
}

// untruncated reports whether r, a node record of type typ with a visible
// upsert, is after its type's newest truncate (a truncate wins a tie).
func (tr *truncReader) untruncated(typ string, r record) (bool, error) {
	v, err := tr.of(typ)
	if err != nil || v == nil {
		return v == nil && err == nil, err
	}
	return graph.CompareVersions(r.upAt, r.upPos, v.at, v.pos) > 0, nil
}

// untruncated is truncReader.untruncated for one lookup through reader r.
func (s *Store) untruncated(r pebble.Reader, typ string, rec record) (bool, error) {
	return s.truncates(r).untruncated(typ, rec)
}

// listScanFactor bounds the node records one listing page steps over
// (deleted and truncated ones included) to this many times its limit, so a
// page of a type with many deleted nodes still ends promptly.
const listScanFactor = 10

// ListNodes lists the nodes of a type in key order (by id, bytes) from one
// snapshot, skipping deleted and truncated ones. The cursor is the last id
// stepped over.
func (s *Store) ListNodes(ctx context.Context, q graph.NodeListQuery) (graph.NodePage, error) {
	if _, ok := s.schema.NodeType(q.Type); !ok {
		return graph.NodePage{}, fmt.Errorf("embedded: list nodes: %w: unknown node type %q", graph.ErrInvalidQuery, q.Type)
	}
	if q.Limit < 1 {
		return graph.NodePage{}, fmt.Errorf("embedded: list nodes: %w: limit %d", graph.ErrInvalidQuery, q.Limit)
	}
	prefix := appendStr([]byte{tNode}, q.Type)
	lower := prefix
	if q.Cursor != nil {
		after, err := graph.DecodeListCursor(q.Type, q.Cursor)
		if err != nil {
			return graph.NodePage{}, err
		}
		// The key right after (type, after): its escaped id ends in 0x00
		// 0x01, and no id's key lies between it and it plus 0x00.
		lower = append(nodeKey(graph.NodeKey{Type: q.Type, ID: after}), 0)
	}
	if err := s.enter(ctx, "list nodes"); err != nil {
		return graph.NodePage{}, err
	}
	defer s.life.RUnlock()
	start := time.Now()
	defer func() { s.m.readSeconds.WithLabelValues("list_nodes").Observe(time.Since(start).Seconds()) }()

	snap := s.db.NewSnapshot()
	defer snap.Close()
	tr := s.truncates(snap)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return graph.NodePage{}, fmt.Errorf("embedded: list nodes: %w", err)
	}
	defer it.Close()
	var page graph.NodePage
	budget, last := q.Limit*listScanFactor, ""
	for ok := it.First(); ok; ok = it.Next() {
		k, _, err := readNode(it.Key()[1:])
		if err != nil {
			return graph.NodePage{}, fmt.Errorf("embedded: list nodes: key %x: %w", it.Key(), err)
		}
		if len(page.Nodes) == q.Limit || budget == 0 {
			// More follow: resume after the last key stepped over.
			page.Next = graph.EncodeListCursor(q.Type, last)
			break
		}
		budget--
		last = k.ID
		r, err := decodeRecord(it.Value())
		if err != nil {
			return graph.NodePage{}, fmt.Errorf("embedded: list node %s: %w", k, err)
		}
		if !r.visible() {
			continue
		}
		if live, err := tr.untruncated(k.Type, r); err != nil {
			return graph.NodePage{}, fmt.Errorf("embedded: list node %s: %w", k, err)
		} else if !live {
			continue
		}
		props, err := s.schema.DecodeNodeProps(k.Type, r.props)
		if err != nil {
			return graph.NodePage{}, fmt.Errorf("embedded: list node %s: %w", k, err)
		}
		page.Nodes = append(page.Nodes, graph.Node{Key: k, Props: props, EventTime: fromMicros(r.upAt)})
	}
	if err := it.Error(); err != nil {
		return graph.NodePage{}, fmt.Errorf("embedded: list nodes: %w", err)
	}
	return page, nil
}
