package mapping

import (
	"time"

	"github.com/rtgraph/rtgraph/normalize"
)

// env is what every expression sees. Field names are the variables of the
// expression language (see the package documentation); a struct rather than
// a map lets expr resolve them at compile time, so a misspelt variable is a
// start-up error and a run does no map lookups for them.
type env struct {
	ID         string                    `expr:"id"`
	Kind       string                    `expr:"kind"`
	Op         string                    `expr:"op"`
	EntityType string                    `expr:"entity_type"`
	Key        string                    `expr:"key"`
	KeyFields  map[string]any            `expr:"key_fields"`
	EventTime  time.Time                 `expr:"event_time"`
	Topic      string                    `expr:"topic"`
	After      map[string]any            `expr:"after"`
	Before     map[string]any            `expr:"before"`
	Attrs      map[string]any            `expr:"attrs"`
	Join       map[string]map[string]any `expr:"join"`
	Missed     []string                  `expr:"missed"`
}

// set points the environment at e. The join map is kept (cleared) so that a
// pooled env allocates it once.
func (v *env) set(e *normalize.Envelope) {
	v.ID = e.ID
	v.Kind = string(e.Kind)
	v.Op = string(e.Op)
	v.EntityType = e.EntityType
	v.Key = e.Key
	v.KeyFields = e.KeyFields
	v.EventTime = e.EventTime
	v.Topic = e.Origin.Topic
	v.After = e.After
	v.Before = e.Before
	v.Attrs = e.Attributes
	clear(v.Join)
	v.Missed = v.Missed[:0]
}

// reset drops every reference to the envelope so a pooled env does not keep
// event data alive.
func (v *env) reset() {
	join, missed := v.Join, v.Missed[:0]
	clear(join)
	clear(v.Missed[:cap(v.Missed)])
	*v = env{Join: join, Missed: missed}
}
