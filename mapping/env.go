package mapping

import (
	"time"

	"github.com/rtgraph/rtgraph/normalize"
)

// The variables of the expression language (see the package documentation).
const (
	varID         = "id"
	varKind       = "kind"
	varOp         = "op"
	varEntityType = "entity_type"
	varKey        = "key"
	varKeyFields  = "key_fields"
	varEventTime  = "event_time"
	varTopic      = "topic"
	varAfter      = "after"
	varBefore     = "before"
	varAttrs      = "attrs"
	varJoin       = "join"
	varMissed     = "missed"
)

// envTypes declares every variable with a value of its type: expressions
// are compiled against it, so a misspelt variable or a type error such as
// key + 1 fails at start-up.
var envTypes = map[string]any{
	varID: "", varKind: "", varOp: "", varEntityType: "", varKey: "", varTopic: "",
	varKeyFields: map[string]any{}, varEventTime: time.Time{},
	varAfter: map[string]any{}, varBefore: map[string]any{}, varAttrs: map[string]any{},
	varJoin: map[string]any{}, varMissed: []string{},
	fetchFunc: fetch,
}

// env is what every expression runs against: a map[string]any, which expr
// reads with one map lookup per variable (a struct would be read through
// reflection). One env is pooled per Map call and refilled for each event.
type env map[string]any

// uses is the set of scalar variables some expression of a topic reads.
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
	varID: useID, varKind: useKind, varOp: useOp, varEntityType: useEntityType,
	varKey: useKey, varEventTime: useEventTime, varTopic: useTopic, varMissed: useMissed,
}

func newEnv() env {
	v := make(env, len(envTypes))
	v[varJoin] = make(map[string]any, MaxJoinsPerRule)
	v[fetchFunc] = fetch
	return v
}

// set points the environment at e. Scalars are boxed (which allocates) only
// when u says some rule of the topic reads them.
func (v env) set(e *normalize.Envelope, u uses) {
	if u&useID != 0 {
		v[varID] = e.ID
	}
	if u&useKind != 0 {
		v[varKind] = string(e.Kind)
	}
	if u&useOp != 0 {
		v[varOp] = string(e.Op)
	}
	if u&useEntityType != 0 {
		v[varEntityType] = e.EntityType
	}
	if u&useKey != 0 {
		v[varKey] = e.Key
	}
	if u&useEventTime != 0 {
		v[varEventTime] = e.EventTime
	}
	if u&useTopic != 0 {
		v[varTopic] = e.Origin.Topic
	}
	// A nil map is stored as nil itself, not as a nil map[string]any inside
	// an interface, so that "before == nil" holds when there is no image.
	v.setMap(varKeyFields, e.KeyFields)
	v.setMap(varAfter, e.After)
	v.setMap(varBefore, e.Before)
	v.setMap(varAttrs, e.Attributes)
}

func (v env) setMap(name string, m map[string]any) {
	if m == nil {
		v[name] = nil
		return
	}
	v[name] = m
}

// join is the map join.<name> reads.
func (v env) join() map[string]any { return v[varJoin].(map[string]any) }

// reset drops every reference to the event, so that a pooled env does not
// keep event data alive; the join map and fetch stay.
func (v env) reset() {
	join := v.join()
	clear(join)
	clear(v)
	v[varJoin] = join
	v[fetchFunc] = fetch
}
