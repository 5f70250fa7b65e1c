package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/internal/testenv"
)

// BenchmarkFcapPeerRedis (make bench-fcap) compares frequency-cap lookups
// through rtgraph's HTTP API with the same lookups on Redis done the way ad
// servers commonly do them, in the same run on the same machine. One
// iteration is the whole scenario; run it with -benchtime 1x.
//
// Data: RTGRAPH_BENCH_FCAP_IMPRESSIONS viewed impressions (user → item) over
// RTGRAPH_BENCH_FCAP_USERS users, of which the first
// RTGRAPH_BENCH_FCAP_HEAVY are heavy users with
// RTGRAPH_BENCH_FCAP_HEAVY_IMPRESSIONS impressions each, the rest spread
// uniformly over the other users. Each user has 20 campaigns (items from a
// pool of 1000) and is shown the first 16 of them; event times are whole
// milliseconds within the 7 days before the clock, skewed towards recent
// (age = 7d × u³, u uniform). The same impressions are fed to both:
//   - rtgraph: an embedded store (fsync on, 1 GiB block cache) and its count
//     store, through RecordImpressions in calls of 10,000 from 2 writers,
//     then one seal pass (the background pass would make it within its
//     interval), served by the real API handler over HTTP on 127.0.0.1 in
//     this process;
//   - Redis (RTGRAPH_TEST_REDIS): one sorted set per user × campaign, member
//     the impression's event id (a redelivery changes nothing), score its
//     event time in Unix microseconds, ZADD pipelined 1,000 at a time.
//
// A lookup is 1 user × its 20 campaigns × 5 windows (1m, 5m, 1h, 1d, 7d) as
// of the clock: on rtgraph one GET /v1/counts/user/{id} with the 20 targets,
// the windows and as_of, its JSON decoded; on Redis one pipeline of 100
// ZCOUNT key (T−W T (the API's window (T−W, T]). Users are drawn uniformly.
// RTGRAPH_BENCH_FCAP_LOOKUPS lookups per side are made from 8 goroutines,
// in RTGRAPH_BENCH_FCAP_ROUNDS rounds that rotate which side goes first,
// after an untimed warm-up round on each; every lookup's 100 counts must be
// identical on every side, or the benchmark fails. Reported: lookups/s, p50
// and p99 of each side, and rtgraph ÷ Redis for lookups/s and p99.
//
// A third side measures the API itself, without a socket or an HTTP client:
// the same GET requests handed to the API's handler in this process
// (ServeHTTP, the request parsed from its URL as the server would, without
// the per-connection buffers a server reuses), each
// answer's bytes kept and decoded after the round, outside the clock.
// Its figures (rtgraph-handler-*) are the API's capacity on this machine
// when the client runs elsewhere: the HTTP side's client shares the 2 cores
// with the server and spends about as much CPU per lookup as the server.
// Each side's process CPU per lookup is reported too (for the HTTP side, the
// client's and the server's together).
func BenchmarkFcapPeerRedis(b *testing.B) {
	p := fcapPeerParams{
		impressions: benchEnvInt("RTGRAPH_BENCH_FCAP_IMPRESSIONS", 20_000),
		users:       benchEnvInt("RTGRAPH_BENCH_FCAP_USERS", 400),
		heavy:       benchEnvInt("RTGRAPH_BENCH_FCAP_HEAVY", 4),
		heavyImps:   benchEnvInt("RTGRAPH_BENCH_FCAP_HEAVY_IMPRESSIONS", 500),
		lookups:     benchEnvInt("RTGRAPH_BENCH_FCAP_LOOKUPS", 2_000),
		rounds:      benchEnvInt("RTGRAPH_BENCH_FCAP_ROUNDS", 4),
	}
	if p.heavy >= p.users || p.heavy*p.heavyImps > p.impressions {
		b.Fatalf("fcap peer: %d heavy users × %d impressions do not fit in %d users and %d impressions",
			p.heavy, p.heavyImps, p.users, p.impressions)
	}
	addr := testenv.Redis(b)
	for range b.N {
		runFcapPeer(b, p, addr)
	}
}

type fcapPeerParams struct {
	impressions, users, heavy, heavyImps, lookups, rounds int
}

const (
	fcapPeerCampaigns   = 20   // per user, all in every lookup
	fcapPeerShown       = 16   // of which the user is shown the first ones
	fcapPeerPool        = 1000 // distinct campaigns
	fcapPeerConcurrency = 8
	fcapPeerEdgeType    = "viewed"
)

// fcapPeerWindows are the lookup's windows, in the API's spelling.
var fcapPeerWindows = []struct {
	name string
	d    time.Duration
}{{"1m", time.Minute}, {"5m", 5 * time.Minute}, {"1h", time.Hour}, {"1d", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}}

func fcapPeerUser(u int) graph.NodeKey {
	return graph.NodeKey{Type: "user", ID: fmt.Sprintf("fu%07d", u)}
}

// fcapPeerCampaign is user u's j-th campaign: distinct for j < 20.
func fcapPeerCampaign(u, j int) graph.NodeKey {
	return graph.NodeKey{Type: "item", ID: fmt.Sprintf("c%04d", (u*37+j*53)%fcapPeerPool)}
}

// fcapPeerImpressions generates the impressions, in calls of at most
// graph.MaxImpressionsPerCall, and passes each call to emit.
func fcapPeerImpressions(p fcapPeerParams, emit func([]graph.Impression) error) error {
	rng := mrand.New(mrand.NewPCG(20261205, 1))
	week := int64(7 * 24 * time.Hour / time.Millisecond)
	batch := make([]graph.Impression, 0, graph.MaxImpressionsPerCall)
	for i := range p.impressions {
		u := i / max(p.heavyImps, 1)
		if i >= p.heavy*p.heavyImps {
			u = p.heavy + rng.IntN(p.users-p.heavy)
		}
		x := rng.Float64()
		age := min(int64(float64(week)*x*x*x), week-1)
		batch = append(batch, graph.Impression{
			User:      fcapPeerUser(u),
			EdgeType:  fcapPeerEdgeType,
			Target:    fcapPeerCampaign(u, rng.IntN(fcapPeerShown)),
			EventID:   fmt.Sprintf("e%09d", i),
			EventTime: clock.Add(-time.Duration(age) * time.Millisecond),
		})
		if len(batch) == cap(batch) {
			if err := emit(batch); err != nil {
				return err
			}
			batch = make([]graph.Impression, 0, graph.MaxImpressionsPerCall)
		}
	}
	if len(batch) > 0 {
		return emit(batch)
	}
	return nil
}

// fcapPeerKey is the Redis key of a user × campaign sorted set.
func fcapPeerKey(prefix string, user, target graph.NodeKey) string {
	return prefix + user.String() + "|" + target.String()
}

// fcapPeerCounts is one lookup's answer: per campaign (in the user's
// order), per window.
type fcapPeerCounts [fcapPeerCampaigns][5]int64

func runFcapPeer(b *testing.B, p fcapPeerParams, addr string) {
	ctx := context.Background()

	// rtgraph: embedded store and count store behind the API, over HTTP.
	store, counts := openCountStore(b, func(cfg *embedded.Config) { cfg.CacheBytes = 1 << 30 })
	h := newHarness(b, store, func(o *Options) {
		o.Counts = counts
		o.Config.CountsRateLimit = RateLimit{}
	})
	srv := httptest.NewServer(h.h)
	defer srv.Close()
	httpc := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 2 * fcapPeerConcurrency, MaxIdleConnsPerHost: 2 * fcapPeerConcurrency, DisableCompression: true,
	}}
	defer httpc.CloseIdleConnections()

	// Redis: keys under a prefix of this run's own, removed at the end.
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 2 * fcapPeerConcurrency})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		b.Fatalf("redis at %s (%s): %v", addr, testenv.EnvRedis, err)
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	prefix := "rtgraph-bench:fcap:" + hex.EncodeToString(rb[:]) + ":"
	defer fcapPeerDropKeys(b, rdb, prefix)

	// Feed both the same impressions, in turn.
	var calls [][]graph.Impression
	if err := fcapPeerImpressions(p, func(c []graph.Impression) error { calls = append(calls, c); return nil }); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for range 2 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(calls) {
					return
				}
				res, err := counts.RecordImpressions(ctx, calls[i])
				if err != nil {
					b.Error(err)
					return
				}
				accepted.Add(int64(res.Accepted))
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	if int(accepted.Load()) != p.impressions {
		b.Fatalf("rtgraph accepted %d of %d impressions", accepted.Load(), p.impressions)
	}
	// One seal pass, as the count store's background pass makes within
	// its interval: heavy users' past hours and days are read from rollups.
	sealed, err := counts.SealCounts(ctx)
	if err != nil {
		b.Fatal(err)
	}
	loadRT := time.Since(t0)
	t0 = time.Now()
	for _, c := range calls {
		for off := 0; off < len(c); off += 1000 {
			pipe := rdb.Pipeline()
			for _, imp := range c[off:min(off+1000, len(c))] {
				pipe.ZAdd(ctx, fcapPeerKey(prefix, imp.User, imp.Target),
					redis.Z{Score: float64(imp.EventTime.UnixMicro()), Member: imp.EventID})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatalf("redis ZADD: %v", err)
			}
		}
	}
	loadRedis := time.Since(t0)
	calls = nil

	// The lookups: users drawn uniformly, the same sequence on every side.
	rng := mrand.New(mrand.NewPCG(20261205, 2))
	per := max(1, p.lookups/max(p.rounds, 1))
	rounds := max(p.rounds, 1)
	asOf := clock
	asOfParam := url.QueryEscape(asOf.Format(time.RFC3339Nano))
	winParam := make([]string, len(fcapPeerWindows))
	for i, w := range fcapPeerWindows {
		winParam[i] = w.name
	}
	path := func(u int) string {
		var sb strings.Builder
		sb.WriteString("/v1/counts/user/" + fcapPeerUser(u).ID + "?edge_type=" + fcapPeerEdgeType)
		for j := range fcapPeerCampaigns {
			sb.WriteString("&target=" + url.QueryEscape(fcapPeerCampaign(u, j).String()))
		}
		sb.WriteString("&windows=" + strings.Join(winParam, ",") + "&as_of=" + asOfParam)
		return sb.String()
	}
	lookupRT := func(u int) (fcapPeerCounts, []byte, error) {
		var out fcapPeerCounts
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path(u), nil)
		if err != nil {
			return out, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+countsKey)
		resp, err := httpc.Do(req)
		if err != nil {
			return out, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return out, nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return out, nil, fmt.Errorf("GET counts of user %d: status %d: %s", u, resp.StatusCode, body)
		}
		out, err = fcapPeerDecode(u, body)
		return out, nil, err
	}
	// lookupHandler serves the same request through the handler, without
	// a socket, and keeps the answer's bytes for decoding after the round.
	lookupHandler := func(u int) (fcapPeerCounts, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, path(u), nil)
		if err != nil {
			return fcapPeerCounts{}, nil, err
		}
		req.RequestURI, req.RemoteAddr = req.URL.RequestURI(), "127.0.0.1:40000"
		req.Header.Set("Authorization", "Bearer "+countsKey)
		w := &fcapPeerWriter{header: make(http.Header, 4), body: make([]byte, 0, 4096)}
		h.h.ServeHTTP(w, req)
		if w.code != http.StatusOK && w.code != 0 {
			return fcapPeerCounts{}, nil, fmt.Errorf("GET counts of user %d: status %d: %s", u, w.code, w.body)
		}
		return fcapPeerCounts{}, w.body, nil
	}
	asOfMicro := strconv.FormatInt(asOf.UnixMicro(), 10)
	lookupRedis := func(u int) (fcapPeerCounts, []byte, error) {
		var out fcapPeerCounts
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, 0, fcapPeerCampaigns*len(fcapPeerWindows))
		user := fcapPeerUser(u)
		for j := range fcapPeerCampaigns {
			key := fcapPeerKey(prefix, user, fcapPeerCampaign(u, j))
			for _, w := range fcapPeerWindows {
				cmds = append(cmds, pipe.ZCount(ctx, key, "("+strconv.FormatInt(asOf.Add(-w.d).UnixMicro(), 10), asOfMicro))
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return out, nil, err
		}
		for i, c := range cmds {
			out[i/len(fcapPeerWindows)][i%len(fcapPeerWindows)] = c.Val()
		}
		return out, nil, nil
	}

	type side struct {
		name   string
		lookup func(int) (fcapPeerCounts, []byte, error)
		lat    []time.Duration
		wall   time.Duration
		cpu    time.Duration
		n      int
	}
	rt := &side{name: "rtgraph", lookup: lookupRT}
	hd := &side{name: "rtgraph-handler", lookup: lookupHandler}
	rd := &side{name: "redis", lookup: lookupRedis}
	sides := []*side{rt, hd, rd}
	// run makes the lookups of users from fcapPeerConcurrency goroutines,
	// returning each lookup's counts (decoded from the kept answer bytes
	// after the clock stops, where the side keeps them), the latencies, the
	// wall time and the process CPU time.
	run := func(s *side, users []int) ([]fcapPeerCounts, []time.Duration, time.Duration, time.Duration) {
		res := make([]fcapPeerCounts, len(users))
		bodies := make([][]byte, len(users))
		lat := make([][]time.Duration, fcapPeerConcurrency)
		var next atomic.Int64
		var wg sync.WaitGroup
		runtime.GC()
		cpu0 := processCPU(b)
		start := time.Now()
		for g := range fcapPeerConcurrency {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(users) {
						return
					}
					t := time.Now()
					c, body, err := s.lookup(users[i])
					if err != nil {
						b.Errorf("%s lookup: %v", s.name, err)
						return
					}
					lat[g] = append(lat[g], time.Since(t))
					res[i], bodies[i] = c, body
				}
			})
		}
		wg.Wait()
		wall, cpu := time.Since(start), processCPU(b)-cpu0
		for i, body := range bodies {
			if body == nil {
				continue
			}
			c, err := fcapPeerDecode(users[i], body)
			if err != nil {
				b.Errorf("%s lookup: %v", s.name, err)
				break
			}
			res[i] = c
		}
		return res, slices.Concat(lat...), wall, cpu
	}
	checked, nonzero := 0, 0
	for r := -1; r < rounds; r++ { // round -1: warm-up, untimed
		users := make([]int, per)
		for i := range users {
			users[i] = rng.IntN(p.users)
		}
		// Each side goes first in turn.
		first := (r + len(sides)) % len(sides)
		order := append(slices.Clone(sides[first:]), sides[:first]...)
		got := map[*side][]fcapPeerCounts{}
		for _, s := range order {
			res, lat, wall, cpu := run(s, users)
			if b.Failed() {
				return
			}
			got[s] = res
			if r >= 0 {
				s.lat = append(s.lat, lat...)
				s.wall += wall
				s.cpu += cpu
				s.n += len(users)
			}
		}
		for i, u := range users {
			for _, s := range []*side{rt, hd} {
				if got[s][i] != got[rd][i] {
					b.Fatalf("lookup %d of round %d, user %d: %s counts %v, Redis %v (per campaign: 1m, 5m, 1h, 1d, 7d)",
						i, r, u, s.name, got[s][i], got[rd][i])
				}
			}
			checked++
			for j := range got[rt][i] {
				if got[rt][i][j][len(fcapPeerWindows)-1] > 0 {
					nonzero++
				}
			}
		}
	}

	for _, s := range sides {
		slices.Sort(s.lat)
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	rps := func(s *side) float64 { return float64(s.n) / s.wall.Seconds() }
	cpuPer := func(s *side) float64 { return s.cpu.Seconds() * 1e6 / float64(s.n) }
	b.ReportMetric(rps(rt), "rtgraph-lookups/s")
	b.ReportMetric(ms(percentile(rt.lat, 0.5)), "rtgraph-p50-ms")
	b.ReportMetric(ms(percentile(rt.lat, 0.99)), "rtgraph-p99-ms")
	b.ReportMetric(cpuPer(rt), "rtgraph-cpu-us/lookup")
	b.ReportMetric(rps(hd), "rtgraph-handler-lookups/s")
	b.ReportMetric(ms(percentile(hd.lat, 0.5)), "rtgraph-handler-p50-ms")
	b.ReportMetric(ms(percentile(hd.lat, 0.99)), "rtgraph-handler-p99-ms")
	b.ReportMetric(cpuPer(hd), "rtgraph-handler-cpu-us/lookup")
	b.ReportMetric(rps(rd), "redis-lookups/s")
	b.ReportMetric(ms(percentile(rd.lat, 0.5)), "redis-p50-ms")
	b.ReportMetric(ms(percentile(rd.lat, 0.99)), "redis-p99-ms")
	b.ReportMetric(cpuPer(rd), "redis-client-cpu-us/lookup")
	b.ReportMetric(rps(rt)/rps(rd), "x-redis-lookups/s")
	b.ReportMetric(float64(percentile(rt.lat, 0.99))/float64(percentile(rd.lat, 0.99)), "x-redis-p99")
	b.ReportMetric(float64(sealed), "sealed-buckets")
	b.Logf("%d impressions, %d users (%d heavy × %d); loaded in %s on rtgraph (RecordImpressions and a seal pass), %s on Redis (pipelined ZADD); "+
		"%d lookups per side (1 user × %d campaigns × %d windows) at concurrency %d in %d rounds, %d compared equal on all three sides (warm-up included; %d campaign answers with a non-zero 7d count); "+
		"rtgraph over HTTP %.0f lookups/s p50 %s p99 %s (%.1f µs CPU per lookup, client and server); "+
		"rtgraph's handler without a socket %.0f lookups/s p50 %s p99 %s (%.1f µs CPU per lookup); "+
		"Redis %.0f lookups/s p50 %s p99 %s (%.1f µs CPU per lookup in the client); rtgraph over HTTP ÷ Redis: lookups/s %.2f, p99 %.2f",
		p.impressions, p.users, p.heavy, p.heavyImps, loadRT.Round(time.Millisecond), loadRedis.Round(time.Millisecond),
		rt.n, fcapPeerCampaigns, len(fcapPeerWindows), fcapPeerConcurrency, rounds, checked, nonzero,
		rps(rt), percentile(rt.lat, 0.5), percentile(rt.lat, 0.99), cpuPer(rt),
		rps(hd), percentile(hd.lat, 0.5), percentile(hd.lat, 0.99), cpuPer(hd),
		rps(rd), percentile(rd.lat, 0.5), percentile(rd.lat, 0.99), cpuPer(rd),
		rps(rt)/rps(rd), float64(percentile(rt.lat, 0.99))/float64(percentile(rd.lat, 0.99)))
}

// fcapPeerDecode reads user u's counts from a counts answer, per campaign
// in the user's order and per window.
func fcapPeerDecode(u int, body []byte) (fcapPeerCounts, error) {
	var out fcapPeerCounts
	var r countsResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return out, err
	}
	got := make(map[string]map[string]int64, len(r.Targets))
	for _, t := range r.Targets {
		got[t.Target] = t.Counts
	}
	for j := range fcapPeerCampaigns {
		c, ok := got[fcapPeerCampaign(u, j).String()]
		if !ok {
			return out, fmt.Errorf("user %d: no counts for %s in %s", u, fcapPeerCampaign(u, j), body)
		}
		for k, w := range fcapPeerWindows {
			out[j][k] = c[w.name]
		}
	}
	return out, nil
}

// fcapPeerWriter is the handler side's http.ResponseWriter: it keeps the
// status and the body.
type fcapPeerWriter struct {
	header http.Header
	code   int
	body   []byte
}

func (w *fcapPeerWriter) Header() http.Header { return w.header }

func (w *fcapPeerWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *fcapPeerWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// fcapPeerDropKeys removes the keys under prefix.
func fcapPeerDropKeys(b *testing.B, rdb *redis.Client, prefix string) {
	ctx := context.Background()
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, prefix+"*", 10_000).Result()
		if err != nil {
			b.Errorf("redis SCAN: %v", err)
			return
		}
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				b.Errorf("redis UNLINK: %v", err)
				return
			}
		}
		if next == 0 {
			return
		}
		cursor = next
	}
}
