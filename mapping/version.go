package mapping

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/normalize"
)

// Position is the graph.Pos of the mutations an envelope maps to: what
// orders them after the event time (see package graph's last-write-wins
// rule), by the envelope's version scheme:
//
//	lsn     the PostgreSQL LSN (source.lsn, or __lsn when flattened)
//	binlog  the binlog file's number (4 bytes), position (8) and row (4)
//	offset  the Kafka offset (metadata topics, and CDC without a position);
//	        it orders events within one partition, where one key's events are
//	id      the envelope's idempotency id (request logs): a UUID as its 16
//	        bytes, another id of at most 16 bytes as itself, padded with
//	        zeros, a longer one as the first 16 bytes of its SHA-256
//
// A rule's version expression replaces it (see the package doc).
func Position(e *normalize.Envelope) graph.Pos {
	v := e.Version
	switch v.Scheme {
	case normalize.VersionLSN:
		return graph.PosUint64(v.LSN)
	case normalize.VersionBinlog:
		var p graph.Pos
		binary.BigEndian.PutUint32(p[0:4], binlogNumber(v.File))
		binary.BigEndian.PutUint64(p[4:12], v.Pos)
		binary.BigEndian.PutUint32(p[12:16], uint32(min(v.Row, math.MaxUint32)))
		return p
	case normalize.VersionOffset:
		return graph.PosUint64(uint64(max(v.Offset, 0)))
	case normalize.VersionID:
		return idPos(e.ID)
	}
	return graph.Pos{}
}

// binlogNumber is the numeric suffix of a binlog file name
// ("mysql-bin.000042" → 42); 0 when it has none that fits 32 bits. MySQL
// numbers binlog files from 1 up to 2^31-1.
func binlogNumber(file string) uint32 {
	i := strings.LastIndexByte(file, '.')
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseUint(file[i+1:], 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// idPos is the position of an id: a UUID as its bytes (which order like its
// lower-case text), a short id as itself, a long one by its SHA-256.
func idPos(id string) graph.Pos {
	var p graph.Pos
	if len(id) == 36 {
		if u, err := uuid.Parse(id); err == nil {
			return graph.Pos(u)
		}
	}
	if len(id) <= graph.PosLen {
		copy(p[:], id)
		return p
	}
	sum := sha256.Sum256([]byte(id))
	copy(p[:], sum[:graph.PosLen])
	return p
}

// versionPos turns the value of a rule's version expression into a position:
// a non-negative integer, a string (as an id), or a list of two
// non-negative integers compared in order.
func versionPos(v any) (graph.Pos, error) {
	switch x := v.(type) {
	case nil:
		return graph.Pos{}, fmt.Errorf("version is null")
	case string:
		return idPos(x), nil
	case []any:
		if len(x) != 2 {
			return graph.Pos{}, fmt.Errorf("version is a list of %d values, want 2 integers", len(x))
		}
		hi, err := posInt(x[0])
		if err != nil {
			return graph.Pos{}, err
		}
		lo, err := posInt(x[1])
		if err != nil {
			return graph.Pos{}, err
		}
		return graph.PosUint64Pair(hi, lo), nil
	}
	n, err := posInt(v)
	if err != nil {
		return graph.Pos{}, err
	}
	return graph.PosUint64(n), nil
}

func posInt(v any) (uint64, error) {
	switch x := v.(type) {
	case int:
		if x >= 0 {
			return uint64(x), nil
		}
	case int64:
		if x >= 0 {
			return uint64(x), nil
		}
	case int32:
		if x >= 0 {
			return uint64(x), nil
		}
	case uint64:
		return x, nil
	case float64:
		if x >= 0 && x == math.Trunc(x) && x < 1<<53 {
			return uint64(x), nil
		}
	default:
		return 0, fmt.Errorf("version is %T, want a non-negative integer, a string or a list of two integers", v)
	}
	return 0, fmt.Errorf("version %v is not a non-negative integer", v)
}
