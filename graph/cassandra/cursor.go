package cassandra

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/rtgraph/rtgraph/graph"
)

// position is where a scan stands: the last row consumed, in the order of
// the query. e is its event time (microseconds; used by OrderLatest only)
// and nbr its neighbor key. A scan resumes strictly after it.
type position struct {
	e   int64
	nbr []byte
}

// cursorV1 is the only cursor version so far. A cursor is our own position,
// never a driver page state: it survives driver upgrades, retries on
// another coordinator, and rows written between pages.
//
// Layout: version (1 byte), order (1), graph.QueryFingerprint of the query
// (8, big endian), event time (8), neighbor length (uvarint) and bytes,
// CRC-32 (IEEE) of everything before it (4).
const cursorV1 = 1

func encodeCursor(q graph.AdjacencyQuery, p position) []byte {
	b := make([]byte, 0, 2+8+8+binary.MaxVarintLen64+len(p.nbr)+4)
	b = append(b, cursorV1, byte(q.Order))
	b = binary.BigEndian.AppendUint64(b, graph.QueryFingerprint(q))
	b = binary.BigEndian.AppendUint64(b, uint64(p.e))
	b = binary.AppendUvarint(b, uint64(len(p.nbr)))
	b = append(b, p.nbr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// decodeCursor checks and decodes q.Cursor. Every failure wraps
// graph.ErrInvalidCursor.
func decodeCursor(q graph.AdjacencyQuery) (position, error) {
	b := q.Cursor
	bad := func(why string) (position, error) {
		return position{}, fmt.Errorf("cassandra: adjacency: %w: %s", graph.ErrInvalidCursor, why)
	}
	if len(b) < 2+8+8+1+4 {
		return bad("too short")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return bad("checksum mismatch")
	}
	if body[0] != cursorV1 {
		return bad(fmt.Sprintf("unknown version %d", body[0]))
	}
	if graph.Order(body[1]) != q.Order || binary.BigEndian.Uint64(body[2:10]) != graph.QueryFingerprint(q) {
		return bad("cursor belongs to another query")
	}
	p := position{e: int64(binary.BigEndian.Uint64(body[10:18]))}
	rest := body[18:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n != uint64(len(rest)-k) {
		return bad("malformed position")
	}
	p.nbr = rest[k:]
	if _, err := parseNeighbor(p.nbr); err != nil {
		return bad("malformed neighbour")
	}
	return p, nil
}
