package mapping

import (
	"github.com/rtgraph/rtgraph/normalize"
)

// env is what every expression sees. Field names are the variables of the
// expression language (see the package documentation); a struct rather than
// a map lets expr resolve them at compile time, so a misspelt variable is a
// start-up error and a run does no map lookups for them.
//
// Scalars are held as any, boxed once per Map call and only when some rule
// reads them (uses): expr reads struct fields through reflection, which
// would otherwise copy a string or a time.Time into a new interface value
// on every read. Maps are held as maps, which reflection hands out without
// copying.
type env struct {
	ID         any            `expr:"id"`
	Kind       any            `expr:"kind"`
	Op         any            `expr:"op"`
	EntityType any            `expr:"entity_type"`
	Key        any            `expr:"key"`
	KeyFields  map[string]any `expr:"key_fields"`
	EventTime  any            `expr:"event_time"`
	Topic      any            `expr:"topic"`
	After      map[string]any `expr:"after"`
	Before     map[string]any `expr:"before"`
	Attrs      map[string]any `expr:"attrs"`
	Join       map[string]any `expr:"join"`   // name → map[string]any; absent on a miss
	Missed     any            `expr:"missed"` // []string
	// Fetch is fetch, the compiled form of every field and index access.
	// Set once; reset keeps it.
	Fetch func(from, key any) any `expr:"__rtgraph_fetch"`
}

// uses is the set of scalar variables some expression reads.
type uses uint16

const (
	useID uses = 1 << iota
	useKind
	useOp
	useEntityType
	useKey
	useEventTime
	useTopic
	useMissed
)

var useOf = map[string]uses{
	"id": useID, "kind": useKind, "op": useOp, "entity_type": useEntityType,
	"key": useKey, "event_time": useEventTime, "topic": useTopic, "missed": useMissed,
}

// set points the environment at e, boxing only the scalars in u.
func (v *env) set(e *normalize.Envelope, u uses) {
	if u&useID != 0 {
		v.ID = e.ID
	}
	if u&useKind != 0 {
		v.Kind = string(e.Kind)
	}
	if u&useOp != 0 {
		v.Op = string(e.Op)
	}
	if u&useEntityType != 0 {
		v.EntityType = e.EntityType
	}
	if u&useKey != 0 {
		v.Key = e.Key
	}
	if u&useEventTime != 0 {
		v.EventTime = e.EventTime
	}
	if u&useTopic != 0 {
		v.Topic = e.Origin.Topic
	}
	v.KeyFields = e.KeyFields
	v.After = e.After
	v.Before = e.Before
	v.Attrs = e.Attributes
}

// reset drops every reference to the envelope so that a pooled env does
// not keep event data alive; the join map is kept (cleared) for reuse.
func (v *env) reset() {
	join := v.Join
	clear(join)
	*v = env{Join: join, Fetch: fetch}
}
