package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

func TestCountKeyLayout(t *testing.T) {
	im := graph.Impression{
		User:      graph.NodeKey{Type: "user", ID: "a\x00b"},
		EdgeType:  "likes",
		Target:    graph.NodeKey{Type: "tag", ID: "\x00"},
		EventID:   "ev\x00\x01",
		EventTime: time.UnixMicro(1_700_000_000_123_456),
	}
	k := countKey(nil, im)
	n, err := countGroupLen(k)
	if err != nil {
		t.Fatalf("countGroupLen: %v", err)
	}
	group := appendNode(countPrefix(nil, im.User, im.EdgeType), im.Target)
	if !bytes.Equal(k[:n], group) {
		t.Fatalf("group = %q, want %q", k[:n], group)
	}
	if got := int64(binary.BigEndian.Uint64(k[n : n+8])); got != im.EventTime.UnixMicro() {
		t.Fatalf("time = %d", got)
	}
	if string(k[n+8:]) != im.EventID {
		t.Fatalf("event id = %q", k[n+8:])
	}
	// A user whose id extends another's has a disjoint range.
	other := im
	other.User.ID += "c"
	p := countPrefix(nil, im.User, im.EdgeType)
	if bytes.HasPrefix(countKey(nil, other), p) {
		t.Fatal("prefix of one user covers another")
	}
}

func TestCountGroupLenMalformed(t *testing.T) {
	good := countKey(nil, graph.Impression{User: graph.NodeKey{Type: "u", ID: "1"}, EdgeType: "e",
		Target: graph.NodeKey{Type: "t", ID: "2"}, EventID: "x", EventTime: time.UnixMicro(5)})
	n, _ := countGroupLen(good)
	for name, k := range map[string][]byte{
		"empty":           nil,
		"other table":     append([]byte{tNode}, good[1:]...),
		"unterminated":    good[:4],
		"bad escape":      {tCount, 'u', 0, 7},
		"trailing zero":   {tCount, 'u', 0},
		"short time":      good[:n+7],
		"four components": appendStr(appendStr(appendStr(appendStr([]byte{tCount}, "a"), "b"), "c"), "d"),
	} {
		if _, err := countGroupLen(k); !errors.Is(err, errBadKey) {
			t.Errorf("%s: err = %v, want errBadKey", name, err)
		}
	}
}
