package graph

import (
	"encoding/binary"
	"hash/fnv"
	"time"
)

// QueryFingerprint hashes everything in q that a cursor's position depends on
// (all fields but Limit and Cursor). Backends put it in their cursors so that
// a cursor presented with a different query is rejected as ErrInvalidCursor
// instead of resuming at a meaningless position.
func QueryFingerprint(q AdjacencyQuery) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint64(buf[:], uint64(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	num := func(v int64) {
		binary.BigEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	str(q.Node.Type)
	str(q.Node.ID)
	str(q.EdgeType)
	num(int64(q.Direction))
	num(int64(q.Order))
	num(timeKey(q.Since))
	num(timeKey(q.Until))
	return h.Sum64()
}

// timeKey maps the zero time (unbounded) and real instants to distinct
// microsecond counts.
func timeKey(t time.Time) int64 {
	if t.IsZero() {
		return -1 << 63
	}
	return t.UnixMicro()
}
