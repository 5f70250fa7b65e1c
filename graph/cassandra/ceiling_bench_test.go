package cassandra

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"hash/fnv"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"golang.org/x/sync/errgroup"

	"github.com/rtgraph/rtgraph/graph"
)

// rawNodeReader is the raw ceiling of a node read: the least a client
// written straight against the driver does to answer "which of these nodes
// exist, with what properties". One prepared single-partition SELECT per
// key (the driver prepares it once and routes it to a replica by token),
// all keys in flight at once (up to 256), the stored value's header checked
// for the deleted state and the property bytes copied into one arena.
// It is written from the table layout (schemas/cql, the value header of
// layout.go: a format byte, the position, a state byte), not with the
// Store's code.
type rawNodeReader struct {
	session *gocql.Session
	cl      gocql.Consistency
}

const (
	rawValueV1     = 0x80
	rawStateLive   = 0x01
	rawValueHeader = 1 + graph.PosLen + 1
)

// read returns the live nodes among keys: key → property bytes.
func (r rawNodeReader) read(ctx context.Context, keys []graph.NodeKey) (map[graph.NodeKey][]byte, error) {
	type res struct {
		props []byte
		err   error
	}
	out := make([]res, len(keys))
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for i, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var b []byte
			var wt int64
			err := r.session.Query(`SELECT props, WRITETIME(props) FROM nodes WHERE type = ? AND id = ?`, k.Type, []byte(k.ID)).
				Consistency(r.cl).Idempotent(true).ScanContext(ctx, &b, &wt)
			if err == gocql.ErrNotFound {
				err = nil
			}
			out[i] = res{props: b, err: err}
		})
	}
	wg.Wait()
	size := 0
	for _, o := range out {
		if o.err != nil {
			return nil, o.err
		}
		size += len(o.props)
	}
	arena := make([]byte, 0, size)
	nodes := make(map[graph.NodeKey][]byte, len(keys))
	for i, o := range out {
		b := o.props
		switch {
		case b == nil:
			continue
		case b[0] == '{': // the format before positions: the JSON alone
		case len(b) >= rawValueHeader && b[0] == rawValueV1:
			if b[rawValueHeader-1] != rawStateLive {
				continue
			}
			b = b[rawValueHeader:]
		default:
			return nil, fmt.Errorf("node %s: stored value of %d bytes in no known format", keys[i], len(b))
		}
		start := len(arena)
		arena = append(arena, b...)
		nodes[keys[i]] = arena[start:len(arena):len(arena)]
	}
	return nodes, nil
}

// readSide is one side of an alternated read benchmark: its latencies and
// its process CPU time.
type readSide struct {
	lat []time.Duration
	cpu time.Duration
}

// alternateReads runs rtgraph's read and the raw ceiling's b.N times each,
// one call at a time, in rounds of 20 that alternate which side goes
// first, each round after a garbage collection, and reports both sides'
// p50/p99, CPU per call, and the ceiling's p50 and CPU over rtgraph's.
func alternateReads(b *testing.B, rt, ceil func() error) {
	for range 20 { // warm up both
		if err := rt(); err != nil {
			b.Fatal(err)
		}
		if err := ceil(); err != nil {
			b.Fatal(err)
		}
	}
	var sides [2]readSide
	run := func(s *readSide, f func() error, n int) {
		runtime.GC()
		u0 := readUsage(b)
		for range n {
			t0 := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			s.lat = append(s.lat, time.Since(t0))
		}
		s.cpu += readUsage(b).cpu - u0.cpu
	}
	b.ResetTimer()
	for done, r := 0, 0; done < b.N; r++ {
		n := min(20, b.N-done)
		if r%2 == 0 {
			run(&sides[0], rt, n)
			run(&sides[1], ceil, n)
		} else {
			run(&sides[1], ceil, n)
			run(&sides[0], rt, n)
		}
		done += n
	}
	b.StopTimer()
	cpuPer := func(s readSide) float64 { return s.cpu.Seconds() * 1e6 / float64(len(s.lat)) }
	b.ReportMetric(ms(percentile(sides[0].lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(sides[0].lat, 0.99)), "p99-ms")
	b.ReportMetric(cpuPer(sides[0]), "cpu-us/call")
	b.ReportMetric(ms(percentile(sides[1].lat, 0.50)), "ceil-p50-ms")
	b.ReportMetric(ms(percentile(sides[1].lat, 0.99)), "ceil-p99-ms")
	b.ReportMetric(cpuPer(sides[1]), "ceil-cpu-us/call")
	b.ReportMetric(float64(percentile(sides[1].lat, 0.50))/float64(percentile(sides[0].lat, 0.50)), "x-ceiling-p50")
	b.ReportMetric(cpuPer(sides[1])/cpuPer(sides[0]), "x-ceiling-cpu")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d calls per side: rtgraph p50 %s p99 %s, %.0f µs CPU per call; raw ceiling p50 %s p99 %s, %.0f µs CPU per call; ceiling ÷ rtgraph: p50 %.2f, CPU %.2f",
		len(sides[0].lat), percentile(sides[0].lat, 0.5).Round(time.Microsecond), percentile(sides[0].lat, 0.99).Round(time.Microsecond), cpuPer(sides[0]),
		percentile(sides[1].lat, 0.5).Round(time.Microsecond), percentile(sides[1].lat, 0.99).Round(time.Microsecond), cpuPer(sides[1]),
		float64(percentile(sides[1].lat, 0.50))/float64(percentile(sides[0].lat, 0.50)), cpuPer(sides[1])/cpuPer(sides[0]))
}

// sameNodeBytes checks that rtgraph's raw node read and the ceiling's
// return the same nodes with the same property bytes.
func sameNodeBytes(got map[graph.NodeKey]graph.Node, raw map[graph.NodeKey][]byte) error {
	if len(got) != len(raw) {
		return fmt.Errorf("rtgraph read %d nodes, the raw ceiling %d", len(got), len(raw))
	}
	for k, n := range got {
		if !bytes.Equal(n.PropsJSON, raw[k]) {
			return fmt.Errorf("node %s: rtgraph's bytes %q, the raw ceiling's %q", k, n.PropsJSON, raw[k])
		}
	}
	return nil
}

// rawKeyPage is the raw ceiling of an adjacency page in key order: the
// least a client written straight against the driver does to return the
// first limit visible edges of a node, of one type and direction, in
// neighbour order, with their property bytes. Written from the table
// layout (schemas/cql; layout.go's value header and neighbour key, and its
// 8 edges_by_key buckets per node), not with the Store's code:
//   - in parallel: the node's value and its purge row, and the first rows
//     of each of the 8 buckets (prepared, token-aware, LIMIT per bucket);
//   - the buckets merged in neighbour order, refilled as they run dry; a
//     row is a candidate if its value is live, not expired and not older
//     than the node's purge;
//   - the candidates' neighbours checked with IN reads of 100 ids (node
//     value present and live, no purge at or after the edge), all in
//     parallel; more rows are read while fewer than limit pass;
//   - the page: neighbour keys and property bytes copied into one arena.
//
// It handles what the benchmark's graph holds: no truncates, no implicit
// node types, no claims (its edge type is simple).
type rawKeyPage struct {
	session *gocql.Session
	cl      gocql.Consistency
	now     func() time.Time
}

const rawKeyBuckets = 8

// rawEdge is one edge of a raw page: its neighbour key and property bytes.
type rawEdge struct{ nbr, props []byte }

type rawKeyRow struct {
	nbr, val []byte
	wt, exp  int64
}

// rawVersion is (event time, position) of a value or a purge.
type rawVersion struct {
	at  int64
	pos []byte
}

// atOrAfter reports whether v is at or after w.
func (v rawVersion) atOrAfter(w rawVersion) bool {
	if v.at != w.at {
		return v.at > w.at
	}
	return bytes.Compare(v.pos, w.pos) >= 0
}

// rawValuePos is the position in a stored value (zero for the format
// before positions, the JSON alone).
func rawValuePos(b []byte) []byte {
	if len(b) >= rawValueHeader && b[0] == rawValueV1 {
		return b[1 : 1+graph.PosLen]
	}
	return make([]byte, graph.PosLen)
}

// rawLive reports whether a stored value is a live upsert, and its
// property bytes.
func rawLive(b []byte) ([]byte, bool) {
	switch {
	case len(b) > 0 && b[0] == '{':
		return b, true
	case len(b) >= rawValueHeader && b[0] == rawValueV1 && b[rawValueHeader-1] == rawStateLive:
		return b[rawValueHeader:], true
	}
	return nil, false
}

func (r rawKeyPage) read(ctx context.Context, node graph.NodeKey, edgeType string, dir int8, limit int) ([]rawEdge, error) {
	id := []byte(node.ID)
	now := r.now().UnixMicro()
	type stream struct {
		rows  []rawKeyRow
		pos   int
		after []byte
		done  bool
	}
	streams := make([]*stream, rawKeyBuckets)
	for i := range streams {
		streams[i] = &stream{after: []byte{}}
	}
	per := max(8, ((limit+1)*5/4+rawKeyBuckets-1)/rawKeyBuckets+4)
	fetch := func(ctx context.Context, bucket int, st *stream) error {
		iter := r.session.Query(`SELECT neighbor, props, WRITETIME(props), expires_at FROM edges_by_key`+
			` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ? AND neighbor > ? LIMIT ?`,
			node.Type, id, edgeType, dir, int8(bucket), st.after, per).Consistency(r.cl).Idempotent(true).IterContext(ctx)
		rows := make([]rawKeyRow, 0, per)
		for {
			var kr rawKeyRow
			if !iter.Scan(&kr.nbr, &kr.val, &kr.wt, &kr.exp) {
				break
			}
			rows = append(rows, kr)
		}
		if err := iter.Close(); err != nil {
			return err
		}
		st.rows, st.pos, st.done = rows, 0, len(rows) < per
		if len(rows) > 0 {
			st.after = rows[len(rows)-1].nbr
		}
		return nil
	}
	// The node's own value and purge, and the buckets' first rows.
	var o rawOwn
	g, gctx := errgroup.WithContext(ctx)
	r.readOwn(gctx, g, node, &o)
	for i, st := range streams {
		g.Go(func() error { return fetch(gctx, i, st) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if _, ok := rawLive(o.val); !ok {
		return nil, nil
	}
	own := o.purge
	next := func() (rawKeyRow, bool, error) {
		g, gctx := errgroup.WithContext(ctx)
		for i, st := range streams {
			if st.pos == len(st.rows) && !st.done {
				g.Go(func() error { return fetch(gctx, i, st) })
			}
		}
		if err := g.Wait(); err != nil {
			return rawKeyRow{}, false, err
		}
		var best *stream
		for _, st := range streams {
			if st.pos < len(st.rows) && (best == nil || bytes.Compare(st.rows[st.pos].nbr, best.rows[best.pos].nbr) < 0) {
				best = st
			}
		}
		if best == nil {
			return rawKeyRow{}, false, nil
		}
		best.pos++
		return best.rows[best.pos-1], true, nil
	}
	var kept []rawKeyRow
	for exhausted := false; len(kept) < limit && !exhausted; {
		var cands []rawKeyRow
		for len(cands) < limit+1-len(kept) {
			row, ok, err := next()
			if err != nil {
				return nil, err
			}
			if !ok {
				exhausted = true
				break
			}
			if _, live := rawLive(row.val); !live || (row.exp != 0 && row.exp <= now) {
				continue
			}
			if own != nil && own.atOrAfter(rawVersion{at: row.wt, pos: rawValuePos(row.val)}) {
				continue
			}
			cands = append(cands, row)
		}
		nbrs := make([][]byte, len(cands))
		for i, row := range cands {
			nbrs[i] = row.nbr
		}
		live, purged, err := r.neighbourFacts(ctx, nbrs)
		if err != nil {
			return nil, err
		}
		for _, row := range cands {
			if rawAllowed(live, purged, row.nbr, rawVersion{at: row.wt, pos: rawValuePos(row.val)}) {
				kept = append(kept, row)
			}
		}
	}
	return rawPageOf(kept[:min(len(kept), limit)]), nil
}

// neighbourFacts reads, for the neighbours nbrs, whether each one's node
// value is live and the newest purge of those ever purged: one IN read of
// 100 ids per table and node type, all in flight.
func (r rawKeyPage) neighbourFacts(ctx context.Context, nbrs [][]byte) (map[string]bool, map[string]rawVersion, error) {
	byType := map[string][][]byte{}
	for _, nb := range nbrs {
		i := bytes.IndexByte(nb, 0)
		if i <= 0 {
			return nil, nil, fmt.Errorf("neighbour key %q", nb)
		}
		byType[string(nb[:i])] = append(byType[string(nb[:i])], nb[i+1:])
	}
	var mu sync.Mutex
	live := map[string]bool{}
	purged := map[string]rawVersion{}
	key := func(typ string, id []byte) string { return typ + "\x00" + string(id) }
	g, gctx := errgroup.WithContext(ctx)
	for typ, ids := range byType {
		for start := 0; start < len(ids); start += 100 {
			chunk := ids[start:min(start+100, len(ids))]
			g.Go(func() error {
				iter := r.session.Query(`SELECT id, props FROM nodes WHERE type = ? AND id IN ?`, typ, chunk).
					Consistency(r.cl).Idempotent(true).IterContext(gctx)
				for {
					var id, b []byte
					if !iter.Scan(&id, &b) {
						break
					}
					_, ok := rawLive(b)
					mu.Lock()
					live[key(typ, id)] = ok
					mu.Unlock()
				}
				return iter.Close()
			})
			g.Go(func() error {
				iter := r.session.Query(`SELECT id, deleted_at, deleted_pos, WRITETIME(deleted_pos) FROM node_deletes WHERE type = ? AND id IN ?`, typ, chunk).
					Consistency(r.cl).Idempotent(true).IterContext(gctx)
				for {
					var id, pos []byte
					var at, wt int64
					if !iter.Scan(&id, &at, &pos, &wt) {
						break
					}
					if len(pos) != graph.PosLen || wt != at {
						pos = make([]byte, graph.PosLen)
					}
					mu.Lock()
					purged[key(typ, id)] = rawVersion{at: at, pos: pos}
					mu.Unlock()
				}
				return iter.Close()
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return live, purged, nil
}

// rawAllowed reports whether neighbour nbr lets its edge of version v be
// seen: its node value is live and it has no purge at or after v.
func rawAllowed(live map[string]bool, purged map[string]rawVersion, nbr []byte, v rawVersion) bool {
	p, isPurged := purged[string(nbr)]
	return live[string(nbr)] && !(isPurged && p.atOrAfter(v))
}

// samePage checks that rtgraph's page and the raw ceiling's hold the same
// edges, in the same order, with the same property bytes.
func samePage(page graph.AdjacencyPage, raw []rawEdge) error {
	if len(page.Edges) != len(raw) {
		return fmt.Errorf("rtgraph's page has %d edges, the raw ceiling's %d", len(page.Edges), len(raw))
	}
	for i, e := range page.Edges {
		if string(raw[i].nbr) != e.Key.To.Type+"\x00"+e.Key.To.ID || !bytes.Equal(e.PropsJSON, raw[i].props) {
			return fmt.Errorf("edge %d: rtgraph's %s %q, the raw ceiling's %q %q", i, e.Key, e.PropsJSON, raw[i].nbr, raw[i].props)
		}
	}
	return nil
}

// rawLatestPage is the raw ceiling of an adjacency page newest first, from
// the table layout, not the Store's code: the node's value and purge row
// and its day directory (edge_days) in parallel; then, day by day newest
// first, edges_by_time rows (event time descending) in slices; each
// slice's rows confirmed by the edge's edges_by_key row (one IN read of the
// slice's neighbours per bucket, FNV-1a of the neighbour key modulo 8)
// holding a live, unexpired value written at the row's event time, newer
// than the node's purge, together with the neighbour checks of rawKeyPage
// (all of a slice's reads in parallel); until limit edges pass.
type rawLatestPage struct{ rawKeyPage }

func (r rawLatestPage) read(ctx context.Context, node graph.NodeKey, edgeType string, dir int8, limit int) ([]rawEdge, error) {
	id := []byte(node.ID)
	now := r.now().UnixMicro()
	q := func(cql string, args ...any) *gocql.Query {
		return r.session.Query(cql, args...).Consistency(r.cl).Idempotent(true)
	}
	var o rawOwn
	var days []int32
	g, gctx := errgroup.WithContext(ctx)
	r.readOwn(gctx, g, node, &o)
	g.Go(func() error {
		iter := q(`SELECT day FROM edge_days WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ?`,
			node.Type, id, edgeType, dir).IterContext(gctx)
		var d int32
		for iter.Scan(&d) {
			days = append(days, d)
		}
		return iter.Close()
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if _, ok := rawLive(o.val); !ok {
		return nil, nil
	}
	own := o.purge
	type timeRow struct {
		e   int64
		nbr []byte
	}
	var kept []rawKeyRow
	slice := limit + 8
	for _, d := range days {
		// upper bounds the next slice: rows before (e, nbr) in the day's
		// order (e descending, then neighbour ascending).
		var afterE int64
		var afterNbr []byte
		for len(kept) < limit {
			var rows []timeRow
			scan := func(cql string, args ...any) error {
				iter := q(cql, args...).IterContext(ctx)
				for {
					var tr timeRow
					if !iter.Scan(&tr.e, &tr.nbr) {
						break
					}
					rows = append(rows, tr)
				}
				return iter.Close()
			}
			if afterNbr == nil {
				if err := scan(`SELECT event_time, neighbor FROM edges_by_time WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND day = ? LIMIT ?`,
					node.Type, id, edgeType, dir, d, slice); err != nil {
					return nil, err
				}
			} else {
				if err := scan(`SELECT event_time, neighbor FROM edges_by_time WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND day = ? AND event_time = ? AND neighbor > ? LIMIT ?`,
					node.Type, id, edgeType, dir, d, afterE, afterNbr, slice); err != nil {
					return nil, err
				}
				if n := slice - len(rows); n > 0 {
					if err := scan(`SELECT event_time, neighbor FROM edges_by_time WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND day = ? AND event_time < ? LIMIT ?`,
						node.Type, id, edgeType, dir, d, afterE, n); err != nil {
						return nil, err
					}
				}
			}
			if len(rows) == 0 {
				break
			}
			afterE, afterNbr = rows[len(rows)-1].e, rows[len(rows)-1].nbr
			// The edges' key rows, per bucket, and the neighbour checks.
			var byBucket [rawKeyBuckets][][]byte
			for _, tr := range rows {
				h := fnv.New32a()
				h.Write(tr.nbr)
				b := h.Sum32() % rawKeyBuckets
				byBucket[b] = append(byBucket[b], tr.nbr)
			}
			var mu sync.Mutex
			keyRows := map[string]rawKeyRow{}
			g, gctx := errgroup.WithContext(ctx)
			for b, list := range byBucket {
				if len(list) == 0 {
					continue
				}
				for start := 0; start < len(list); start += 100 {
					chunk := list[start:min(start+100, len(list))]
					g.Go(func() error {
						iter := q(`SELECT neighbor, props, WRITETIME(props), expires_at FROM edges_by_key`+
							` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ? AND neighbor IN ?`,
							node.Type, id, edgeType, dir, int8(b), chunk).IterContext(gctx)
						for {
							var kr rawKeyRow
							if !iter.Scan(&kr.nbr, &kr.val, &kr.wt, &kr.exp) {
								break
							}
							mu.Lock()
							keyRows[string(kr.nbr)] = kr
							mu.Unlock()
						}
						return iter.Close()
					})
				}
			}
			nbrs := make([][]byte, len(rows))
			for i, tr := range rows {
				nbrs[i] = tr.nbr
			}
			var live map[string]bool
			var purged map[string]rawVersion
			g.Go(func() error {
				var err error
				live, purged, err = r.neighbourFacts(gctx, nbrs)
				return err
			})
			if err := g.Wait(); err != nil {
				return nil, err
			}
			for _, tr := range rows {
				kr, ok := keyRows[string(tr.nbr)]
				if !ok || kr.wt != tr.e {
					continue
				}
				if _, live := rawLive(kr.val); !live || (kr.exp != 0 && kr.exp <= now) {
					continue
				}
				v := rawVersion{at: kr.wt, pos: rawValuePos(kr.val)}
				if own != nil && own.atOrAfter(v) {
					continue
				}
				if !rawAllowed(live, purged, kr.nbr, v) {
					continue
				}
				kept = append(kept, kr)
			}
			if len(rows) < slice {
				break
			}
		}
		if len(kept) >= limit {
			break
		}
	}
	return rawPageOf(kept[:min(len(kept), limit)]), nil
}

// rawOwn is what a page reads of its own node: the stored value and the
// newest purge (nil when never purged).
type rawOwn struct {
	val   []byte
	purge *rawVersion
}

// readOwn adds to g the reads of node's value and purge row into o.
func (r rawKeyPage) readOwn(ctx context.Context, g *errgroup.Group, node graph.NodeKey, o *rawOwn) {
	id := []byte(node.ID)
	g.Go(func() error {
		var wt int64
		err := r.session.Query(`SELECT props, WRITETIME(props) FROM nodes WHERE type = ? AND id = ?`, node.Type, id).
			Consistency(r.cl).Idempotent(true).ScanContext(ctx, &o.val, &wt)
		if err == gocql.ErrNotFound {
			return nil
		}
		return err
	})
	g.Go(func() error {
		var at, wt int64
		var pos []byte
		err := r.session.Query(`SELECT deleted_at, deleted_pos, WRITETIME(deleted_pos) FROM node_deletes WHERE type = ? AND id = ?`, node.Type, id).
			Consistency(r.cl).Idempotent(true).ScanContext(ctx, &at, &pos, &wt)
		switch {
		case err == gocql.ErrNotFound:
			return nil
		case err != nil:
			return err
		}
		if len(pos) != graph.PosLen || wt != at {
			pos = make([]byte, graph.PosLen)
		}
		o.purge = &rawVersion{at: at, pos: pos}
		return nil
	})
}

// rawPageOf copies the rows' neighbour keys and property bytes into one
// arena.
func rawPageOf(rows []rawKeyRow) []rawEdge {
	size := 0
	for _, row := range rows {
		size += len(row.nbr) + len(row.val)
	}
	arena := make([]byte, 0, size)
	page := make([]rawEdge, len(rows))
	for i, row := range rows {
		props, _ := rawLive(row.val)
		start := len(arena)
		arena = append(arena, row.nbr...)
		arena = append(arena, props...)
		mid := start + len(row.nbr)
		page[i] = rawEdge{nbr: arena[start:mid:mid], props: arena[mid:len(arena):len(arena)]}
	}
	return page
}
