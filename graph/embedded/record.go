package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// record is the stored state of one node or edge, and also the value of the
// index entries that copy an edge. Only the winning upsert and the newest
// delete are kept: the item is visible when it has an upsert newer than its
// delete. An upsert hidden by a delete is dropped when the delete is applied,
// since a delete time never decreases; the delete time itself stays (the
// tombstone) so that an older upsert arriving later cannot resurrect it.
type record struct {
	hasUp   bool
	upAt    int64  // event time of the upsert, microseconds
	expires int64  // expiry of the upsert, microseconds; 0 = never
	props   []byte // graph.EncodeProps of the upsert
	hasDel  bool
	delAt   int64 // event time of the newest delete, microseconds
}

const (
	recordV1     = 1
	flagUp       = 1 << 0
	flagDel      = 1 << 1
	recordHeader = 2 + 3*8
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
	b = append(b, recordV1, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(r.upAt))
	b = binary.BigEndian.AppendUint64(b, uint64(r.expires))
	b = binary.BigEndian.AppendUint64(b, uint64(r.delAt))
	return append(b, r.props...)
}

var errBadRecord = errors.New("embedded: malformed record")

// decodeRecord copies what it keeps: b may be owned by an iterator.
func decodeRecord(b []byte) (record, error) {
	if len(b) < recordHeader || b[0] != recordV1 || b[1]&^(flagUp|flagDel) != 0 {
		return record{}, fmt.Errorf("%w (%d bytes)", errBadRecord, len(b))
	}
	r := record{
		hasUp:   b[1]&flagUp != 0,
		hasDel:  b[1]&flagDel != 0,
		upAt:    int64(binary.BigEndian.Uint64(b[2:10])),
		expires: int64(binary.BigEndian.Uint64(b[10:18])),
		delAt:   int64(binary.BigEndian.Uint64(b[18:26])),
	}
	if r.hasUp {
		r.props = append([]byte(nil), b[recordHeader:]...)
	}
	return r, nil
}

// visible reports whether the upsert is live as far as the record itself
// goes (expiry is judged separately, against the clock).
func (r record) visible() bool { return r.hasUp && (!r.hasDel || r.upAt > r.delAt) }

// expired reports whether the upsert has expired at now (microseconds).
func (r record) expired(now int64) bool { return r.expires != 0 && now >= r.expires }
