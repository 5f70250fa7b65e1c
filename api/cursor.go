package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/traverse"
)

// Cursors are opaque to clients: base64url (no padding) of
//
//	version (1 byte) | kind (1 byte) | query fingerprint (8 bytes) | payload | HMAC-SHA256 (16 bytes)
//
// The MAC covers everything before it, under the server's cursor secret, so
// a client cannot forge or edit a cursor, and the store's own cursors inside
// the payload are never trusted unsigned. The fingerprint hashes the query a
// cursor continues (see fingerprint); a cursor presented with another query
// is refused. A new version byte is how a future layout would be told apart.
const (
	cursorVersion   = 1
	cursorEdges     = 1 // payload: edgesCursor
	cursorTraversal = 2 // payload: traversalCursor
	cursorNodes     = 3 // payload: the store's listing cursor
	macLen          = 16
	headerLen       = 1 + 1 + 8
)

type cursorCodec struct{ key []byte }

func (c cursorCodec) mac(b []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(b)
	return m.Sum(nil)[:macLen]
}

func (c cursorCodec) seal(kind byte, fp uint64, payload []byte) string {
	b := make([]byte, 0, headerLen+len(payload)+macLen)
	b = append(b, cursorVersion, kind)
	b = binary.BigEndian.AppendUint64(b, fp)
	b = append(b, payload...)
	b = append(b, c.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func badCursor(format string, args ...any) *Error {
	return apiErr(kindInvalidCursor, "cursor", format, args...)
}

// open checks s and returns its payload.
func (c cursorCodec) open(kind byte, fp uint64, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, badCursor("not a cursor this API issued (not base64url)")
	}
	if len(b) < headerLen+macLen {
		return nil, badCursor("not a cursor this API issued (too short)")
	}
	if b[0] != cursorVersion {
		return nil, badCursor("cursor version %d is not supported", b[0])
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(sum, c.mac(body)) {
		return nil, badCursor("cursor signature does not verify: it was altered, or issued under another cursor secret")
	}
	if b[1] != kind {
		return nil, badCursor("cursor belongs to another endpoint")
	}
	if binary.BigEndian.Uint64(b[2:10]) != fp {
		return nil, badCursor("cursor belongs to another query: send it with the same query that returned it")
	}
	return body[headerLen:], nil
}

// fingerprint hashes the parts of a query a cursor depends on.
type fingerprint struct{ h []byte }

func newFingerprint(kind byte) *fingerprint { return &fingerprint{h: []byte{kind}} }

func (f *fingerprint) str(s string) *fingerprint {
	f.h = binary.AppendUvarint(f.h, uint64(len(s)))
	f.h = append(f.h, s...)
	return f
}

func (f *fingerprint) num(v int64) *fingerprint {
	f.h = binary.AppendVarint(f.h, v)
	return f
}

func (f *fingerprint) sum() uint64 {
	s := sha256.Sum256(f.h)
	return binary.BigEndian.Uint64(s[:8])
}

// optTime hashes an optional time as the request gave it (absent differs
// from every instant), so a defaulted window is part of the fingerprint as
// "absent", and the instant it resolved to travels in the cursor.
func (f *fingerprint) optTime(t *time.Time) *fingerprint {
	if t == nil {
		return f.num(0).num(0)
	}
	return f.num(1).num(t.UnixMicro())
}

// writer and reader are the payload encoding: varints and length-prefixed
// bytes.
type writer struct{ b []byte }

func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) bytes(p []byte)   { w.uvarint(uint64(len(p))); w.b = append(w.b, p...) }
func (w *writer) str(s string)     { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }

// timeVal writes zero (unbounded) as 0 and instants as 1+micros.
func (w *writer) timeVal(t time.Time) {
	if t.IsZero() {
		w.uvarint(0)
		return
	}
	w.uvarint(1)
	w.varint(t.UnixMicro())
}

var errPayload = errors.New("malformed payload")

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errPayload
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errPayload
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errPayload
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) str() string { return string(r.bytes()) }

func (r *reader) timeVal() time.Time {
	switch r.uvarint() {
	case 0:
		return time.Time{}
	case 1:
		return time.UnixMicro(r.varint()).UTC()
	}
	r.err = errPayload
	return time.Time{}
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = errPayload
	}
	return r.err
}

// edgesCursor continues an edges page: the window the first page resolved
// (so a defaulted lookback does not move between pages) and the store's
// cursor.
type edgesCursor struct {
	since, until time.Time
	store        []byte
}

func (c edgesCursor) encode() []byte {
	var w writer
	w.timeVal(c.since)
	w.timeVal(c.until)
	w.bytes(c.store)
	return w.b
}

func decodeEdgesCursor(p []byte) (edgesCursor, error) {
	r := reader{b: p}
	c := edgesCursor{since: r.timeVal(), until: r.timeVal(), store: r.bytes()}
	if err := r.done(); err != nil || len(c.store) == 0 {
		return edgesCursor{}, badCursor("cursor payload is malformed")
	}
	return c, nil
}

// traversalCursor continues one hop of a traversal: the windows every hop
// resolved, and the engine's continuation. Node keys are written once each
// in a table that sources and the frontier refer to by index.
type traversalCursor struct {
	windows [][]window // per hop, per edge type of the hop
	cont    traverse.Continuation
}

type window struct{ since, until time.Time }

func (c traversalCursor) encode(hops []hopSpec) []byte {
	var w writer
	for i := range hops {
		for _, win := range c.windows[i] {
			w.timeVal(win.since)
			w.timeVal(win.until)
		}
	}
	w.uvarint(uint64(c.cont.Hop))
	idx := map[graph.NodeKey]uint64{}
	var table []graph.NodeKey
	ref := func(k graph.NodeKey) uint64 {
		i, ok := idx[k]
		if !ok {
			i = uint64(len(table))
			idx[k] = i
			table = append(table, k)
		}
		return i
	}
	var body writer
	body.uvarint(uint64(len(c.cont.Frontier)))
	for _, k := range c.cont.Frontier {
		body.uvarint(ref(k))
	}
	h := hops[c.cont.Hop]
	body.uvarint(uint64(len(c.cont.Work)))
	for _, s := range c.cont.Work {
		body.uvarint(ref(s.Node))
		body.uvarint(uint64(h.edgeIndex(s.EdgeType)))
		body.uvarint(uint64(s.Direction))
		body.bytes(s.Cursor)
		if s.From == nil {
			body.uvarint(0)
			continue
		}
		body.uvarint(1)
		body.varint(s.From.EventTime.UnixMicro())
		body.uvarint(ref(s.From.Neighbor))
	}
	w.uvarint(uint64(len(table)))
	for _, k := range table {
		w.str(k.Type)
		w.str(k.ID)
	}
	w.b = append(w.b, body.b...)
	return w.b
}

func decodeTraversalCursor(p []byte, hops []hopSpec) (traversalCursor, error) {
	bad := badCursor("cursor payload is malformed")
	r := reader{b: p}
	var c traversalCursor
	c.windows = make([][]window, len(hops))
	for i, h := range hops {
		c.windows[i] = make([]window, len(h.edgeTypes))
		for j := range h.edgeTypes {
			c.windows[i][j] = window{since: r.timeVal(), until: r.timeVal()}
		}
	}
	hop := r.uvarint()
	if r.err != nil || hop >= uint64(len(hops)) {
		return c, bad
	}
	c.cont.Hop = int(hop)
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		return c, bad
	}
	table := make([]graph.NodeKey, n)
	for i := range table {
		table[i] = graph.NodeKey{Type: r.str(), ID: r.str()}
	}
	node := func() graph.NodeKey {
		i := r.uvarint()
		if i >= uint64(len(table)) {
			r.err = errPayload
			return graph.NodeKey{}
		}
		return table[i]
	}
	nf := r.uvarint()
	if r.err != nil || nf > uint64(len(r.b)) {
		return c, bad
	}
	for range nf {
		c.cont.Frontier = append(c.cont.Frontier, node())
	}
	h := hops[hop]
	nw := r.uvarint()
	if r.err != nil || nw > uint64(len(r.b)) {
		return c, bad
	}
	for range nw {
		s := traverse.Source{Node: node()}
		et := r.uvarint()
		if et >= uint64(len(h.edgeTypes)) {
			return c, bad
		}
		s.EdgeType = h.edgeTypes[et]
		s.Direction = graph.Direction(r.uvarint())
		if cur := r.bytes(); len(cur) > 0 {
			s.Cursor = cur
		}
		switch r.uvarint() {
		case 0:
		case 1:
			at := time.UnixMicro(r.varint()).UTC()
			s.From = &traverse.Position{EventTime: at, Neighbor: node()}
		default:
			return c, bad
		}
		if r.err != nil {
			return c, bad
		}
		c.cont.Work = append(c.cont.Work, s)
	}
	if err := r.done(); err != nil {
		return c, bad
	}
	return c, nil
}
