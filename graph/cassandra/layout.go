package cassandra

import (
	"bytes"
	"errors"
	"hash/fnv"
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
