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

// The rule for the hand-written edge encoding: it writes exactly what
// encoding/json writes for the same response. The oracle is encoding/json
// itself, over random edges whose strings hold the characters JSON and
// HTML escaping treat specially, invalid UTF-8 and U+2028/U+2029.
func TestEdgeEncodingMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	pieces := []string{"a", "Z", "0", " ", "\"", "\\", "/", "<", ">", "&", "\x00", "\x01", "\x1f", "\b", "\f", "\n", "\r", "\t",
		"\x7f", "é", "日本", "\u2028", "\u2029", "\xff", "\xc3", "\xe2\x80", "😀", "\ufffd", ":", "edges", "[]", "{}"}
	str := func() string {
		var b strings.Builder
		for range rng.IntN(8) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	at := func() time.Time {
		return time.Unix(rng.Int64N(253402300799), rng.Int64N(1e9)*int64(rng.IntN(2))).UTC()
	}
	for i := range 3000 {
		edges := []edgeJSON{}
		for range rng.IntN(4) {
			props := graph.Props{}
			for range rng.IntN(4) {
				switch rng.IntN(4) {
				case 0:
					props[str()] = str()
				case 1:
					props[str()] = rng.Int64() - rng.Int64()
				case 2:
					props[str()] = rng.NormFloat64() * float64(rng.IntN(1e6))
				default:
					props[str()] = rng.IntN(2) == 0
				}
			}
			b, err := graph.EncodeProps(props)
			if err != nil {
				t.Fatal(err)
			}
			e := edgeJSON{Type: str(), From: nodeKeyJSON{Type: str(), ID: str()}, To: nodeKeyJSON{Type: str(), ID: str()},
				Props: b, EventTime: at(), Hop: rng.IntN(3)}
			if rng.IntN(2) == 0 {
				x := at()
				e.ExpiresAt = &x
			}
			edges = append(edges, e)
		}
		resp := edgesResponse{Node: nodeKeyJSON{Type: str(), ID: str()}, EdgeType: str(), Direction: "out", Order: "key",
			HasMore: rng.IntN(2) == 0, NextCursor: str(), Watermark: Watermark{}}
		resp.Edges = []edgeJSON{}
		got, err := marshalWithEdges(resp, edges)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		resp.Edges = edges
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(resp); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want.Bytes())
		}
	}
}

// A response whose edge list is not the one empty list to fill is refused,
// not written wrong.
func TestEdgeEncodingNeedsOneEmptyList(t *testing.T) {
	for _, v := range []any{
		edgesResponse{},                      // nil list: "edges":null
		edgesResponse{Edges: []edgeJSON{{}}}, // not empty
		struct{ A, B []int }{},               // no edges field
	} {
		if b, err := marshalWithEdges(v, nil); err == nil {
			t.Errorf("%T: wrote %s, want an error", v, b)
		}
	}
}
