package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// limiterTable keeps one token bucket per client: a key name, or a client
// address for requests without a key. The table is an LRU of bounded size
// (Config.RateLimitClients), so a caller cycling through addresses cannot
// grow the server's memory: the least recently seen client is forgotten,
// and comes back with a full bucket.
type limiterTable struct {
	rl   RateLimit
	mu   sync.Mutex // makes get-or-add atomic; the cache locks itself too
	lims *lru.Cache[string, *rate.Limiter]
}

// newLimiterTable returns nil when rl turns limiting off.
func newLimiterTable(rl RateLimit, size int) *limiterTable {
	if rl.RequestsPerSecond <= 0 {
		return nil
	}
	lims, err := lru.New[string, *rate.Limiter](size)
	if err != nil {
		panic(err) // size is checked positive by Validate
	}
	return &limiterTable{rl: rl, lims: lims}
}

func (t *limiterTable) get(client string) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.lims.Get(client); ok {
		return l
	}
	l := rate.NewLimiter(rate.Limit(t.rl.RequestsPerSecond), t.rl.Burst)
	t.lims.Add(client, l)
	return l
}

// take spends one of client's tokens at now. When none is left it spends
// nothing and returns how long until one is.
func (t *limiterTable) take(client string, now time.Time) (time.Duration, bool) {
	r := t.get(client).ReserveN(now, 1)
	if !r.OK() {
		return time.Second, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// exhausted reports, without spending anything, whether client has no
// token left at now, and how long until it has one. A client the table
// does not know has a full bucket.
func (t *limiterTable) exhausted(client string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	l, ok := t.lims.Get(client)
	t.mu.Unlock()
	if !ok {
		return 0, false
	}
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / t.rl.RequestsPerSecond * float64(time.Second)), true
}

// retryAfter is d in whole seconds, rounded up, at least 1: what
// Retry-After carries.
func retryAfter(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		return 1
	}
	return s
}

// clientAddr is the address a request is limited by: the host of the
// connection's remote address or, when that is a trusted proxy
// (Config.TrustedProxies), the rightmost X-Forwarded-For entry that is not
// one. Forwarding headers from anyone else are not read: any client can
// set them and so choose its own bucket. An IPv6 address counts as its
// /64, the block one subscriber is usually given, so that cycling through
// one's own addresses does not escape the limit.
func (s *server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if s.trusted(a) {
		a = s.forwardedFor(r, a)
	}
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

func (s *server) trusted(a netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor walks X-Forwarded-For from the right, past trusted proxies,
// to the first address that is not one; proxy when there is none or an
// entry is not an address.
func (s *server) forwardedFor(r *http.Request, proxy netip.Addr) netip.Addr {
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return proxy
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a
		}
	}
	return proxy
}

// logSampler lets one log line through per interval and counts the lines
// it holds back, so that a flood (failed authentications, shed requests)
// cannot fill the log, and the next line says how many it stands for.
type logSampler struct {
	every      time.Duration
	mu         sync.Mutex
	next       time.Time
	suppressed int64
}

// sample reports whether a line may be logged at now and, when it may, how
// many were held back since the last one.
func (s *logSampler) sample(now time.Time) (suppressed int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(s.next) {
		s.suppressed++
		return 0, false
	}
	n := s.suppressed
	s.suppressed = 0
	s.next = now.Add(s.every)
	return n, true
}
