package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

// Key layout. Every key starts with one byte naming its table; strings are
// escaped so that byte order of keys is component-wise order of the values:
// 0x00 becomes 0x00 0xff and each string ends with 0x00 0x01.
//
//	n <node>                        node record
//	e <from> <type> <to>            edge record: the primary copy, and the
//	                                out index in key order (tombstones too)
//	l <from> <type> <inv> <to>      out index newest first (live edges)
//	r <to> <type> <from>            in index in key order (live edges); holds
//	                                a copy of the edge only for types with a
//	                                reverse index, else it is empty and only
//	                                lets a node delete find edges into it
//	s <to> <type> <inv> <from>      in index newest first (reverse types)
//	x <expires> <type> <from> <to>  expiry queue of live edges with a TTL
//	o <node> <type> <dir>           a node's claim at an end its edge type
//	                                constrains (multiplicity): the version
//	                                and the target of its newest claim
//	p <node>                        the version of a node's newest purge:
//	                                edges at it up to that version are
//	                                removed and refused for good
//	t <node type>                   the version of a type's newest truncate:
//	                                nodes of the type whose upsert is not
//	                                after it read as deleted
//
// <node> is <node type> <node id>; <inv> is MaxUint64 minus the event time in
// microseconds, big-endian, so newer sorts first; <expires> is microseconds,
// big-endian.
const (
	tNode    = 'n'
	tEdge    = 'e'
	tOutTime = 'l'
	tIn      = 'r'
	tInTime  = 's'
	tExpiry  = 'x'
	tClaim   = 'o'
	tPurge   = 'p'
	tTrunc   = 't'
)

func appendStr(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b = append(b, 0, 0xff)
			continue
		}
		b = append(b, s[i])
	}
	return append(b, 0, 1)
}

var errBadKey = errors.New("malformed key")

// readStr decodes one escaped string from the front of b.
func readStr(b []byte) (string, []byte, error) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			out = append(out, b[i])
			continue
		}
		if i+1 >= len(b) {
			return "", nil, errBadKey
		}
		switch b[i+1] {
		case 0xff:
			out = append(out, 0)
			i++
		case 1:
			return string(out), b[i+2:], nil
		default:
			return "", nil, errBadKey
		}
	}
	return "", nil, errBadKey
}

// strEnd returns the index of the terminator (0x00 0x01) of the escaped
// string at the front of b, -1 when there is none, and whether the string
// holds escaped bytes.
func strEnd(b []byte) (end int, escaped bool) {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], 0)
		if j < 0 || i+j+1 >= len(b) {
			return -1, false
		}
		i += j
		switch b[i+1] {
		case 1:
			return i, escaped
		case 0xff:
			escaped = true
			i += 2
		default:
			return -1, false
		}
	}
}

func appendNode(b []byte, k graph.NodeKey) []byte {
	return appendStr(appendStr(b, k.Type), k.ID)
}

func readNode(b []byte) (graph.NodeKey, []byte, error) {
	typ, rest, err := readStr(b)
	if err != nil {
		return graph.NodeKey{}, nil, err
	}
	id, rest, err := readStr(rest)
	if err != nil {
		return graph.NodeKey{}, nil, err
	}
	return graph.NodeKey{Type: typ, ID: id}, rest, nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func appendInv(b []byte, at int64) []byte {
	return binary.BigEndian.AppendUint64(b, math.MaxUint64-uint64(at))
}

func nodeKey(k graph.NodeKey) []byte { return appendNode([]byte{tNode}, k) }

func purgeKey(k graph.NodeKey) []byte { return appendNode([]byte{tPurge}, k) }

func truncKey(typ string) []byte { return appendStr([]byte{tTrunc}, typ) }

// encodeVer and decodeVer are a purge entry's value: event time in
// microseconds (8 bytes, big-endian) and position.
func encodeVer(at int64, pos graph.Pos) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+graph.PosLen), uint64(at)), pos[:]...)
}

func decodeVer(b []byte) (int64, graph.Pos, error) {
	var pos graph.Pos
	if len(b) != 8+graph.PosLen {
		return 0, pos, errBadKey
	}
	copy(pos[:], b[8:])
	return int64(binary.BigEndian.Uint64(b)), pos, nil
}

func edgeKey(k graph.EdgeKey) []byte {
	b := appendNode(make([]byte, 0, 64), k.From)
	return appendNode(appendStr(append([]byte{tEdge}, b...), k.Type), k.To)
}

// adjPrefix is the prefix of one node's adjacency of one type in one table.
func adjPrefix(table byte, node graph.NodeKey, edgeType string) []byte {
	return appendStr(appendNode([]byte{table}, node), edgeType)
}

func outTimeKey(k graph.EdgeKey, at int64) []byte {
	return appendNode(appendInv(adjPrefix(tOutTime, k.From, k.Type), at), k.To)
}

func inKey(k graph.EdgeKey) []byte {
	return appendNode(adjPrefix(tIn, k.To, k.Type), k.From)
}

func inTimeKey(k graph.EdgeKey, at int64) []byte {
	return appendNode(appendInv(adjPrefix(tInTime, k.To, k.Type), at), k.From)
}

func claimKey(node graph.NodeKey, edgeType string, dir graph.Direction) []byte {
	return append(adjPrefix(tClaim, node, edgeType), byte(dir))
}

func expiryKey(k graph.EdgeKey, expires int64) []byte {
	b := binary.BigEndian.AppendUint64([]byte{tExpiry}, uint64(expires))
	return appendNode(appendNode(appendStr(b, k.Type), k.From), k.To)
}

func readExpiryKey(b []byte) (graph.EdgeKey, int64, error) {
	if len(b) < 9 || b[0] != tExpiry {
		return graph.EdgeKey{}, 0, errBadKey
	}
	exp := int64(binary.BigEndian.Uint64(b[1:9]))
	typ, rest, err := readStr(b[9:])
	if err != nil {
		return graph.EdgeKey{}, 0, err
	}
	from, rest, err := readNode(rest)
	if err != nil {
		return graph.EdgeKey{}, 0, err
	}
	to, rest, err := readNode(rest)
	if err != nil || len(rest) != 0 {
		return graph.EdgeKey{}, 0, errBadKey
	}
	return graph.EdgeKey{Type: typ, From: from, To: to}, exp, nil
}

// readInKey decodes the edge type and from node of an 'r' key that follows
// the given node's prefix 'r' <to>.
func readInSuffix(b []byte) (string, graph.NodeKey, error) {
	typ, rest, err := readStr(b)
	if err != nil {
		return "", graph.NodeKey{}, err
	}
	from, rest, err := readNode(rest)
	if err != nil || len(rest) != 0 {
		return "", graph.NodeKey{}, errBadKey
	}
	return typ, from, nil
}

// prefixEnd returns the smallest key greater than every key with prefix p:
// trailing 0xff bytes are dropped and the last remaining byte incremented.
// Every prefix here starts with a table byte below 0xff, so one remains.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for len(end) > 0 && end[len(end)-1] == 0xff {
		end = end[:len(end)-1]
	}
	end[len(end)-1]++
	return end
}
