package graph

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Frequency-cap counts: how many impression edges of one type a user got
// towards each of some targets (campaigns, creatives, advertisers…) over
// sliding windows. They are kept beside the graph, in the same store, as one
// row per impression event rather than as counters: a row is keyed by its
// identity, so writing it again changes nothing, which is what makes counts
// exact under redelivery (Cassandra counter columns are neither idempotent
// nor expiring, and are not used).
//
// # Identity
//
// An impression is identified by (user, edge type, target, event time,
// event id). Kafka redelivery, a replay after a restart and an upstream that
// publishes the same event twice all resend the same identity and are
// counted once. Two events with the same event id but different event times
// are two impressions: an upstream that re-stamps the time of a republished
// event defeats deduplication, which is why the event time must be the
// source's (the request time of a request log), never the publish time.
// One event that names several targets (a campaign and its creative) is one
// impression per target.
//
// # Windows
//
// A window W at as_of T counts the impressions whose event time t satisfies
// T−W < t ≤ T: the end is included, the start is not, so consecutive windows
// of equal width partition time. Event times are kept to the microsecond and
// T is truncated to the microsecond, so a window is exact to the
// microsecond. Windows are whole seconds from MinWindow (1m) to MaxWindow
// (7d); DefaultWindows are 1m, 5m, 1h, 1d and 7d. T defaults to the store's
// clock at the time of the read.
//
// # Retention, lateness and the as_of lookback
//
// Impressions are kept for Retention = MaxWindow + Lateness after their
// event time (Cassandra TTL; the embedded store sweeps them), so:
//
//   - an impression arriving up to Lateness after it left the longest window
//     is still stored, and counted by every window that contains it;
//   - an impression whose event time is at or before now−Retention when it
//     is written is dropped (RecordResult.TooOld, and a metric): no valid
//     query can see it;
//   - an impression more than Lateness ahead of the writer's clock is dropped
//     too (RecordResult.TooNew): a producer clock that far off would
//     otherwise hold a user's caps for as long as the skew;
//   - a query is valid only if every window it asks for lies inside the
//     retained data: T−W ≥ now−Retention for its longest W. With the default
//     Lateness of 1h, a 7d window can be read as of up to one hour ago, a 1d
//     window as of up to 6d1h ago. This is what makes every answer exact:
//     nothing a valid window covers can have expired.
//
// # How impressions reach the store
//
// The mapping turns an impression event into edge upserts of a counted edge
// type (CountConfig.EdgeTypes, e.g. impressed: user → campaign and user →
// creative). The ingestion pipeline passes each envelope's mutations, before
// folding a batch (folding keeps one upsert per edge and would lose
// repeated impressions), to [CountRules.Impressions] with the envelope's
// idempotency id, and writes the result with a [CountWriter] alongside
// Writer.Apply, marking offsets only once both are acknowledged.

// Window and size limits of the count API.
const (
	MinWindow = time.Minute
	MaxWindow = 7 * 24 * time.Hour
	// MaxCountTargets bounds the targets of one CountQuery.
	MaxCountTargets = 100
	// MaxCountWindows bounds the windows of one CountQuery.
	MaxCountWindows = 16
	// MaxEventIDLen bounds an impression's event id, in bytes.
	MaxEventIDLen = 256
	// MaxImpressionsPerCall bounds one RecordImpressions call.
	MaxImpressionsPerCall = 10000
	// MaxCountRows bounds the impression rows one Counts call may read. A
	// read that would go beyond fails with ErrCountTooLarge rather than
	// taking unbounded time: one user would need over a million impressions
	// within the longest window asked for, towards the targets asked for.
	MaxCountRows = 1_000_000
)

// DefaultWindows are the windows a count read reports when it names none.
func DefaultWindows() []time.Duration {
	return []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 24 * time.Hour, MaxWindow}
}

// Count errors. Both are permanent.
var (
	// ErrInvalidImpression is wrapped by RecordImpressions errors about an
	// impression that cannot be stored (empty id, unknown or uncounted edge
	// type, wrong node types, …). Nothing of the call is written.
	ErrInvalidImpression = errors.New("graph: invalid impression")
	// ErrCountTooLarge means a Counts call would read more than
	// MaxCountRows rows.
	ErrCountTooLarge = errors.New("graph: count read too large")
	// ErrInvalidCountConfig is wrapped by CountConfig validation errors.
	ErrInvalidCountConfig = errors.New("graph: invalid count config")
)

// Impression is one impression event towards one target.
type Impression struct {
	User      NodeKey
	EdgeType  string
	Target    NodeKey
	EventID   string
	EventTime time.Time
}

// RecordResult says what a RecordImpressions call did with its impressions.
// Accepted impressions are stored (a duplicate of a stored one is accepted
// again and changes nothing); the others were dropped (see the package
// comment on retention).
type RecordResult struct {
	Accepted int
	TooOld   int
	TooNew   int
}

// CountWriter stores impressions. The ingestion pipeline calls it.
//
// RecordImpressions is safe for concurrent use and idempotent: recording
// the same impressions again, in any order and any batching, leaves the same
// counts. It validates every impression first; if one is invalid nothing is
// written and the error wraps ErrInvalidImpression. It returns nil only when
// every accepted impression is durably acknowledged; on error some may be
// stored and the caller retries the whole call, which is safe. Transient
// failures wrap *RetryableError; a cancelled ctx abandons the call with a
// retryable error; after Close it returns ErrClosed. At most
// MaxImpressionsPerCall impressions per call.
type CountWriter interface {
	RecordImpressions(ctx context.Context, imps []Impression) (RecordResult, error)
}

// CountQuery asks for one user's impressions of one edge type towards each
// of Targets (1 to MaxCountTargets, distinct), in each of Windows (1 to
// MaxCountWindows, distinct, whole seconds in [MinWindow, MaxWindow]), as of
// AsOf (zero: the store's clock now; truncated to the microsecond).
type CountQuery struct {
	User     NodeKey
	EdgeType string
	Targets  []NodeKey
	Windows  []time.Duration
	AsOf     time.Time
}

// TargetCounts is one target's counts, Counts[i] in CountResult.Windows[i].
type TargetCounts struct {
	Target NodeKey
	Counts []int64
}

// CountResult answers a CountQuery: AsOf is the instant the windows end at
// (UTC, microseconds), Windows are the query's, and Targets holds one entry
// per query target, in the query's order.
type CountResult struct {
	AsOf    time.Time
	Windows []time.Duration
	Targets []TargetCounts
}

// CountReader answers count queries. The API calls it.
//
// Counts is safe for concurrent use. It reads one partition: every target
// and every window come from one read of the user's impressions of the edge
// type, so all counts of a result are from the same state. Errors: an
// invalid query wraps ErrInvalidQuery; ErrCountTooLarge when more than
// MaxCountRows rows would be read; transient failures wrap *RetryableError;
// a cancelled ctx gives a retryable error; after Close, ErrClosed.
type CountReader interface {
	Counts(ctx context.Context, q CountQuery) (CountResult, error)
}

// CountPurger removes a user's impressions, for a privacy request (the
// counts side of OpPurgeNode).
//
// PurgeUser removes every impression of user, of every counted edge type
// and target, whose event time is at or before through, and returns how
// many it removed (-1 when the backend deletes without reading and cannot
// tell). Impressions of later event times are kept. Safe for concurrent
// use; errors follow the retryable/permanent rule of CountReader.
type CountPurger interface {
	PurgeUser(ctx context.Context, user NodeKey, through time.Time) (int, error)
}

// CountStore is a backend's whole count implementation: what the
// conformance suite (graph/storetest.RunCounts) tests.
type CountStore interface {
	CountWriter
	CountReader
	CountPurger
	// Close stops the count store's background work. It does not close
	// the graph store it shares storage with. Later calls fail with
	// ErrClosed.
	Close() error
}

// CountConfig is the `counts:` configuration shared by both backends and
// the pipeline. Defaults are in DefaultCountConfig.
type CountConfig struct {
	// EdgeTypes are the edge types whose upserts are impressions: from a
	// user-like node to a target. Each must be declared in the graph
	// schema. Default [impressed] (verticals/streaming/graph/ads.yaml).
	EdgeTypes []string `yaml:"edge_types"`
	// Lateness is how late (after leaving the longest window) an impression
	// may arrive and still be stored, how far ahead of the clock its event
	// time may be, and how far back an as_of may reach for a 7d window.
	// Retention is MaxWindow + Lateness. Default 1h; 0 to 24h, whole seconds.
	Lateness time.Duration `yaml:"lateness"`
}

// DefaultCountConfig returns the defaults.
func DefaultCountConfig() CountConfig {
	return CountConfig{EdgeTypes: []string{"impressed"}, Lateness: time.Hour}
}

// Validate names the first field that is not acceptable.
func (c CountConfig) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: counts.%s: %s", ErrInvalidCountConfig, field, fmt.Sprintf(format, args...))
	}
	if len(c.EdgeTypes) == 0 {
		return bad("edge_types", "must name at least one edge type")
	}
	seen := map[string]bool{}
	for _, e := range c.EdgeTypes {
		if msg := checkName(e); msg != "" {
			return bad("edge_types", "%q: %s", e, msg)
		}
		if seen[e] {
			return bad("edge_types", "%q listed twice", e)
		}
		seen[e] = true
	}
	switch {
	case c.Lateness < 0 || c.Lateness > 24*time.Hour:
		return bad("lateness", "%s: must be between 0 and 24h", c.Lateness)
	case c.Lateness%time.Second != 0:
		return bad("lateness", "%s: must be whole seconds", c.Lateness)
	}
	return nil
}

// Retention is how long after its event time an impression is kept.
func (c CountConfig) Retention() time.Duration { return MaxWindow + c.Lateness }

// CountRules are a CountConfig checked against a graph schema: the rules
// both backends apply to writes and reads, and the extraction the pipeline
// uses. Immutable and safe for concurrent use.
type CountRules struct {
	cfg     CountConfig
	schema  *Schema
	counted map[string]*EdgeType
}

// NewCountRules validates cfg and checks that every counted edge type is
// declared in schema.
func NewCountRules(cfg CountConfig, schema *Schema) (*CountRules, error) {
	if schema == nil {
		return nil, errors.New("graph: count rules: nil schema")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &CountRules{cfg: cfg, schema: schema, counted: make(map[string]*EdgeType, len(cfg.EdgeTypes))}
	r.cfg.EdgeTypes = slices.Clone(cfg.EdgeTypes)
	for _, name := range cfg.EdgeTypes {
		et, ok := schema.EdgeType(name)
		if !ok {
			return nil, fmt.Errorf("%w: counts.edge_types: %q is not an edge type of the graph schema (declared: %s)",
				ErrInvalidCountConfig, name, strings.Join(schema.EdgeTypes(), ", "))
		}
		r.counted[name] = et
	}
	return r, nil
}

// Config returns the configuration the rules were built from.
func (r *CountRules) Config() CountConfig {
	c := r.cfg
	c.EdgeTypes = slices.Clone(r.cfg.EdgeTypes)
	return c
}

// Retention is MaxWindow + Lateness.
func (r *CountRules) Retention() time.Duration { return r.cfg.Retention() }

// Counted reports whether upserts of edgeType are impressions.
func (r *CountRules) Counted(edgeType string) bool {
	_, ok := r.counted[edgeType]
	return ok
}

// Impressions appends to dst one impression per edge upsert of a counted
// type among muts, all with eventID (the envelope's idempotency id), and
// returns dst. muts are the mutations of one envelope, as the mapping
// returns them (already checked by the schema), before any folding.
func (r *CountRules) Impressions(eventID string, muts []Mutation, dst []Impression) []Impression {
	for _, m := range muts {
		if m.Op != OpUpsertEdge || !r.Counted(m.Edge.Type) {
			continue
		}
		dst = append(dst, Impression{User: m.Edge.From, EdgeType: m.Edge.Type, Target: m.Edge.To, EventID: eventID, EventTime: m.EventTime})
	}
	return dst
}

// CheckImpressions validates imps and sorts them into kept and dropped at
// the writer's clock now. It returns the impressions to store, normalised
// (event time UTC, truncated to the microsecond), or an error wrapping
// ErrInvalidImpression naming the first invalid one. Backends call it first.
func (r *CountRules) CheckImpressions(imps []Impression, now time.Time) ([]Impression, RecordResult, error) {
	if len(imps) > MaxImpressionsPerCall {
		return nil, RecordResult{}, fmt.Errorf("%w: %d impressions in one call, at most %d", ErrInvalidImpression, len(imps), MaxImpressionsPerCall)
	}
	oldest := now.Add(-r.Retention()) // kept: strictly after
	newest := now.Add(r.cfg.Lateness) // kept: at or before
	keep := make([]Impression, 0, len(imps))
	var res RecordResult
	for i, im := range imps {
		if err := r.checkImpression(&im); err != nil {
			return nil, RecordResult{}, fmt.Errorf("%w: impression %d: %s", ErrInvalidImpression, i, err)
		}
		switch {
		case !im.EventTime.After(oldest):
			res.TooOld++
		case im.EventTime.After(newest):
			res.TooNew++
		default:
			res.Accepted++
			keep = append(keep, im)
		}
	}
	return keep, res, nil
}

func (r *CountRules) checkImpression(im *Impression) error {
	et, ok := r.counted[im.EdgeType]
	if !ok {
		return fmt.Errorf("edge type %q is not counted (counts.edge_types: %s)", im.EdgeType, strings.Join(r.cfg.EdgeTypes, ", "))
	}
	if err := checkCountNode(im.User, "user"); err != nil {
		return err
	}
	if !et.AllowsFrom(im.User.Type) {
		return fmt.Errorf("edge type %q does not start at node type %q (want one of %v)", et.Name, im.User.Type, et.From)
	}
	if err := checkCountNode(im.Target, "target"); err != nil {
		return err
	}
	if !et.AllowsTo(im.Target.Type) {
		return fmt.Errorf("edge type %q does not end at node type %q (want one of %v)", et.Name, im.Target.Type, et.To)
	}
	switch {
	case im.EventID == "":
		return errors.New("empty event id")
	case len(im.EventID) > MaxEventIDLen:
		return fmt.Errorf("event id is %d bytes, at most %d", len(im.EventID), MaxEventIDLen)
	case im.EventTime.IsZero():
		return errors.New("event time is zero")
	case im.EventTime.Before(minEventTime) || im.EventTime.After(maxEventTime):
		return fmt.Errorf("event time %s outside 1970..9999", im.EventTime.Format(time.RFC3339))
	}
	im.EventTime = im.EventTime.UTC().Truncate(time.Microsecond)
	return nil
}

// checkCountNode checks a node key of an impression or a count query. The
// node type itself is checked against the edge type by the caller.
func checkCountNode(k NodeKey, which string) error {
	switch {
	case k.Type == "":
		return fmt.Errorf("%s node type is empty", which)
	case k.ID == "":
		return fmt.Errorf("%s id is empty", which)
	case len(k.ID) > MaxIDLen:
		return fmt.Errorf("%s id is %d bytes, at most %d", which, len(k.ID), MaxIDLen)
	}
	return nil
}

// CountPlan is a checked CountQuery, ready to be read: backends read the
// impressions of (User, EdgeType) towards each target with event times in
// (Since, AsOf] and pass each one's event time to Add.
type CountPlan struct {
	Query CountQuery // as asked, AsOf set to the instant used
	// AsOf and Since are microseconds since the Unix epoch: the read covers
	// event times t with Since < t ≤ AsOf, Since = AsOf − the longest
	// window asked for.
	AsOf, Since int64
	// starts[i] is AsOf − Windows[i] in microseconds (exclusive).
	starts []int64
}

// Plan checks q at the reader's clock now and returns its plan. Errors wrap
// ErrInvalidQuery and say what is wrong.
func (r *CountRules) Plan(q CountQuery, now time.Time) (*CountPlan, error) {
	bad := func(format string, args ...any) (*CountPlan, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidQuery, fmt.Sprintf(format, args...))
	}
	et, ok := r.counted[q.EdgeType]
	if !ok {
		return bad("edge type %q is not counted (counted: %s)", q.EdgeType, strings.Join(r.cfg.EdgeTypes, ", "))
	}
	if err := checkCountNode(q.User, "user"); err != nil {
		return bad("%s", err)
	}
	if !et.AllowsFrom(q.User.Type) {
		return bad("edge type %q does not start at node type %q", et.Name, q.User.Type)
	}
	switch {
	case len(q.Targets) == 0:
		return bad("no targets")
	case len(q.Targets) > MaxCountTargets:
		return bad("%d targets, at most %d", len(q.Targets), MaxCountTargets)
	case len(q.Windows) == 0:
		return bad("no windows")
	case len(q.Windows) > MaxCountWindows:
		return bad("%d windows, at most %d", len(q.Windows), MaxCountWindows)
	}
	// Duplicates: a scan while the targets are few, a map past that.
	var seen map[NodeKey]struct{}
	if len(q.Targets) > 32 {
		seen = make(map[NodeKey]struct{}, len(q.Targets))
	}
	for i, t := range q.Targets {
		if err := checkCountNode(t, "target"); err != nil {
			return bad("%s", err)
		}
		if !et.AllowsTo(t.Type) {
			return bad("edge type %q does not end at node type %q (target %s)", et.Name, t.Type, t)
		}
		dup := false
		if seen != nil {
			_, dup = seen[t]
			seen[t] = struct{}{}
		} else {
			dup = slices.Contains(q.Targets[:i], t)
		}
		if dup {
			return bad("target %s listed twice", t)
		}
	}
	var longest time.Duration
	for i, w := range q.Windows {
		switch {
		case w < MinWindow || w > MaxWindow:
			return bad("window %s: must be between %s and %s", w, MinWindow, MaxWindow)
		case w%time.Second != 0:
			return bad("window %s: must be whole seconds", w)
		case slices.Contains(q.Windows[:i], w):
			return bad("window %s listed twice", w)
		}
		longest = max(longest, w)
	}
	asOf := q.AsOf
	if asOf.IsZero() {
		asOf = now
	}
	if asOf.Before(minEventTime) || asOf.After(maxEventTime) {
		return bad("as_of %s outside 1970..9999", asOf.Format(time.RFC3339))
	}
	asOf = asOf.UTC().Truncate(time.Microsecond)
	horizon := now.Add(-r.Retention())
	if asOf.Add(-longest).Before(horizon) {
		return bad("as_of %s with window %s starts before the retained data (impressions are kept %s; the earliest valid as_of for this window is %s)",
			asOf.Format(time.RFC3339Nano), longest, r.Retention(), horizon.Add(longest).UTC().Format(time.RFC3339Nano))
	}
	q.AsOf = asOf
	p := &CountPlan{Query: q, AsOf: asOf.UnixMicro(), Since: asOf.UnixMicro() - longest.Microseconds(), starts: make([]int64, len(q.Windows))}
	for i, w := range q.Windows {
		p.starts[i] = p.AsOf - w.Microseconds()
	}
	return p, nil
}

// NewResult returns the result of the plan with every count zero.
func (p *CountPlan) NewResult() CountResult {
	res := CountResult{AsOf: p.Query.AsOf, Windows: p.Query.Windows, Targets: make([]TargetCounts, len(p.Query.Targets))}
	all := make([]int64, len(p.Query.Targets)*len(p.starts))
	for i, t := range p.Query.Targets {
		res.Targets[i] = TargetCounts{Target: t, Counts: all[i*len(p.starts) : (i+1)*len(p.starts) : (i+1)*len(p.starts)]}
	}
	return res
}

// AddRange adds n impressions whose event times all lie in [lo, hi]
// (microseconds) to the windows of counts, and reports true, when every
// window counts all of that range or none of it and the range ends at or
// before AsOf; otherwise it adds nothing and reports false, and the caller
// counts those impressions one by one with Add.
func (p *CountPlan) AddRange(counts []int64, lo, hi, n int64) bool {
	if hi > p.AsOf || lo > hi {
		return false
	}
	for _, s := range p.starts {
		if lo <= s && hi > s { // the window starts inside the range
			return false
		}
	}
	for i, s := range p.starts {
		if lo > s {
			counts[i] += n
		}
	}
	return true
}

// Add counts one impression with event time t (microseconds) into counts,
// a TargetCounts.Counts of a result of this plan.
func (p *CountPlan) Add(counts []int64, t int64) {
	p.AddN(counts, t, 1)
}

// AddN counts n impressions with event time t (microseconds) into counts,
// as Add does one.
func (p *CountPlan) AddN(counts []int64, t, n int64) {
	if t > p.AsOf || n == 0 {
		return
	}
	for i, s := range p.starts {
		if t > s {
			counts[i] += n
		}
	}
}

// RunEnd is the last event time, at or after t, that every window counts
// exactly when it counts t: the earliest window start at or after t, or
// AsOf. A reader in time order counts the impressions from t to RunEnd(t)
// and adds them with one AddN.
func (p *CountPlan) RunEnd(t int64) int64 {
	end := p.AsOf
	for _, s := range p.starts {
		if s >= t && s < end {
			end = s
		}
	}
	return end
}
