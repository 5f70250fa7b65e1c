package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
)

// Byte order of encoded node keys must be the order of (type, id), or key
// order pages and cursors would be wrong; ids may hold any byte.
func TestNodeKeyOrderProperty(t *testing.T) {
	str := rapid.StringOfN(rapid.SampledFrom([]rune{0, 1, 'a', 'b', 0xff, 'z'}), 0, 6, -1)
	rapid.Check(t, func(rt *rapid.T) {
		a := graph.NodeKey{Type: str.Draw(rt, "at"), ID: str.Draw(rt, "aid")}
		b := graph.NodeKey{Type: str.Draw(rt, "bt"), ID: str.Draw(rt, "bid")}
		ea, eb := appendNode(nil, a), appendNode(nil, b)
		if got, want := bytes.Compare(ea, eb), memstore.CompareNodeKeys(a, b); got != want {
			rt.Fatalf("compare(%q, %q) = %d, want %d", ea, eb, got, want)
		}
		back, rest, err := readNode(ea)
		if err != nil || back != a || len(rest) != 0 {
			rt.Fatalf("round trip %+v: %+v, %q, %v", a, back, rest, err)
		}
	})
}

func TestReadStrMalformed(t *testing.T) {
	for _, b := range [][]byte{{}, {'a'}, {'a', 0}, {'a', 0, 2}, {0, 0xfe}} {
		if _, _, err := readStr(b); !errors.Is(err, errBadKey) {
			t.Fatalf("readStr(%q): %v, want errBadKey", b, err)
		}
	}
}

func TestExpiryKeyRoundTrip(t *testing.T) {
	k := graph.EdgeKey{Type: "viewed", From: graph.NodeKey{Type: "user", ID: "u\x00"}, To: graph.NodeKey{Type: "item", ID: ""}}
	back, exp, err := readExpiryKey(expiryKey(k, 1234))
	if err != nil || back != k || exp != 1234 {
		t.Fatalf("round trip: %+v %d %v", back, exp, err)
	}
	for _, bad := range [][]byte{{tExpiry}, append(expiryKey(k, 1), 'x'), {tNode, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, err := readExpiryKey(bad); err == nil {
			t.Fatalf("readExpiryKey(%q) accepted", bad)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	cases := []struct{ in, want []byte }{
		{[]byte{'e', 'a', 0, 1}, []byte{'e', 'a', 0, 2}},
		{[]byte{'l', 0xff, 0xff}, []byte{'m'}},
		{[]byte{'x', 3, 0xff}, []byte{'x', 4}},
	}
	for _, c := range cases {
		if got := prefixEnd(c.in); !bytes.Equal(got, c.want) {
			t.Fatalf("prefixEnd(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRecordRoundTripAndMalformed(t *testing.T) {
	r := record{hasUp: true, upAt: 5, upPos: graph.PosUint64(7), expires: 9, props: []byte(`{"a":1}`),
		hasDel: true, delAt: 3, delPos: graph.PosUint64Pair(1, 2)}
	back, err := decodeRecord(r.encode())
	if err != nil || back.upAt != 5 || back.upPos != r.upPos || back.expires != 9 || back.delAt != 3 || back.delPos != r.delPos ||
		!back.hasUp || !back.hasDel || string(back.props) != `{"a":1}` {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	// A version 1 record (before positions) reads with zero positions.
	v1 := []byte{recordV1, flagUp | flagDel}
	for _, n := range []uint64{5, 9, 3} {
		v1 = binary.BigEndian.AppendUint64(v1, n)
	}
	v1 = append(v1, `{"a":1}`...)
	old, err := decodeRecord(v1)
	if err != nil || old.upAt != 5 || old.expires != 9 || old.delAt != 3 || !old.upPos.IsZero() || !old.delPos.IsZero() ||
		string(old.props) != `{"a":1}` {
		t.Fatalf("version 1 record: %+v %v", old, err)
	}
	good := r.encode()
	for name, b := range map[string][]byte{
		"short":       good[:10],
		"short v2":    good[:recordHeaderV1+4],
		"version":     append([]byte{3}, good[1:]...),
		"flags":       append([]byte{recordV2, 0x80}, good[2:]...),
		"empty value": {},
	} {
		if _, err := decodeRecord(b); !errors.Is(err, errBadRecord) {
			t.Fatalf("%s: %v, want errBadRecord", name, err)
		}
	}
}
