package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

// countsOracle builds the response shape of one answer from the API's
// rules (openapi.yaml): windows named in the largest unit that divides
// them, each target's counts by window name, and per cap its target's
// count in its window, allowed while the count is below max, remaining
// max − count and never below 0; allowed overall when every cap allows.
func countsOracle(l countLookup, res graph.CountResult) countsResultJSON {
	out := countsResultJSON{User: l.q.User.String(), EdgeType: l.q.EdgeType, AsOf: res.AsOf, Windows: []string{}, Targets: []targetCountsJSON{}, Allowed: true}
	for _, w := range res.Windows {
		out.Windows = append(out.Windows, formatWindow(w))
	}
	count := map[graph.NodeKey]map[time.Duration]int64{}
	for _, tc := range res.Targets {
		m := map[string]int64{}
		count[tc.Target] = map[time.Duration]int64{}
		for j, c := range tc.Counts {
			m[out.Windows[j]] = c
			count[tc.Target][res.Windows[j]] = c
		}
		out.Targets = append(out.Targets, targetCountsJSON{Target: tc.Target.String(), Counts: m})
	}
	for _, c := range l.caps {
		n := count[c.target][c.window]
		rem := c.max - n
		if rem < 0 {
			rem = 0
		}
		out.Caps = append(out.Caps, capResultJSON{Target: c.target.String(), Window: formatWindow(c.window), Max: c.max, Count: n, Allowed: n < c.max, Remaining: rem})
		if n >= c.max {
			out.Allowed = false
		}
	}
	return out
}

// The rule for the hand-written count encoding: it writes exactly what
// encoding/json writes of the response the rules give (countsOracle), for
// GET and batch answers. Strings hold the characters JSON and HTML
// escaping treat specially, invalid UTF-8 and U+2028/U+2029; windows come
// in any order, so the sorted keys of each target's counts matter.
func TestCountsEncodingMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 12))
	pieces := []string{"a", "Z", "0", " ", "\"", "\\", "/", "<", ">", "&", "\x00", "\x1f", "\n", "\x7f", "é", "\u2028", "\u2029", "\xff", "\xe2\x80", "😀", ":", ","}
	str := func() string {
		var b strings.Builder
		for range 1 + rng.IntN(6) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	plain := func() string { return []string{"user", "item", "camp_1", "x"}[rng.IntN(4)] }
	key := func() graph.NodeKey {
		if rng.IntN(3) == 0 {
			return graph.NodeKey{Type: plain(), ID: str()}
		}
		return graph.NodeKey{Type: plain(), ID: "i" + string(rune('a'+rng.IntN(26)))}
	}
	windows := []time.Duration{time.Minute, 90 * time.Second, 5 * time.Minute, 59 * time.Minute, time.Hour, 90 * time.Minute,
		10 * time.Hour, 24 * time.Hour, 25 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 61 * time.Second}
	answerOf := func() (countsAnswer, countsResultJSON) {
		var l countLookup
		l.q.User, l.q.EdgeType = key(), str()
		for _, i := range rng.Perm(len(windows))[:1+rng.IntN(min(len(windows), graph.MaxCountWindows))] {
			l.q.Windows = append(l.q.Windows, windows[i])
		}
		seen := map[graph.NodeKey]bool{}
		for range 1 + rng.IntN(6) {
			if k := key(); !seen[k] {
				seen[k] = true
				l.q.Targets = append(l.q.Targets, k)
			}
		}
		res := graph.CountResult{AsOf: time.UnixMicro(rng.Int64N(253402300799e6)).UTC(), Windows: l.q.Windows}
		for _, k := range l.q.Targets {
			tc := graph.TargetCounts{Target: k}
			for range l.q.Windows {
				tc.Counts = append(tc.Counts, rng.Int64N(10)*int64(rng.IntN(1000)))
			}
			res.Targets = append(res.Targets, tc)
		}
		for range rng.IntN(4) {
			l.caps = append(l.caps, parsedCap{target: l.q.Targets[rng.IntN(len(l.q.Targets))],
				window: l.q.Windows[rng.IntN(len(l.q.Windows))], max: rng.Int64N(5000)})
		}
		return countsAnswer{l: l, res: res}, countsOracle(l, res)
	}
	wmOf := func() Watermark {
		if rng.IntN(3) == 0 {
			return Watermark{}
		}
		at := time.Unix(rng.Int64N(253402300799), rng.Int64N(1e9)*int64(rng.IntN(2))).UTC()
		return Watermark{EventTime: &at, Known: true}
	}
	encode := func(v any) []byte {
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(v); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for i := range 3000 {
		wm := wmOf()
		if i%2 == 0 {
			a, want := answerOf()
			got := appendCountsResponse(nil, []countsAnswer{a}, wm, false)
			if exp := encode(countsResponse{countsResultJSON: want, Watermark: wm}); !bytes.Equal(got, exp) {
				t.Fatalf("GET answer %d:\n got %s\nwant %s", i, got, exp)
			}
			continue
		}
		var as []countsAnswer
		want := countsBatchResponse{Results: []countsResultJSON{}, Watermark: wm}
		for range 1 + rng.IntN(4) {
			a, w := answerOf()
			as = append(as, a)
			want.Results = append(want.Results, w)
		}
		got := appendCountsResponse(nil, as, wm, true)
		if exp := encode(want); !bytes.Equal(got, exp) {
			t.Fatalf("batch answer %d:\n got %s\nwant %s", i, got, exp)
		}
	}
}
