package cassandra

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/rtgraph/rtgraph/graph"
)

// Listing. The nodes table is partitioned by (type, id), so the nodes of
// one type are spread over the whole ring: a listing scans the table in
// token order and keeps the rows of its type. A page reads at most
// listScanFactor × limit rows, so a type with few nodes among many others
// gets short (even empty) pages that still carry a cursor; the cost of
// listing a type to its end is one scan of the whole nodes table.
const (
	listScanFactor = 10

	cqlListNodes     = `SELECT token(type, id), type, id, props, WRITETIME(props) FROM nodes LIMIT ?`
	cqlListNodesFrom = `SELECT token(type, id), type, id, props, WRITETIME(props) FROM nodes WHERE token(type, id) >= ? LIMIT ?`
)

// listPos is where a listing scan stands: the token of the last row it
// consumed and the keys (neighborKey) of the rows consumed at that token,
// which a resumed scan (token >= tok) skips. More than one key per token
// needs a Murmur3 collision, so keys is almost always one entry.
type listPos struct {
	tok  int64
	keys [][]byte
}

// listCursorV1 leads a Cassandra listing cursor: version,
// graph.TypeFingerprint of the type (8 bytes), token (8), then uvarint-length-prefixed keys. The API
// signs cursors; this layout only has to refuse another type's cursor.
const listCursorV1 = 'T'

func encodeListCursor(typ string, p listPos) []byte {
	b := []byte{listCursorV1}
	b = binary.BigEndian.AppendUint64(b, graph.TypeFingerprint(typ))
	b = binary.BigEndian.AppendUint64(b, uint64(p.tok))
	for _, k := range p.keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	return b
}

func decodeListCursor(typ string, b []byte) (listPos, error) {
	bad := func(why string) (listPos, error) {
		return listPos{}, fmt.Errorf("cassandra: list nodes: %w: %s", graph.ErrInvalidCursor, why)
	}
	if len(b) < 17 || b[0] != listCursorV1 {
		return bad("not a listing cursor")
	}
	if binary.BigEndian.Uint64(b[1:9]) != graph.TypeFingerprint(typ) {
		return bad("cursor belongs to another type's listing")
	}
	p := listPos{tok: int64(binary.BigEndian.Uint64(b[9:17]))}
	rest := b[17:]
	for len(rest) > 0 {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return bad("truncated key")
		}
		p.keys = append(p.keys, rest[k:k+int(n)])
		rest = rest[k+int(n):]
	}
	if len(p.keys) == 0 {
		return bad("no key")
	}
	return p, nil
}

// ListNodes lists the nodes of a type in token order of the nodes table
// (stable while the ring's partitioner is), skipping deleted and truncated
// nodes as GetNodes does.
func (s *Store) ListNodes(ctx context.Context, q graph.NodeListQuery) (graph.NodePage, error) {
	nt, ok := s.schema.NodeType(q.Type)
	if !ok {
		return graph.NodePage{}, fmt.Errorf("cassandra: list nodes: %w: unknown node type %q", graph.ErrInvalidQuery, q.Type)
	}
	if q.Limit < 1 {
		return graph.NodePage{}, fmt.Errorf("cassandra: list nodes: %w: limit %d", graph.ErrInvalidQuery, q.Limit)
	}
	var from *listPos
	if q.Cursor != nil {
		p, err := decodeListCursor(q.Type, q.Cursor)
		if err != nil {
			return graph.NodePage{}, err
		}
		from = &p
	}
	if !s.enter() {
		return graph.NodePage{}, graph.ErrClosed
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return graph.NodePage{}, &graph.RetryableError{Op: "list nodes", Err: err}
	}
	truncs, err := s.truncates(ctx)
	if err != nil {
		return graph.NodePage{}, s.callErr(ctx, "list nodes", err)
	}
	budget := q.Limit * listScanFactor
	var page graph.NodePage
	err = s.do(ctx, opListNodes, func(ctx context.Context) error {
		// A retried attempt starts from zero.
		page = graph.NodePage{}
		var cur listPos
		if from != nil {
			cur = listPos{tok: from.tok, keys: slices.Clone(from.keys)}
		}
		qry := s.query(s.readCL, cqlListNodes, budget)
		if from != nil {
			qry = s.query(s.readCL, cqlListNodesFrom, from.tok, budget)
		}
		iter := qry.PageSize(min(budget, 5000)).IterContext(ctx)
		var (
			tok      int64
			typ      string
			id, raw  []byte
			wt       int64
			rows     int
			consumed bool // cur names at least one row
		)
		consumed = from != nil
		for iter.Scan(&tok, &typ, &id, &raw, &wt) {
			rows++
			key := neighborKey(graph.NodeKey{Type: typ, ID: string(id)})
			if from != nil && tok == from.tok && slices.ContainsFunc(from.keys, func(k []byte) bool { return bytes.Equal(k, key) }) {
				continue
			}
			if len(page.Nodes) == q.Limit {
				// A node is left over: the page is full, resume at it.
				page.Next = encodeListCursor(q.Type, cur)
				return iter.Close()
			}
			if !consumed || tok != cur.tok {
				cur = listPos{tok: tok}
			}
			cur.keys = append(cur.keys, key)
			consumed = true
			if typ != q.Type {
				continue
			}
			v, err := decodeValue(raw)
			if err != nil {
				_ = iter.Close()
				return fmt.Errorf("cassandra: list node %s:%s: %w", typ, id, err)
			}
			if v.deleted {
				continue
			}
			if d := truncOf(truncs, typ); d != nil && d.hides(wt, v.pos) {
				continue
			}
			props, err := decodeProps(v.props, nt.Props)
			if err != nil {
				_ = iter.Close()
				return fmt.Errorf("cassandra: list node %s:%s: %w", typ, id, err)
			}
			page.Nodes = append(page.Nodes, graph.Node{Key: graph.NodeKey{Type: typ, ID: string(id)}, Props: props, EventTime: fromMicros(wt)})
		}
		if err := iter.Close(); err != nil {
			return err
		}
		if rows == budget && consumed {
			// The scan stopped at its bound, not at the table's end.
			page.Next = encodeListCursor(q.Type, cur)
		}
		return nil
	})
	if err != nil {
		return graph.NodePage{}, s.callErr(ctx, "list nodes", err)
	}
	return page, nil
}
