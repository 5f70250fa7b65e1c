package api

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/traverse"
)

func TestCursorSealOpen(t *testing.T) {
	c := cursorCodec{key: []byte(strings.Repeat("k", 32))}
	s := c.seal(cursorEdges, 42, []byte("payload"))
	got, err := c.open(cursorEdges, 42, s)
	if err != nil || string(got) != "payload" {
		t.Fatalf("open = %q, %v", got, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(s)
	// Every single-bit change anywhere is refused.
	for i := range raw {
		for bit := range 8 {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			if _, err := c.open(cursorEdges, 42, base64.RawURLEncoding.EncodeToString(b)); err == nil {
				t.Fatalf("flipping byte %d bit %d was accepted", i, bit)
			}
		}
	}
	for name, tc := range map[string]struct {
		codec cursorCodec
		kind  byte
		fp    uint64
		msg   string
	}{
		"other secret": {cursorCodec{key: []byte(strings.Repeat("x", 32))}, cursorEdges, 42, "signature"},
		"other kind":   {c, cursorTraversal, 42, "another endpoint"},
		"other query":  {c, cursorEdges, 43, "another query"},
	} {
		_, err := tc.codec.open(tc.kind, tc.fp, s)
		var ae *Error
		if !errors.As(err, &ae) || ae.kind != kindInvalidCursor || !strings.Contains(ae.Detail, tc.msg) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	v2 := append([]byte(nil), raw...)
	v2[0] = 2
	if _, err := c.open(cursorEdges, 42, base64.RawURLEncoding.EncodeToString(v2)); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("version 2: %v", err)
	}
}

func TestEdgesCursorRoundTrip(t *testing.T) {
	in := edgesCursor{since: time.UnixMicro(1_700_000_000_123_456).UTC(), store: []byte{1, 2, 3}}
	out, err := decodeEdgesCursor(in.encode())
	if err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	for _, bad := range [][]byte{nil, {0, 0}, {0, 0, 0}, append(in.encode(), 0), {2}, {1}} {
		if _, err := decodeEdgesCursor(bad); err == nil {
			t.Errorf("decoded %v", bad)
		}
	}
}

func TestTraversalCursorRoundTrip(t *testing.T) {
	hops := []hopSpec{{edgeTypes: []string{"follows", "tagged"}}, {edgeTypes: []string{"likes"}}}
	u := func(id string) graph.NodeKey { return graph.NodeKey{Type: "user", ID: id} }
	from := traverse.Position{EventTime: time.UnixMicro(1_700_000_000_000_001).UTC(), Neighbor: u("z")}
	in := traversalCursor{
		windows: [][]window{
			{{since: time.UnixMicro(1).UTC()}, {since: time.UnixMicro(2).UTC(), until: time.UnixMicro(3).UTC()}},
			{{}},
		},
		cont: traverse.Continuation{
			Hop: 0,
			Work: []traverse.Source{
				{Node: u("a"), EdgeType: "tagged", Direction: graph.In, Cursor: []byte{9, 9}, From: &from},
				{Node: u("b"), EdgeType: "follows", Direction: graph.Out},
				{Node: u("a"), EdgeType: "follows", Direction: graph.Out, Cursor: []byte{7}},
			},
			Frontier: []graph.NodeKey{u("a"), u("b"), u("c")},
		},
	}
	p := in.encode(hops)
	out, err := decodeTraversalCursor(p, hops)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in %+v\nout %+v", in, out)
	}
	// Every truncation of the payload is refused, never a panic.
	for n := range len(p) {
		if _, err := decodeTraversalCursor(p[:n], hops); err == nil {
			t.Errorf("decoded a payload cut to %d bytes", n)
		}
	}
	if _, err := decodeTraversalCursor(append(p, 0), hops); err == nil {
		t.Error("decoded a payload with trailing bytes")
	}
}

// FuzzTraversalCursorDecode: no payload makes the decoder panic or
// allocate without bound, and what decodes re-encodes to itself.
func FuzzTraversalCursorDecode(f *testing.F) {
	hops := []hopSpec{{edgeTypes: []string{"follows"}}, {edgeTypes: []string{"likes", "tagged"}}}
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 4, 'u', 's', 'e', 'r', 1, 'a', 0, 1, 0, 0, 1, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := decodeTraversalCursor(p, hops)
		if err != nil {
			return
		}
		again, err := decodeTraversalCursor(c.encode(hops), hops)
		if err != nil || !reflect.DeepEqual(c.cont.Work, again.cont.Work) {
			t.Fatalf("re-encoding changed the cursor: %v", err)
		}
	})
}
