package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/schemas"
)

// Frequency-cap lookup benchmarks (make bench-fcap). BenchmarkCountsLookup
// loads fcapUsers users × fcapCampaigns campaigns of "impressed"
// impressions (1-3 per pair, event times over the last 7 days) with the
// shipped ads schema, then measures lookups of 1 user × 20 of its campaigns
// × the 5 default windows, as of now, at several concurrencies, idle and
// while a writer records fcapIngestRate impressions/s; and, for the same
// users and campaigns, the raw ceiling: a bare loop over the same key
// ranges (iterator, one seek per target, count keys up to as_of) without
// validation, window bucketing or result building. Each reports p50 and
// p99 latency (ms) and lookups/s.
//
//	go test -run '^$' -bench CountsLookup -benchtime 20000x ./graph/embedded/
const (
	fcapUsers         = 100_000
	fcapCampaigns     = 50  // per user, from a pool of fcapCampaignPool
	fcapCampaignPool  = 500 // distinct campaigns
	fcapTargets       = 20  // per lookup
	fcapIngestRate    = 10_000
	fcapIngestBatch   = 500
	fcapLoadBatch     = graph.MaxImpressionsPerCall
	fcapLoadWriters   = 2
	fcapImpressionsLo = 1
	fcapImpressionsHi = 3
)

// fcapData is the population every lookup draws from.
type fcapData struct {
	now       time.Time
	campaigns [][]graph.NodeKey // per user, fcapCampaigns distinct campaigns
	loaded    int
}

func fcapUser(i int) graph.NodeKey {
	return graph.NodeKey{Type: "user", ID: fmt.Sprintf("user-%07d", i)}
}

func fcapCampaign(i int) graph.NodeKey {
	return graph.NodeKey{Type: "campaign", ID: fmt.Sprintf("campaign-%04d", i)}
}

// newFcapData draws each user's campaigns.
func newFcapData(seed uint64) *fcapData {
	rng := rand.New(rand.NewPCG(seed, 1))
	d := &fcapData{now: time.Now(), campaigns: make([][]graph.NodeKey, fcapUsers)}
	for u := range d.campaigns {
		picks := rng.Perm(fcapCampaignPool)[:fcapCampaigns]
		d.campaigns[u] = make([]graph.NodeKey, fcapCampaigns)
		for j, c := range picks {
			d.campaigns[u][j] = fcapCampaign(c)
		}
	}
	return d
}

// impressions streams the load in batches of at most n to emit, from
// writers goroutines (each user's impressions go to one writer).
func (d *fcapData) load(b *testing.B, writers, n int, emit func([]graph.Impression) error) {
	b.Helper()
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			batch := make([]graph.Impression, 0, n)
			seq := 0
			for u := w; u < fcapUsers; u += writers {
				user := fcapUser(u)
				for _, c := range d.campaigns[u] {
					k := fcapImpressionsLo + rng.IntN(fcapImpressionsHi-fcapImpressionsLo+1)
					for range k {
						seq++
						at := d.now.Add(-time.Duration(rng.Int64N(int64(graph.MaxWindow))))
						batch = append(batch, graph.Impression{User: user, EdgeType: "impressed", Target: c,
							EventID: fmt.Sprintf("w%d-%09d", w, seq), EventTime: at})
						if len(batch) == n {
							if err := emit(batch); err != nil {
								errs <- err
								return
							}
							total.Add(int64(len(batch)))
							batch = batch[:0]
						}
					}
				}
			}
			if len(batch) > 0 {
				if err := emit(batch); err != nil {
					errs <- err
					return
				}
				total.Add(int64(len(batch)))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("load: %v", err)
	}
	d.loaded = int(total.Load())
}

// query draws one lookup: a user and fcapTargets of its campaigns.
func (d *fcapData) query(rng *rand.Rand) graph.CountQuery {
	u := rng.IntN(fcapUsers)
	camps := d.campaigns[u]
	targets := make([]graph.NodeKey, fcapTargets)
	for i, j := range rng.Perm(len(camps))[:fcapTargets] {
		targets[i] = camps[j]
	}
	return graph.CountQuery{User: fcapUser(u), EdgeType: "impressed", Targets: targets, Windows: graph.DefaultWindows()}
}

// runLookups runs b.N lookups spread over conc goroutines and reports p50,
// p99 and lookups/s. lookup must be safe for concurrent use.
func runLookups(b *testing.B, d *fcapData, conc int, lookup func(graph.CountQuery) error) {
	b.Helper()
	// Queries are drawn before the clock starts.
	qs := make([]graph.CountQuery, b.N)
	rng := rand.New(rand.NewPCG(uint64(conc), 3))
	for i := range qs {
		qs[i] = d.query(rng)
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Value
	b.ResetTimer()
	cpu0 := fcapCPU(b)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(qs) {
					return
				}
				t0 := time.Now()
				if err := lookup(qs[i]); err != nil {
					failed.Store(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := fcapCPU(b) - cpu0
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("lookup: %v", err)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1e6
	}
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lookups/s")
	// Process CPU per lookup: everything this process did meanwhile
	// (compactions, the ingesting writer), so an upper bound of a lookup's
	// own cost that, unlike latency, does not grow with other processes'
	// load on the machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu_us/lookup")
}

// ingestWhile records fcapIngestRate impressions/s of fresh impressions for
// random users until stop is closed, and returns how many it recorded and
// the seconds it ran.
func ingestWhile(b *testing.B, d *fcapData, rec func([]graph.Impression) error, stop <-chan struct{}) func() (int, float64) {
	var n atomic.Int64
	var firstErr atomic.Value
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(99, 4))
		tick := time.NewTicker(time.Second * fcapIngestBatch / fcapIngestRate)
		defer tick.Stop()
		seq := 0
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			batch := make([]graph.Impression, fcapIngestBatch)
			for i := range batch {
				seq++
				u := rng.IntN(fcapUsers)
				batch[i] = graph.Impression{User: fcapUser(u), EdgeType: "impressed",
					Target: d.campaigns[u][rng.IntN(fcapCampaigns)], EventID: fmt.Sprintf("live-%09d", seq), EventTime: time.Now()}
			}
			if err := rec(batch); err != nil {
				firstErr.Store(err)
				return
			}
			n.Add(int64(len(batch)))
		}
	}()
	return func() (int, float64) {
		<-done
		if err, _ := firstErr.Load().(error); err != nil {
			b.Fatalf("ingest: %v", err)
		}
		return int(n.Load()), time.Since(start).Seconds()
	}
}

// rawCeiling is the least a lookup can do on this layout: one iterator
// over the user's impressions of the edge type, targets in key order, a
// seek per target unless the iterator already stands at or after the
// target's first key in the window (where the seek would land), keys
// counted up to as_of.
func rawCeiling(db *pebble.DB, q graph.CountQuery, now time.Time) (int, error) {
	asOf := now.UnixMicro()
	since := asOf - graph.MaxWindow.Microseconds()
	prefix := countPrefix(nil, q.User, q.EdgeType)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	keys := make([][]byte, len(q.Targets))
	for i, t := range q.Targets {
		keys[i] = appendNode(slices.Clip(prefix), t)
	}
	slices.SortFunc(keys, bytes.Compare)
	n := 0
	var seek []byte
	for _, tk := range keys {
		seek = binary.BigEndian.AppendUint64(append(seek[:0], tk...), uint64(since+1))
		ok := it.Valid() && bytes.Compare(it.Key(), seek) >= 0
		if !ok {
			ok = it.SeekGE(seek)
		}
		for ; ok; ok = it.Next() {
			k := it.Key()
			if !bytes.HasPrefix(k, tk) || int64(binary.BigEndian.Uint64(k[len(tk):])) > asOf {
				break
			}
			n++
		}
	}
	return n, it.Error()
}

func BenchmarkCountsLookup(b *testing.B) {
	// The block cache holds the whole count table (~0.4 GB compressed for
	// 10M impressions), as it should for a store that serves caps: with the
	// 64 MiB default most seeks would read and decompress a block.
	s, c := openBenchCounts(b, func(cfg *Config) { cfg.CacheBytes = 1 << 30 })
	ctx := context.Background()
	d := newFcapData(1)
	t0 := time.Now()
	d.load(b, fcapLoadWriters, fcapLoadBatch, func(imps []graph.Impression) error {
		_, err := c.RecordImpressions(ctx, imps)
		return err
	})
	loadSecs := time.Since(t0).Seconds()
	// Compact so that every run reads the same LSM shape, as a store that
	// has been up for a while would.
	if err := s.db.Compact(ctx, []byte{tCount}, []byte{tCount + 1}, true); err != nil {
		b.Fatal(err)
	}
	// Warm the block cache with one pass over the table, so that the first
	// configuration measured does not pay for reading it from disk.
	if _, err := rawScan(s.db); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d impressions for %d users in %.1fs (%.0f/s)", d.loaded, fcapUsers, loadSecs, float64(d.loaded)/loadSecs)

	lookup := func(q graph.CountQuery) error {
		_, err := c.Counts(ctx, q)
		return err
	}
	raw := func(q graph.CountQuery) error {
		_, err := rawCeiling(s.db, q, time.Now())
		return err
	}
	record := func(imps []graph.Impression) error {
		_, err := c.RecordImpressions(ctx, imps)
		return err
	}
	for _, conc := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("raw/idle/c=%d", conc), func(b *testing.B) { runLookups(b, d, conc, raw) })
		b.Run(fmt.Sprintf("counts/idle/c=%d", conc), func(b *testing.B) { runLookups(b, d, conc, lookup) })
	}
	for _, conc := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("counts/ingesting/c=%d", conc), func(b *testing.B) {
			stop := make(chan struct{})
			wait := ingestWhile(b, d, record, stop)
			runLookups(b, d, conc, lookup)
			close(stop)
			n, secs := wait()
			b.ReportMetric(float64(n)/secs, "ingested/s")
		})
	}
}

// fcapCPU is the process's CPU time so far (user + system).
func fcapCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawScan reads every count key once.
func rawScan(db *pebble.DB) (int, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{tCount}, UpperBound: []byte{tCount + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Error()
}

// BenchmarkCountsHeavyUser looks up a heavy user, 50,000 impressions in the
// last 7 days spread over 20 campaigns (RTGRAPH_BENCH_HEAVY_IMPRESSIONS),
// 20 targets × 5 windows (1m, 1h, 1d, 3d, 7d) as of now, one lookup at a
// time (c=1) and eight at once (c=8): before the seal pass (every
// impression read) and after it (rollups for the sealed hours, impressions
// at the edges). Each configuration alternates, in rounds of 40 lookups,
// Counts with the raw ceiling (rawHeavy: the same rows read by a bare
// Pebble loop), after checking that both give the same counts. It reports,
// for both, p50/p99, lookups/s, process CPU per lookup and the rows each
// lookup read, and ceiling ÷ rtgraph for lookups/s and CPU.
func BenchmarkCountsHeavyUser(b *testing.B) {
	s, c := openBenchCounts(b, func(cfg *Config) { cfg.Sync = false }) // loading only; lookups do not depend on it
	ctx := context.Background()
	total := 50000
	if v, err := strconv.Atoi(os.Getenv("RTGRAPH_BENCH_HEAVY_IMPRESSIONS")); err == nil && v > 0 {
		total = v
	}
	user := graph.NodeKey{Type: "user", ID: "heavy-user"}
	targets := make([]graph.NodeKey, 20)
	for i := range targets {
		targets[i] = graph.NodeKey{Type: "campaign", ID: fmt.Sprintf("campaign-%02d", i)}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var imps []graph.Impression
	for i := range total {
		imps = append(imps, graph.Impression{User: user, EdgeType: "impressed", Target: targets[rng.IntN(len(targets))],
			EventID: fmt.Sprintf("ev-%08d", i), EventTime: now.Add(-time.Duration(rng.Int64N(int64(7 * 24 * time.Hour))))})
		if len(imps) == graph.MaxImpressionsPerCall || i == total-1 {
			if _, err := c.RecordImpressions(ctx, imps); err != nil {
				b.Fatal(err)
			}
			imps = imps[:0]
		}
	}
	if err := s.db.Compact(ctx, []byte{tCount}, []byte{tRollup + 1}, true); err != nil {
		b.Fatal(err)
	}
	windows := []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 72 * time.Hour, 7 * 24 * time.Hour}
	for _, sealed := range []bool{false, true} {
		name := map[bool]string{false: "unsealed", true: "sealed"}[sealed]
		if sealed {
			if _, err := c.SealCounts(ctx); err != nil {
				b.Fatal(err)
			}
		}
		for _, conc := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/c=%d", name, conc), func(b *testing.B) {
				q := graph.CountQuery{User: user, EdgeType: "impressed", Targets: targets, Windows: windows}
				// Both sides answer one lookup as of the same instant,
				// untimed, and must agree; and the rows each reads.
				p, err := c.rules.Plan(q, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				want, rows, err := c.read(p)
				if err != nil {
					b.Fatal(err)
				}
				var raw rawHeavy
				got, rawRows, err := raw.lookup(s.db, q, p.AsOf)
				if err != nil {
					b.Fatal(err)
				}
				var sum int64
				for i, tc := range want.Targets {
					if !slices.Equal(tc.Counts, got[i]) {
						b.Fatalf("target %v: rtgraph counts %v, the ceiling %v", tc.Target, tc.Counts, got[i])
					}
					sum += tc.Counts[len(windows)-1]
				}
				if sum > int64(total) || sum < int64(total)*9/10 {
					b.Fatalf("the 7-day counts add up to %d of %d impressions", sum, total)
				}
				raws := make([]rawHeavy, conc)
				sides := [2]func(g int) error{
					func(int) error {
						_, err := c.Counts(ctx, q)
						return err
					},
					func(g int) error {
						_, _, err := raws[g].lookup(s.db, q, time.Now().UnixMicro())
						return err
					},
				}
				b.ResetTimer()
				res := alternateLookups(b, conc, 40, sides)
				b.StopTimer()
				res[0].report(b, "")
				res[1].report(b, "raw_")
				b.ReportMetric(float64(rows), "rows/lookup")
				b.ReportMetric(float64(rawRows), "raw_rows/lookup")
				b.ReportMetric(res[1].perSecond()/res[0].perSecond(), "ceiling÷rtgraph_lookups/s")
				b.ReportMetric(res[0].cpuPer()/res[1].cpuPer(), "rtgraph÷ceiling_cpu")
			})
		}
	}
}

// sideRun is what one side of an alternated benchmark measured.
type sideRun struct {
	lat       []time.Duration
	wall, cpu time.Duration
}

func (r sideRun) perSecond() float64 { return float64(len(r.lat)) / r.wall.Seconds() }

func (r sideRun) cpuPer() float64 { return float64(r.cpu.Microseconds()) / float64(len(r.lat)) }

func (r sideRun) report(b *testing.B, prefix string) {
	lat := slices.Clone(r.lat)
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1e6
	}
	b.ReportMetric(pct(0.50), prefix+"p50_ms")
	b.ReportMetric(pct(0.99), prefix+"p99_ms")
	b.ReportMetric(r.perSecond(), prefix+"lookups/s")
	b.ReportMetric(r.cpuPer(), prefix+"cpu_us/lookup")
}

// alternateLookups runs b.N lookups on each side, in rounds of round
// lookups per side (side 0, then side 1), each round with conc goroutines
// (g is the goroutine's number); it returns each side's latencies, wall
// time and process CPU.
func alternateLookups(b *testing.B, conc, round int, sides [2]func(g int) error) [2]sideRun {
	b.Helper()
	var res [2]sideRun
	for i := range res {
		res[i].lat = make([]time.Duration, 0, b.N)
	}
	lats := make([][]time.Duration, conc)
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		for side := range sides {
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			cpu0, start := fcapCPU(b), time.Now()
			for g := range conc {
				lats[g] = lats[g][:0]
				wg.Go(func() {
					for next.Add(1) <= int64(n) {
						t0 := time.Now()
						if err := sides[side](g); err != nil {
							failed.Store(err)
							return
						}
						lats[g] = append(lats[g], time.Since(t0))
					}
				})
			}
			wg.Wait()
			res[side].wall += time.Since(start)
			res[side].cpu += fcapCPU(b) - cpu0
			if err, _ := failed.Load().(error); err != nil {
				b.Fatalf("side %d: %v", side, err)
			}
			for _, l := range lats {
				res[side].lat = append(res[side].lat, l...)
			}
		}
	}
	return res
}

// rawHeavy is the raw ceiling of a lookup on the count layout with
// rollups, written against Pebble from the key layout (counts.go,
// rollup.go), not with Counts' code. Per target, in key order: the
// target's day rollups in the longest window, whether it has hour rollups
// there and, when it has any rollup, its markers, then one walk from the oldest window start to
// as_of in which each window start ends a segment: a day or hour that lies
// wholly inside the segment and has a rollup and no marker adds its
// rollup, every other stretch up to the next rollup's bucket is counted
// impression by impression. A window's count is the sum of the segments after its start.
// Its buffers are reused from lookup to lookup.
type rawHeavy struct {
	key, seek, lo []byte
	days, hours   []rawBucket
	hoursDay      int64 // the day whose hour rollups hours holds
	marked        []int64
	segs          []int64
}

type rawBucket struct{ at, n int64 }

// nextBucket is the index of the first of bs, from i on, that starts
// after t.
func nextBucket(bs []rawBucket, i int, t int64) int {
	for i < len(bs) && bs[i].at <= t {
		i++
	}
	return i
}

// lookup answers q (windows ascending) as of asOf (microseconds): the
// counts per target, in q's target order, and the rows it read.
func (r *rawHeavy) lookup(db *pebble.DB, q graph.CountQuery, asOf int64) ([][]int64, int, error) {
	for i := 1; i < len(q.Windows); i++ {
		if q.Windows[i] <= q.Windows[i-1] {
			return nil, 0, fmt.Errorf("windows %v are not ascending", q.Windows)
		}
	}
	hi := asOf + 1 // exclusive
	starts := make([]int64, len(q.Windows))
	for i, w := range q.Windows {
		starts[i] = asOf - w.Microseconds() + 1 // inclusive
	}
	lo := starts[len(starts)-1]
	prefix := countPrefix(r.key[:0], q.User, q.EdgeType)
	var its [3]*pebble.Iterator
	for i, table := range []byte{tCount, tRollup, tMarker} {
		r.lo = append(append(r.lo[:0], table), prefix[1:]...)
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: r.lo, UpperBound: prefixEnd(r.lo)})
		if err != nil {
			return nil, 0, err
		}
		defer it.Close()
		its[i] = it
	}
	cit, rit, mit := its[0], its[1], its[2]
	order := make([]int, len(q.Targets))
	groups := make([][]byte, len(q.Targets))
	for i, t := range q.Targets {
		order[i] = i
		groups[i] = appendNode(slices.Clip(prefix[1:]), t)
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(groups[a], groups[b]) })
	out := make([][]int64, len(q.Targets))
	rows := 0
	for _, ti := range order {
		g := groups[ti]
		// Day rollups in the window, and whether the target has any hour
		// rollup there (one seek); hour rollups are read a day at a time,
		// for the days the walk does not cover with a day rollup.
		r.days = r.days[:0]
		r.lo = binary.BigEndian.AppendUint64(append(append(append(r.lo[:0], tRollup), g...), levelDay), uint64(dayOf(lo)))
		n := len(r.lo) - 8
		for ok := rit.SeekGE(r.lo); ok; ok = rit.Next() {
			k := rit.Key()
			if len(k) != n+8 || !bytes.Equal(k[:n], r.lo[:n]) {
				break
			}
			at := int64(binary.BigEndian.Uint64(k[n:]))
			if at >= hi {
				break
			}
			rows++
			r.days = append(r.days, rawBucket{at, int64(binary.BigEndian.Uint64(rit.Value()))})
		}
		r.lo = binary.BigEndian.AppendUint64(append(append(append(r.lo[:0], tRollup), g...), levelHour), uint64(bucketOf(lo)))
		anyHours := rit.SeekGE(r.lo) && len(rit.Key()) == n+8 && bytes.Equal(rit.Key()[:n], r.lo[:n]) &&
			int64(binary.BigEndian.Uint64(rit.Key()[n:])) < hi
		r.hours, r.hoursDay = r.hours[:0], -1
		loadHours := func(day int64) {
			r.hours, r.hoursDay = r.hours[:0], day
			if !anyHours {
				return
			}
			r.lo = binary.BigEndian.AppendUint64(append(append(append(r.lo[:0], tRollup), g...), levelHour), uint64(day))
			for ok := rit.SeekGE(r.lo); ok; ok = rit.Next() {
				k := rit.Key()
				if len(k) != n+8 || !bytes.Equal(k[:n], r.lo[:n]) {
					break
				}
				at := int64(binary.BigEndian.Uint64(k[n:]))
				if at >= day+rollupDay {
					break
				}
				rows++
				r.hours = append(r.hours, rawBucket{at, int64(binary.BigEndian.Uint64(rit.Value()))})
			}
		}
		// Markers: the hours that hold an impression written after its
		// hour may have been sealed. They only matter to a rollup: a
		// target without one is read impression by impression anyway.
		r.marked = r.marked[:0]
		r.lo = binary.BigEndian.AppendUint64(append(append(r.lo[:0], tMarker), g...), uint64(dayOf(lo)))
		mn := len(r.lo) - 8
		for ok := (anyHours || len(r.days) > 0) && mit.SeekGE(r.lo); ok; ok = mit.Next() {
			k := mit.Key()
			if len(k) < mn+8 || !bytes.Equal(k[:mn], r.lo[:mn]) {
				break
			}
			h := int64(binary.BigEndian.Uint64(k[mn:]))
			if h >= hi {
				break
			}
			rows++
			if len(r.marked) == 0 || r.marked[len(r.marked)-1] != h {
				r.marked = append(r.marked, h)
			}
		}
		// The walk, oldest segment first.
		r.segs = r.segs[:0]
		di, hi2, mi := 0, 0, 0
		markedIn := func(a, b int64) bool {
			for mi < len(r.marked) && r.marked[mi] < a {
				mi++
			}
			return mi < len(r.marked) && r.marked[mi] < b
		}
		rollup := func(bs []rawBucket, i *int, at int64) (int64, bool) {
			for *i < len(bs) && bs[*i].at < at {
				*i++
			}
			if *i < len(bs) && bs[*i].at == at {
				return bs[*i].n, true
			}
			return 0, false
		}
		t := lo
		for si := len(starts) - 1; si >= 0; si-- {
			end := hi
			if si > 0 {
				end = starts[si-1]
			}
			var seg int64
			for t < end {
				if t%rollupDay == 0 && t+rollupDay <= end {
					if v, ok := rollup(r.days, &di, t); ok && !markedIn(t, t+rollupDay) {
						seg += v
						t += rollupDay
						continue
					}
				}
				day := dayOf(t)
				if day != r.hoursDay {
					loadHours(day)
					hi2 = 0
				}
				if t%rollupBucket == 0 && t+rollupBucket <= end {
					if v, ok := rollup(r.hours, &hi2, t); ok && !markedIn(t, t+rollupBucket) {
						seg += v
						t += rollupBucket
						continue
					}
				}
				// Impressions up to the next rollup's bucket, the day's
				// end (the next day's hours are not read yet) or the
				// segment's end.
				stop := end
				if anyHours {
					stop = min(stop, day+rollupDay)
				}
				if j := nextBucket(r.hours, hi2, t); j < len(r.hours) {
					stop = min(stop, r.hours[j].at)
				}
				if j := nextBucket(r.days, di, t); j < len(r.days) {
					stop = min(stop, r.days[j].at)
				}
				r.seek = binary.BigEndian.AppendUint64(append(append(r.seek[:0], tCount), g...), uint64(t))
				ok := cit.Valid() && bytes.Compare(cit.Key(), r.seek) >= 0
				if !ok {
					ok = cit.SeekGE(r.seek)
				}
				for ; ok; ok = cit.Next() {
					k := cit.Key()
					if len(k) < len(r.seek) || !bytes.Equal(k[1:len(r.seek)-8], g) ||
						int64(binary.BigEndian.Uint64(k[len(r.seek)-8:])) >= stop {
						break
					}
					rows++
					seg++
				}
				t = stop
			}
			r.segs = append(r.segs, seg)
		}
		counts := make([]int64, len(starts))
		var acc int64
		for si := range starts { // newest segment first
			acc += r.segs[len(r.segs)-1-si]
			counts[si] = acc
		}
		out[ti] = counts
	}
	for _, it := range its {
		if err := it.Error(); err != nil {
			return nil, 0, err
		}
	}
	return out, rows, nil
}

// openBenchCounts opens a store of the shipped schema in a temporary
// directory, with mod applied to the default configuration, and its count
// store with the default count rules and no sweep during the benchmark.
func openBenchCounts(b *testing.B, mod func(*Config)) (*Store, *Counts) {
	b.Helper()
	schema, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	mod(&cfg)
	s, err := Open(cfg, schema, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	rules, err := graph.NewCountRules(graph.DefaultCountConfig(), schema)
	if err != nil {
		_ = s.Close()
		b.Fatal(err)
	}
	c, err := NewCounts(s, rules, CountOptions{SweepInterval: 24 * time.Hour})
	if err != nil {
		_ = s.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = c.Close()
		_ = s.Close()
	})
	return s, c
}
