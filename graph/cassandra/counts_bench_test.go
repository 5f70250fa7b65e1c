package cassandra

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/schemas"
)

// Frequency-cap lookup benchmarks on real Cassandra (make bench-fcap).
// BenchmarkCountsLookup loads fcapUsers users × fcapCampaigns campaigns of
// "impressed" impressions (1-3 per pair, event times over the last 7 days)
// with the shipped ads schema into the run's test keyspace, then measures
// lookups of 1 user × 20 of its campaigns × the 5 default windows, as of
// now, at several concurrencies, idle and while a writer records
// fcapIngestRate impressions/s; and the raw ceiling: the same statement on
// the same partitions sent straight through the driver, rows scanned and
// counted, without validation, retries, the in-flight bound, window
// bucketing or metrics. Each reports p50 and p99 latency (ms) and lookups/s.
//
//	RTGRAPH_TEST_CASSANDRA=127.0.0.1:9042 go test -run '^$' -bench CountsLookup -benchtime 20000x ./graph/cassandra/
const (
	fcapUsers        = 100_000
	fcapCampaigns    = 50  // per user, from a pool of fcapCampaignPool
	fcapCampaignPool = 500 // distinct campaigns
	fcapTargets      = 20  // per lookup
	fcapIngestRate   = 10_000
	fcapIngestBatch  = 500
	fcapLoadWriters  = 4
)

type fcapData struct {
	now       time.Time
	campaigns [][]graph.NodeKey
	loaded    int
}

func fcapUser(i int) graph.NodeKey {
	return graph.NodeKey{Type: "user", ID: fmt.Sprintf("user-%07d", i)}
}

func newFcapData(seed uint64) *fcapData {
	rng := rand.New(rand.NewPCG(seed, 1))
	d := &fcapData{now: time.Now(), campaigns: make([][]graph.NodeKey, fcapUsers)}
	for u := range d.campaigns {
		d.campaigns[u] = make([]graph.NodeKey, fcapCampaigns)
		for j, c := range rng.Perm(fcapCampaignPool)[:fcapCampaigns] {
			d.campaigns[u][j] = graph.NodeKey{Type: "campaign", ID: fmt.Sprintf("campaign-%04d", c)}
		}
	}
	return d
}

// load records every user's impressions, one user per writer at a time,
// in calls of up to graph.MaxImpressionsPerCall.
func (d *fcapData) load(b *testing.B, c *Counts) {
	b.Helper()
	ctx := context.Background()
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, fcapLoadWriters)
	for w := range fcapLoadWriters {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			batch := make([]graph.Impression, 0, graph.MaxImpressionsPerCall)
			seq := 0
			flush := func() bool {
				if len(batch) == 0 {
					return true
				}
				if _, err := c.RecordImpressions(ctx, batch); err != nil {
					errs <- err
					return false
				}
				total.Add(int64(len(batch)))
				batch = batch[:0]
				return true
			}
			for u := w; u < fcapUsers; u += fcapLoadWriters {
				user := fcapUser(u)
				for _, camp := range d.campaigns[u] {
					for range 1 + rng.IntN(3) {
						seq++
						batch = append(batch, graph.Impression{User: user, EdgeType: "impressed", Target: camp,
							EventID: fmt.Sprintf("w%d-%09d", w, seq), EventTime: d.now.Add(-time.Duration(rng.Int64N(int64(graph.MaxWindow))))})
					}
				}
				if len(batch) > graph.MaxImpressionsPerCall-3*fcapCampaigns && !flush() {
					return
				}
			}
			flush()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("load: %v", err)
	}
	d.loaded = int(total.Load())
}

func (d *fcapData) query(rng *rand.Rand) graph.CountQuery {
	u := rng.IntN(fcapUsers)
	targets := make([]graph.NodeKey, fcapTargets)
	for i, j := range rng.Perm(fcapCampaigns)[:fcapTargets] {
		targets[i] = d.campaigns[u][j]
	}
	return graph.CountQuery{User: fcapUser(u), EdgeType: "impressed", Targets: targets, Windows: graph.DefaultWindows()}
}

// fcapRun runs b.N lookups over conc goroutines and reports p50, p99 and
// lookups/s.
func fcapRun(b *testing.B, d *fcapData, conc int, lookup func(graph.CountQuery) error) {
	b.Helper()
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

// fcapIngest records fcapIngestRate fresh impressions/s for random users
// until stop is closed; the returned function waits for it and returns how
// many it recorded per second.
func fcapIngest(b *testing.B, d *fcapData, c *Counts, stop <-chan struct{}) func() float64 {
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
			if _, err := c.RecordImpressions(context.Background(), batch); err != nil {
				firstErr.Store(err)
				return
			}
			n.Add(int64(len(batch)))
		}
	}()
	return func() float64 {
		<-done
		if err, _ := firstErr.Load().(error); err != nil {
			b.Fatalf("ingest: %v", err)
		}
		return float64(n.Load()) / time.Since(start).Seconds()
	}
}

func BenchmarkCountsLookup(b *testing.B) {
	cfg, session := sharedSession(b)
	schema, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		b.Fatal(err)
	}
	st, err := New(session, cfg, schema, Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rules, err := graph.NewCountRules(graph.DefaultCountConfig(), schema)
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewCounts(st, rules, CountOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	d := newFcapData(1)
	t0 := time.Now()
	d.load(b, c)
	secs := time.Since(t0).Seconds()
	b.Logf("loaded %d impressions for %d users in %.1fs (%.0f/s)", d.loaded, fcapUsers, secs, float64(d.loaded)/secs)

	ctx := context.Background()
	lookup := func(q graph.CountQuery) error {
		_, err := c.Counts(ctx, q)
		return err
	}
	raw := func(q graph.CountQuery) error {
		asOf := time.Now().UnixMicro()
		targets := make([][]byte, len(q.Targets))
		for i, t := range q.Targets {
			targets[i] = neighborKey(t)
		}
		iter := session.Query(cqlCountImpressions, q.User.Type, []byte(q.User.ID), q.EdgeType, targets,
			asOf-graph.MaxWindow.Microseconds(), asOf).Consistency(st.readCL).IterContext(ctx)
		var target []byte
		var at int64
		n := 0
		for iter.Scan(&target, &at) {
			n++
		}
		return iter.Close()
	}
	for _, conc := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("raw/idle/c=%d", conc), func(b *testing.B) { fcapRun(b, d, conc, raw) })
		b.Run(fmt.Sprintf("counts/idle/c=%d", conc), func(b *testing.B) { fcapRun(b, d, conc, lookup) })
	}
	for _, conc := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("counts/ingesting/c=%d", conc), func(b *testing.B) {
			stop := make(chan struct{})
			wait := fcapIngest(b, d, c, stop)
			fcapRun(b, d, conc, lookup)
			close(stop)
			b.ReportMetric(wait(), "ingested/s")
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
