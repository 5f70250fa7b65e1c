package cassandra

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

func cursorQuery() graph.AdjacencyQuery {
	return graph.AdjacencyQuery{
		Node: graph.NodeKey{Type: "user", ID: "u1"}, EdgeType: "follows", Direction: graph.Out,
		Order: graph.OrderLatest, Limit: 10, Since: time.Unix(100, 0),
	}
}

func TestCursorRoundTrip(t *testing.T) {
	q := cursorQuery()
	p := position{e: 1_700_000_000_123_456, nbr: neighborKey(graph.NodeKey{Type: "user", ID: "x\x00y"})}
	q.Cursor = encodeCursor(q, p)
	got, err := decodeCursor(q)
	if err != nil {
		t.Fatal(err)
	}
	if got.e != p.e || !bytes.Equal(got.nbr, p.nbr) {
		t.Fatalf("got %+v, want %+v", got, p)
	}
	// Limit is not part of the query identity: pages may change size.
	q.Limit = 3
	if _, err := decodeCursor(q); err != nil {
		t.Fatalf("other limit: %v", err)
	}
}

func TestCursorRejected(t *testing.T) {
	q := cursorQuery()
	good := encodeCursor(q, position{e: 5, nbr: neighborKey(graph.NodeKey{Type: "user", ID: "a"})})
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	// reseal recomputes the checksum, so the check under test is the next one.
	reseal := func(body []byte) []byte {
		return binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.ChecksumIEEE(body))
	}
	badVersion := reseal(flip(0)[:len(good)-4])
	otherQuery := q
	otherQuery.Node.ID = "u2"
	otherOrder := q
	otherOrder.Order = graph.OrderKey
	noSep := reseal(append(bytes.Clone(good[:18]), 1, 'a'))
	lenMismatch := reseal(append(bytes.Clone(good[:18]), 5, 'a', 0, 'b'))
	cases := []struct {
		name   string
		q      graph.AdjacencyQuery
		cursor []byte
	}{
		{"empty", q, []byte{}},
		{"short", q, good[:10]},
		{"flipped byte", q, flip(12)},
		{"flipped checksum", q, flip(len(good) - 1)},
		{"unknown version", q, badVersion},
		{"other node", otherQuery, good},
		{"other order", otherOrder, good},
		{"neighbour without separator", q, noSep},
		{"length mismatch", q, lenMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.q.Cursor = c.cursor
			_, err := decodeCursor(c.q)
			if !errors.Is(err, graph.ErrInvalidCursor) {
				t.Fatalf("got %v, want graph.ErrInvalidCursor", err)
			}
		})
	}
}

// FuzzDecodeCursor: any bytes either decode to a position that re-encodes
// to the same bytes, or fail with graph.ErrInvalidCursor; never a panic.
func FuzzDecodeCursor(f *testing.F) {
	q := cursorQuery()
	f.Add(encodeCursor(q, position{e: 7, nbr: []byte("user\x00a")}))
	f.Add([]byte{})
	f.Add([]byte("not a cursor"))
	f.Fuzz(func(t *testing.T, b []byte) {
		qq := q
		qq.Cursor = b
		p, err := decodeCursor(qq)
		if err != nil {
			if !errors.Is(err, graph.ErrInvalidCursor) {
				t.Fatalf("error %v does not wrap graph.ErrInvalidCursor", err)
			}
			return
		}
		if again := encodeCursor(q, p); !bytes.Equal(again, b) {
			t.Fatalf("decoded %x re-encodes to %x", b, again)
		}
	})
}
