package cassandra

import (
	"bytes"
	"errors"
	"hash/fnv"
	"math"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

// On-disk layout constants. Changing any of them changes where rows live,
// so existing data would no longer be found: they are part of the format
// that schemas/cql/0001_graph.cql creates, not tuning knobs.
const (
	// keyBuckets is the number of edges_by_key partitions per node, edge
	// type and direction; a neighbour's bucket is bucketOf(neighbor).
	keyBuckets = 8
	// dayMicros is the width of an edges_by_time partition: one UTC day.
	dayMicros = int64(24 * time.Hour / time.Microsecond)
)

// Directions as stored (the graph.Direction values, as tinyint).
const (
	dirOut int8 = int8(graph.Out)
	dirIn  int8 = int8(graph.In)
)

// maxCassandraTTL is the largest TTL Cassandra accepts, in seconds (20
// years). A write whose remaining lifetime is longer is written without a
// TTL; reads still hide it once expires_at has passed.
const maxCassandraTTL = 630720000

// maxNowInSeconds is the largest now_in_seconds the native protocol carries
// (an unsigned 32-bit count of seconds, read so by Cassandra 5.0: early 2106).
const maxNowInSeconds = math.MaxUint32

// The stored value of nodes.props and edges_by_key.props. Cassandra decides
// two writes of one cell by their timestamps (the event time) and, at equal
// timestamps, keeps the greater value byte-wise (unsigned), so the value
// starts with what must decide next: the position.
//
//	[valueV1] [16-byte graph.Pos] [stateLive]    [graph.EncodeProps JSON]
//	[valueV1] [16-byte graph.Pos] [stateDeleted]
//
// A delete is such a value (a soft-delete marker), not a tombstone, because
// Cassandra lets a tombstone win every tie: at equal event times the greater
// position now wins whatever the kinds, at equal versions the delete wins
// (stateDeleted > stateLive), and between two upserts of one version the
// greater JSON wins, which is the rule of package graph.
//
// Values written before this format are the bare JSON (first byte '{'):
// they decode as live with the zero position. valueV1 is above '{' (0x7b)
// so that at equal timestamps a value of this format, which knows its
// position, beats a legacy one, which does not: a replayed event then
// replaces what the old tie rule kept (see doc.go for what stays inexact).
const (
	valueV1      byte = 0x80
	stateLive    byte = 0x01
	stateDeleted byte = 0x02
	valueHeader       = 1 + graph.PosLen + 1
)

// liveValue is the stored value of an upsert at position pos with encoded
// properties enc.
func liveValue(pos graph.Pos, enc []byte) []byte {
	b := make([]byte, valueHeader, valueHeader+len(enc))
	b[0] = valueV1
	copy(b[1:], pos[:])
	b[valueHeader-1] = stateLive
	return append(b, enc...)
}

// deletedValue is the stored value of a delete at position pos.
func deletedValue(pos graph.Pos) []byte {
	b := make([]byte, valueHeader)
	b[0] = valueV1
	copy(b[1:], pos[:])
	b[valueHeader-1] = stateDeleted
	return b
}

var errBadValue = errors.New("cassandra: malformed stored value")

// storedValue is a decoded nodes.props or edges_by_key.props value.
type storedValue struct {
	pos     graph.Pos
	deleted bool
	props   []byte // graph.EncodeProps JSON; nil when deleted
}

// decodeValue reads a stored value, in this format or the legacy one.
func decodeValue(b []byte) (storedValue, error) {
	switch {
	case len(b) > 0 && b[0] == '{':
		return storedValue{props: b}, nil
	case len(b) < valueHeader || b[0] != valueV1:
		return storedValue{}, errBadValue
	}
	var v storedValue
	copy(v.pos[:], b[1:])
	switch b[valueHeader-1] {
	case stateLive:
		v.props = b[valueHeader:]
	case stateDeleted:
		if len(b) != valueHeader {
			return storedValue{}, errBadValue
		}
		v.deleted = true
	default:
		return storedValue{}, errBadValue
	}
	return v, nil
}

// The stored value of edge_claims.claim: a node's claim at an end its edge
// type constrains (graph.EdgeType.Constrains), the target of the edge
// upsert of greatest version written there. Written USING TIMESTAMP the
// upsert's event time, so Cassandra keeps the claim of the greatest time
// and, at equal times, the greater value: the greater position, then the
// greater target key (neighborKey order is (type, id) order). That is the
// claim rule of package graph, decided by Cassandra's own reconciliation
// without a read.
//
//	[claimV1] [16-byte graph.Pos] [neighborKey(target)]
const (
	claimV1     byte = 0x80
	claimHeader      = 1 + graph.PosLen
)

// claimValue is the stored claim of target (a neighborKey) by an upsert at
// position pos.
func claimValue(pos graph.Pos, target []byte) []byte {
	b := make([]byte, claimHeader, claimHeader+len(target))
	b[0] = claimV1
	copy(b[1:], pos[:])
	return append(b, target...)
}

var errBadClaim = errors.New("cassandra: malformed stored claim")

// storedClaim is a decoded edge_claims.claim value.
type storedClaim struct {
	pos    graph.Pos
	target []byte // neighborKey of the claimed node
}

// decodeClaim reads a stored claim.
func decodeClaim(b []byte) (storedClaim, error) {
	if len(b) < claimHeader || b[0] != claimV1 {
		return storedClaim{}, errBadClaim
	}
	c := storedClaim{target: b[claimHeader:]}
	copy(c.pos[:], b[1:claimHeader])
	if _, err := parseNeighbor(c.target); err != nil {
		return storedClaim{}, errBadClaim
	}
	return c, nil
}

// neighborKey encodes a neighbour as stored in the neighbor column: type,
// one 0x00 byte, id. Node type names never contain 0x00 (the schema allows
// [a-z0-9_] only) and 0x00 is the smallest byte, so byte order of the
// encoding is (type, id) order, the order of graph.OrderKey.
func neighborKey(k graph.NodeKey) []byte {
	b := make([]byte, 0, len(k.Type)+1+len(k.ID))
	b = append(b, k.Type...)
	b = append(b, 0)
	return append(b, k.ID...)
}

var errBadNeighbor = errors.New("cassandra: malformed neighbor key")

// parseNeighbor is the inverse of neighborKey.
func parseNeighbor(b []byte) (graph.NodeKey, error) {
	i := bytes.IndexByte(b, 0)
	if i <= 0 || i == len(b)-1 {
		return graph.NodeKey{}, errBadNeighbor
	}
	return graph.NodeKey{Type: string(b[:i]), ID: string(b[i+1:])}, nil
}

// bucketOf spreads a node's neighbours over keyBuckets partitions by a
// hash of the neighbour key (FNV-1a: stable across processes and versions).
func bucketOf(neighbor []byte) int8 {
	h := fnv.New32a()
	h.Write(neighbor)
	return int8(h.Sum32() % keyBuckets)
}

// dayOf is the edges_by_time partition of an event time in microseconds.
// Event times are at or after 1970 (graph.Schema.Check), so plain division
// is the floor.
func dayOf(micros int64) int32 { return int32(micros / dayMicros) }

// fromMicros turns a stored microsecond count into a UTC time.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
