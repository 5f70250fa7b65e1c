package graph

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// PosLen is the size of a Pos in bytes.
const PosLen = 16

// Pos is the position of a mutation's source event among the events that
// share its event time: a source log position (a PostgreSQL LSN, a MySQL
// binlog file, position and row), a Kafka offset, or an idempotency id.
// Positions compare byte-wise, so an integer is stored big-endian. The zero
// Pos means "no position" and sorts first. A Pos is only meaningful against
// positions of the same source; between sources it still gives every backend
// the same, arbitrary, order.
type Pos [PosLen]byte

// PosUint64 is the Pos of one unsigned integer (an LSN, an offset).
func PosUint64(v uint64) Pos {
	var p Pos
	binary.BigEndian.PutUint64(p[8:], v)
	return p
}

// PosUint64Pair is the Pos of two unsigned integers compared in order.
func PosUint64Pair(hi, lo uint64) Pos {
	var p Pos
	binary.BigEndian.PutUint64(p[:8], hi)
	binary.BigEndian.PutUint64(p[8:], lo)
	return p
}

// IsZero reports whether p is the zero Pos.
func (p Pos) IsZero() bool { return p == Pos{} }

// Compare orders positions byte-wise: -1, 0 or +1.
func (p Pos) Compare(o Pos) int { return bytes.Compare(p[:], o[:]) }

// String is the position as 32 hex digits.
func (p Pos) String() string { return hex.EncodeToString(p[:]) }

// MarshalText renders the position as 32 hex digits.
func (p Pos) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads 32 hex digits.
func (p *Pos) UnmarshalText(b []byte) error {
	if len(b) != 2*PosLen {
		return fmt.Errorf("graph: position %q: want %d hex digits", b, 2*PosLen)
	}
	if _, err := hex.Decode(p[:], b); err != nil {
		return fmt.Errorf("graph: position %q: %w", b, err)
	}
	return nil
}

// CompareVersions orders two versions, each an event time in microseconds
// and a position: by time, then by position. It is the first two steps of
// the last-write-wins rule (see the package doc); backends that keep times
// in microseconds use it directly.
func CompareVersions(at int64, p Pos, oat int64, op Pos) int {
	switch {
	case at < oat:
		return -1
	case at > oat:
		return 1
	}
	return p.Compare(op)
}

// Version is the version of a mutation: its event time, at the microsecond
// precision backends keep, and its position.
func (m *Mutation) Version() (at int64, p Pos) { return m.EventTime.UnixMicro(), m.Pos }
