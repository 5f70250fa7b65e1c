package export

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/rtgraph/rtgraph/graph"
)

// Column is one Parquet column of a type's file, as the manifest lists it.
type Column struct {
	Name string `json:"name"`
	// Type is the Parquet type: string, int64, double, boolean or
	// timestamp_us_utc (timestamp, microseconds, adjusted to UTC).
	Type     string `json:"type"`
	Optional bool   `json:"optional"`
	// Property is the graph property the column holds, when it holds one
	// (the column's name differs from it only when it would collide with a
	// fixed column).
	Property string `json:"property,omitempty"`
}

// Parquet type names of Column.Type.
const (
	colString    = "string"
	colInt64     = "int64"
	colDouble    = "double"
	colBoolean   = "boolean"
	colTimestamp = "timestamp_us_utc"
)

// ExtraPropsColumn holds, as a JSON object, the properties of a row its type
// does not declare (null when there are none).
const ExtraPropsColumn = "extra_props"

var (
	nodeFixed = []Column{
		{Name: "id", Type: colString},
		{Name: "event_time", Type: colTimestamp},
	}
	edgeFixed = []Column{
		{Name: "from_type", Type: colString},
		{Name: "from_id", Type: colString},
		{Name: "to_type", Type: colString},
		{Name: "to_id", Type: colString},
		{Name: "event_time", Type: colTimestamp},
		{Name: "expires_at", Type: colTimestamp, Optional: true},
	}
)

// layout is the columns of one type's Parquet file: the fixed ones, one per
// declared property (sorted by name), then extra_props.
type layout struct {
	cols     []Column
	props    []string // declared property names, in column order
	types    map[string]graph.PropType
	firstOpt int // index of the first property column
	schema   *parquet.Schema
}

func newLayout(name string, fixed []Column, declared map[string]graph.PropType) (*layout, error) {
	l := &layout{types: declared, firstOpt: len(fixed)}
	l.cols = slices.Clone(fixed)
	taken := map[string]bool{ExtraPropsColumn: true}
	for _, c := range fixed {
		taken[c.Name] = true
	}
	names := make([]string, 0, len(declared))
	for p := range declared {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, p := range names {
		col := p
		for taken[col] {
			col = "prop_" + col
		}
		taken[col] = true
		var typ string
		switch declared[p] {
		case graph.PropString:
			typ = colString
		case graph.PropInt:
			typ = colInt64
		case graph.PropFloat:
			typ = colDouble
		case graph.PropBool:
			typ = colBoolean
		case graph.PropTime:
			typ = colTimestamp
		default:
			return nil, fmt.Errorf("export: %s: property %q has unsupported type %s", name, p, declared[p])
		}
		l.cols = append(l.cols, Column{Name: col, Type: typ, Optional: true, Property: p})
		l.props = append(l.props, p)
	}
	l.cols = append(l.cols, Column{Name: ExtraPropsColumn, Type: colString, Optional: true})
	fields := make([]parquet.Field, len(l.cols))
	for i, c := range l.cols {
		var n parquet.Node
		switch c.Type {
		case colString:
			n = parquet.String()
		case colInt64:
			n = parquet.Int(64)
		case colDouble:
			n = parquet.Leaf(parquet.DoubleType)
		case colBoolean:
			n = parquet.Leaf(parquet.BooleanType)
		case colTimestamp:
			n = parquet.Timestamp(parquet.Microsecond)
		}
		if c.Optional {
			n = parquet.Optional(n)
		}
		fields[i] = field{Node: n, name: c.Name}
	}
	l.schema = parquet.NewSchema(name, orderedGroup(fields))
	return l, nil
}

// propValues splits props into the Parquet values of the declared property
// columns (appended to row from column index l.firstOpt) and the JSON text
// of the undeclared ones (nil when none). A declared property whose value is
// not of its declared type (which a conforming store never returns) goes to
// extra_props rather than being lost.
func (l *layout) appendProps(row parquet.Row, props graph.Props) (parquet.Row, error) {
	var extra map[string]any
	for k, v := range props {
		if _, ok := l.types[k]; !ok {
			if extra == nil {
				extra = map[string]any{}
			}
			extra[k] = v
		}
	}
	for i, p := range l.props {
		col := l.firstOpt + i
		v, present := props[p]
		if !present || v == nil {
			row = append(row, parquet.NullValue().Level(0, 0, col))
			continue
		}
		pv, ok := propValue(l.types[p], v)
		if !ok {
			if extra == nil {
				extra = map[string]any{}
			}
			extra[p] = v
			row = append(row, parquet.NullValue().Level(0, 0, col))
			continue
		}
		row = append(row, pv.Level(0, 1, col))
	}
	col := l.firstOpt + len(l.props)
	if extra == nil {
		return append(row, parquet.NullValue().Level(0, 0, col)), nil
	}
	b, err := json.Marshal(extra)
	if err != nil {
		return nil, fmt.Errorf("export: encode extra properties: %w", err)
	}
	return append(row, parquet.ByteArrayValue(b).Level(0, 1, col)), nil
}

func propValue(t graph.PropType, v any) (parquet.Value, bool) {
	switch t {
	case graph.PropString:
		if s, ok := v.(string); ok {
			return parquet.ByteArrayValue([]byte(s)), true
		}
	case graph.PropInt:
		if i, ok := v.(int64); ok {
			return parquet.Int64Value(i), true
		}
	case graph.PropFloat:
		switch x := v.(type) {
		case float64:
			return parquet.DoubleValue(x), true
		case int64:
			return parquet.DoubleValue(float64(x)), true
		}
	case graph.PropBool:
		if b, ok := v.(bool); ok {
			return parquet.BooleanValue(b), true
		}
	case graph.PropTime:
		if s, ok := v.(string); ok {
			if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return parquet.Int64Value(tm.UnixMicro()), true
			}
		}
	}
	return parquet.Value{}, false
}

func strValue(s string, col int) parquet.Value {
	return parquet.ByteArrayValue([]byte(s)).Level(0, 0, col)
}

func timeValue(t time.Time, col int) parquet.Value {
	return parquet.Int64Value(t.UnixMicro()).Level(0, 0, col)
}

func (l *layout) nodeRow(row parquet.Row, n graph.Node) (parquet.Row, error) {
	row = append(row[:0], strValue(n.Key.ID, 0), timeValue(n.EventTime, 1))
	return l.appendProps(row, n.Props)
}

func (l *layout) edgeRow(row parquet.Row, e graph.Edge) (parquet.Row, error) {
	row = append(row[:0],
		strValue(e.Key.From.Type, 0), strValue(e.Key.From.ID, 1),
		strValue(e.Key.To.Type, 2), strValue(e.Key.To.ID, 3),
		timeValue(e.EventTime, 4))
	if e.ExpiresAt.IsZero() {
		row = append(row, parquet.NullValue().Level(0, 0, 5))
	} else {
		row = append(row, parquet.Int64Value(e.ExpiresAt.UnixMicro()).Level(0, 1, 5))
	}
	return l.appendProps(row, e.Props)
}

// orderedGroup is a Parquet group whose columns keep the order given
// (parquet.Group sorts them by name).
type orderedGroup []parquet.Field

func (g orderedGroup) ID() int { return 0 }
func (g orderedGroup) String() string {
	m := parquet.Group{}
	for _, f := range g {
		m[f.Name()] = f
	}
	return m.String()
}
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return reflect.TypeFor[map[string]any]() }

// field names a node in an orderedGroup.
type field struct {
	parquet.Node
	name string
}

func (f field) Name() string { return f.name }

func (f field) Value(base reflect.Value) reflect.Value {
	if base.Kind() == reflect.Map {
		return base.MapIndex(reflect.ValueOf(f.name))
	}
	return reflect.Value{}
}
