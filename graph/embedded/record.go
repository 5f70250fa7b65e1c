package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rtgraph/rtgraph/graph"
)

// record is the stored state of one node or edge, and also the value of the
// index entries that copy an edge. Only the winning upsert and the newest
// delete are kept, each with its version (event time and position): the item
// is visible when it has an upsert newer than its delete. An upsert hidden
// by a delete is dropped when the delete is applied, since a delete's version
// never decreases; the delete's version itself stays (the tombstone) so that
// an older upsert arriving later cannot resurrect it.
type record struct {
	hasUp   bool
	upAt    int64     // event time of the upsert, microseconds
	upPos   graph.Pos // position of the upsert
	expires int64     // expiry of the upsert, microseconds; 0 = never
	props   []byte    // graph.EncodeProps of the upsert
	hasDel  bool
	delAt   int64     // event time of the newest delete, microseconds
	delPos  graph.Pos // position of the newest delete
}

// Record formats. Version 1 had no positions; it is still read, with zero
// positions, so a data directory written before positions existed opens.
const (
	recordV1       = 1
	recordV2       = 2
	flagUp         = 1 << 0
	flagDel        = 1 << 1
	recordHeaderV1 = 2 + 3*8
	recordHeader   = recordHeaderV1 + 2*graph.PosLen
)

func (r record) encode() []byte {
	b := make([]byte, 0, recordHeader+len(r.props))
	var flags byte
	if r.hasUp {
		flags |= flagUp
	}
	if r.hasDel {
		flags |= flagDel
	}
	b = append(b, recordV2, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(r.upAt))
	b = binary.BigEndian.AppendUint64(b, uint64(r.expires))
	b = binary.BigEndian.AppendUint64(b, uint64(r.delAt))
	b = append(b, r.upPos[:]...)
	b = append(b, r.delPos[:]...)
	return append(b, r.props...)
}

var errBadRecord = errors.New("embedded: malformed record")

// decodeRecord copies what it keeps: b may be owned by an iterator.
func decodeRecord(b []byte) (record, error) {
	r, err := viewRecord(b)
	if r.hasUp {
		r.props = append([]byte(nil), r.props...)
	}
	return r, err
}

// viewRecord is decodeRecord without the copy: props aliases b, so r lives
// only as long as b does.
func viewRecord(b []byte) (record, error) {
	header := recordHeader
	if len(b) > 0 && b[0] == recordV1 {
		header = recordHeaderV1
	}
	if len(b) < header || (b[0] != recordV1 && b[0] != recordV2) || b[1]&^(flagUp|flagDel) != 0 {
		return record{}, fmt.Errorf("%w (%d bytes)", errBadRecord, len(b))
	}
	r := record{
		hasUp:   b[1]&flagUp != 0,
		hasDel:  b[1]&flagDel != 0,
		upAt:    int64(binary.BigEndian.Uint64(b[2:10])),
		expires: int64(binary.BigEndian.Uint64(b[10:18])),
		delAt:   int64(binary.BigEndian.Uint64(b[18:26])),
	}
	if b[0] == recordV2 {
		copy(r.upPos[:], b[26:26+graph.PosLen])
		copy(r.delPos[:], b[26+graph.PosLen:recordHeader])
	}
	if r.hasUp {
		r.props = b[header:len(b):len(b)]
	}
	return r, nil
}

// deletedAtOrAfter reports whether r holds a delete whose version is at or
// after (at, pos): such a delete hides an upsert of that version.
func (r record) deletedAtOrAfter(at int64, pos graph.Pos) bool {
	return r.hasDel && graph.CompareVersions(r.delAt, r.delPos, at, pos) >= 0
}

// visible reports whether the upsert is live as far as the record itself
// goes (expiry is judged separately, against the clock).
func (r record) visible() bool { return r.hasUp && !r.deletedAtOrAfter(r.upAt, r.upPos) }

// expired reports whether the upsert has expired at now (microseconds).
func (r record) expired(now int64) bool { return r.expires != 0 && now >= r.expires }
