package graph

import (
	"encoding/binary"
	"fmt"
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

// listCursorV1 leads a listing cursor made by EncodeListCursor.
const listCursorV1 = 'L'

// TypeFingerprint hashes a node type's name, for listing cursors that must
// refuse another type's listing.
func TypeFingerprint(typ string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(typ))
	return h.Sum64()
}

// EncodeListCursor is a listing cursor that resumes after the node id
// after of type typ, for backends that list in id order.
func EncodeListCursor(typ, after string) []byte {
	b := make([]byte, 0, 9+len(after))
	b = append(b, listCursorV1)
	b = binary.BigEndian.AppendUint64(b, TypeFingerprint(typ))
	return append(b, after...)
}

// DecodeListCursor reads a cursor of EncodeListCursor, refusing one of
// another type's listing or malformed as ErrInvalidCursor.
func DecodeListCursor(typ string, b []byte) (string, error) {
	if len(b) < 9 || b[0] != listCursorV1 {
		return "", fmt.Errorf("%w: not a listing cursor", ErrInvalidCursor)
	}
	if binary.BigEndian.Uint64(b[1:9]) != TypeFingerprint(typ) {
		return "", fmt.Errorf("%w: cursor belongs to another type's listing", ErrInvalidCursor)
	}
	return string(b[9:]), nil
}
