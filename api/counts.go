package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rtgraph/rtgraph/graph"
)

// Frequency-cap counts: GET /v1/counts/{type}/{id} and POST
// /v1/counts:batch, scope counts:read. See graph.CountReader for what a
// count means (a window W as of T counts impressions with event time in
// (T−W, T]) and openapi.yaml for the shapes and for what a client should do
// when the API is unavailable.

// MaxCountLookups caps the lookups of one POST /v1/counts:batch.
const MaxCountLookups = 100

// maxCapsPerLookup caps the caps of one lookup.
const maxCapsPerLookup = 2 * graph.MaxCountTargets

type capJSON struct {
	Target string  `json:"target"`
	Window string  `json:"window"`
	Max    jsonInt `json:"max"`
}

type capResultJSON struct {
	Target    string `json:"target"`
	Window    string `json:"window"`
	Max       int64  `json:"max"`
	Count     int64  `json:"count"`
	Allowed   bool   `json:"allowed"`
	Remaining int64  `json:"remaining"`
}

type targetCountsJSON struct {
	Target string           `json:"target"`
	Counts map[string]int64 `json:"counts"`
}

// countsResultJSON is one user's answer.
type countsResultJSON struct {
	User     string             `json:"user"`
	EdgeType string             `json:"edge_type"`
	AsOf     time.Time          `json:"as_of"`
	Windows  []string           `json:"windows"`
	Targets  []targetCountsJSON `json:"targets"`
	Caps     []capResultJSON    `json:"caps,omitempty"`
	// Allowed is true when every cap allows one more impression (and when
	// there are no caps).
	Allowed bool `json:"allowed"`
}

type countsResponse struct {
	countsResultJSON
	Watermark Watermark `json:"watermark"`
}

type countsBatchRequest struct {
	Lookups []countsLookupJSON `json:"lookups"`
}

type countsLookupJSON struct {
	User     string    `json:"user"`
	EdgeType string    `json:"edge_type"`
	Targets  []string  `json:"targets"`
	Windows  []string  `json:"windows"`
	AsOf     string    `json:"as_of"`
	Caps     []capJSON `json:"caps"`
}

type countsBatchResponse struct {
	Results   []countsResultJSON `json:"results"`
	Watermark Watermark          `json:"watermark"`
}

// countLookup is one parsed lookup: the store query and the caps to judge.
type countLookup struct {
	q    graph.CountQuery
	caps []parsedCap
}

type parsedCap struct {
	target graph.NodeKey
	window time.Duration
	max    int64
}

// withField names field in err when err is an *Error (the API's own).
func withField(err error, field string) error {
	var e *Error
	if errors.As(err, &e) {
		e.Field = field
	}
	return err
}

// parseNodeRef parses "type:id" (node type names never hold ':').
func (s *server) parseNodeRef(v, field string) (graph.NodeKey, error) {
	typ, id, ok := strings.Cut(v, ":")
	if !ok || typ == "" || id == "" {
		return graph.NodeKey{}, apiErr(kindInvalidParameter, field, "%q is not type:id", v)
	}
	if _, known := s.schema.NodeType(typ); !known {
		return graph.NodeKey{}, apiErr(kindUnknownType, field, "unknown node type %q", typ)
	}
	if len(id) > graph.MaxIDLen {
		return graph.NodeKey{}, overCap(field, graph.MaxIDLen, "the id is %d bytes; the limit is %d", len(id), graph.MaxIDLen)
	}
	return graph.NodeKey{Type: typ, ID: id}, nil
}

// parseWindow parses a window: a Go duration, with "d" for 24h ("1d",
// "90m", "1h30m").
func parseWindow(v, field string) (time.Duration, error) {
	d, err := graph.ParseTTL(v)
	if err != nil || d < graph.MinWindow || d > graph.MaxWindow {
		return 0, apiErr(kindInvalidParameter, field, "%q is not a window: whole seconds from 1m to 7d, such as 1m, 90m, 1d", v)
	}
	return d, nil
}

// formatWindow renders a window in the largest unit that divides it.
func formatWindow(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// buildLookup checks and completes one lookup: windows default to
// graph.DefaultWindows; a cap's target and window are added to the lookup's
// when missing. prefix names the lookup in error fields ("" for GET).
func (s *server) buildLookup(user graph.NodeKey, edgeType string, targets, windows []string, asOf string, caps []capJSON, prefix string) (countLookup, error) {
	var l countLookup
	l.q.User, l.q.EdgeType = user, edgeType
	if edgeType == "" {
		return l, apiErr(kindInvalidParameter, prefix+"edge_type", "edge_type is required")
	}
	if _, ok := s.schema.EdgeType(edgeType); !ok {
		return l, apiErr(kindUnknownType, prefix+"edge_type", "unknown edge type %q", edgeType)
	}
	l.q.Targets = make([]graph.NodeKey, 0, min(len(targets)+len(caps), graph.MaxCountTargets))
	// Duplicates are found by a scan while the targets are few (an ad
	// server's usual 20 cost no map), by a map past that.
	var seen map[graph.NodeKey]bool
	addTarget := func(k graph.NodeKey, field string) error {
		if seen != nil {
			if seen[k] {
				return nil
			}
		} else if slices.Contains(l.q.Targets, k) {
			return nil
		}
		if len(l.q.Targets) == graph.MaxCountTargets {
			return overCap(field, graph.MaxCountTargets, "more than %d distinct targets", graph.MaxCountTargets)
		}
		l.q.Targets = append(l.q.Targets, k)
		if seen != nil {
			seen[k] = true
		} else if len(l.q.Targets) == 32 {
			seen = make(map[graph.NodeKey]bool, graph.MaxCountTargets)
			for _, t := range l.q.Targets {
				seen[t] = true
			}
		}
		return nil
	}
	// at names the i-th element of a list in error fields: prefix+list[i]
	// in a batch, single in a GET. Only failures call it.
	at := func(list, single string, i int) string {
		if prefix == "" {
			return single
		}
		return fmt.Sprintf("%s%s[%d]", prefix, list, i)
	}
	for i, t := range targets {
		k, err := s.parseNodeRef(t, "")
		if err == nil {
			err = addTarget(k, "")
		}
		if err != nil {
			return l, withField(err, at("targets", "target", i))
		}
	}
	addWindow := func(d time.Duration, field string) error {
		for _, w := range l.q.Windows {
			if w == d {
				return nil
			}
		}
		if len(l.q.Windows) == graph.MaxCountWindows {
			return overCap(field, graph.MaxCountWindows, "more than %d distinct windows", graph.MaxCountWindows)
		}
		l.q.Windows = append(l.q.Windows, d)
		return nil
	}
	for i, w := range windows {
		d, err := parseWindow(w, "")
		if err == nil {
			err = addWindow(d, "")
		}
		if err != nil {
			return l, withField(err, at("windows", "windows", i))
		}
	}
	if len(windows) == 0 {
		l.q.Windows = graph.DefaultWindows()
	}
	if len(caps) > maxCapsPerLookup {
		return l, overCap(prefix+"caps", maxCapsPerLookup, "%d caps; the limit is %d", len(caps), maxCapsPerLookup)
	}
	for i, c := range caps {
		k, err := s.parseNodeRef(c.Target, "")
		var d time.Duration
		if err == nil {
			d, err = parseWindow(c.Window, "")
		}
		if err != nil {
			return l, withField(err, at("caps", "cap", i))
		}
		m, err := c.Max.int("")
		if err == nil && m < 0 {
			err = apiErr(kindInvalidParameter, "", "max %d must not be negative", m)
		}
		if err != nil {
			field := at("caps", "cap", i)
			if prefix != "" {
				field += ".max"
			}
			return l, withField(err, field)
		}
		err = addTarget(k, "")
		if err == nil {
			err = addWindow(d, "")
		}
		if err != nil {
			return l, withField(err, at("caps", "cap", i))
		}
		l.caps = append(l.caps, parsedCap{target: k, window: d, max: m})
	}
	if len(l.q.Targets) == 0 {
		return l, apiErr(kindInvalidParameter, prefix+"targets", "name at least one target (type:id)")
	}
	if asOf != "" {
		t, err := s.parseAsOf(asOf, prefix+"as_of")
		if err != nil {
			return l, err
		}
		l.q.AsOf = t
	}
	return l, nil
}

// parseAsOf parses as_of and keeps it between the Unix epoch and the
// server's clock plus Config.MaxAsOfSkew; the cap of the 422 is the bound
// crossed, in Unix seconds. A later as_of would count impressions that have
// not happened yet, so every cap would answer allowed: a frequency cap
// failing open. The zero time (0001-01-01T00:00:00Z) is what the store
// takes for "now"; it is refused with everything else before the epoch,
// which no event time can be, rather than read as now.
func (s *server) parseAsOf(v, field string) (time.Time, error) {
	t, err := parseTime(v, field)
	if err != nil {
		return t, err
	}
	if t.Before(time.Unix(0, 0)) {
		return t, overCap(field, 0, "%s is before 1970-01-01T00:00:00Z, the earliest as_of; omit as_of for now", v)
	}
	latest := s.now().Add(s.cfg.MaxAsOfSkew)
	if t.After(latest) {
		return t, overCap(field, latest.Unix(), "%s is later than the server's clock plus %s (%s): the counts of the future are not known yet",
			v, s.cfg.MaxAsOfSkew, latest.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// countsAnswer is one lookup's store result with what judging its caps
// needs; appendCountsResult writes it.
type countsAnswer struct {
	l   countLookup
	res graph.CountResult
}

// countsErr maps the count store's own limit to a problem; everything else
// goes to problemFor as it is.
func countsErr(err error) error {
	if errors.Is(err, graph.ErrCountTooLarge) {
		return overCap("targets", graph.MaxCountRows, "the lookup would read more than %d impressions; ask for fewer targets or shorter windows", graph.MaxCountRows)
	}
	return err
}

func (s *server) countsEnabled(w http.ResponseWriter, r *http.Request) bool {
	if s.counts == nil {
		s.writeProblem(w, r, apiErr(kindNotFound, "", "frequency-cap counts are not enabled on this server"))
		return false
	}
	return true
}

// getCounts serves GET /v1/counts/{type}/{id}.
func (s *server) getCounts(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.stage(r, stageTotal, time.Since(start)) }()
	if !s.countsEnabled(w, r) {
		return
	}
	l, err := s.parseCountsQuery(r)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	s.m.stage(r, stageValidation, time.Since(start))
	r, cancel := withBudget(r, s.cfg.DefaultTimeBudget)
	defer cancel()
	t := time.Now()
	res, err := s.counts.Counts(r.Context(), l.q)
	s.m.stage(r, stageStorage, time.Since(t))
	s.m.storeReads.WithLabelValues(routeOf(r)).Observe(1)
	if err != nil {
		s.writeProblem(w, r, countsErr(err))
		return
	}
	wm, _ := watermarkFrom(r.Context())
	s.writeCounts(w, []countsAnswer{{l: l, res: res}}, wm, false)
}

func (s *server) parseCountsQuery(r *http.Request) (countLookup, error) {
	user, err := s.nodeParam(r)
	if err != nil {
		return countLookup{}, err
	}
	q, err := parseQuery(r)
	if err != nil {
		return countLookup{}, err
	}
	for name, vs := range q {
		switch name {
		case "target", "cap":
		case "edge_type", "windows", "as_of":
			if len(vs) > 1 {
				return countLookup{}, apiErr(kindInvalidParameter, name, "given %d times", len(vs))
			}
			if vs[0] == "" {
				return countLookup{}, apiErr(kindInvalidParameter, name, "given without a value")
			}
		default:
			return countLookup{}, apiErr(kindInvalidParameter, name, "unknown query parameter %q", name)
		}
	}
	var windows []string
	if v := q.Get("windows"); v != "" {
		windows = strings.Split(v, ",")
	}
	var caps []capJSON
	for _, c := range q["cap"] {
		// target,window,max: split from the right, as an id may hold commas.
		i := strings.LastIndexByte(c, ',')
		j := -1
		if i > 0 {
			j = strings.LastIndexByte(c[:i], ',')
		}
		if j <= 0 {
			return countLookup{}, apiErr(kindInvalidParameter, "cap", "%q is not type:id,window,max", c)
		}
		n, err := strconv.ParseInt(c[i+1:], 10, 64)
		if err != nil {
			return countLookup{}, apiErr(kindInvalidParameter, "cap", "%q: max is not an integer", c)
		}
		caps = append(caps, capJSON{Target: c[:j], Window: c[j+1 : i], Max: jsonInt{raw: []byte(strconv.FormatInt(n, 10))}})
	}
	return s.buildLookup(user, q.Get("edge_type"), q["target"], windows, q.Get("as_of"), caps, "")
}

// postCountsBatch serves POST /v1/counts:batch: every lookup is checked
// before any is read; the lookups run ReadConcurrency at a time; one store
// failure fails the request (an ad server must not take a partial answer
// for a complete one).
func (s *server) postCountsBatch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.stage(r, stageTotal, time.Since(start)) }()
	if !s.countsEnabled(w, r) {
		return
	}
	if err := checkJSONBody(r); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if err := checkNoQuery(r); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	var body countsBatchRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), &body); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if len(body.Lookups) == 0 {
		s.writeProblem(w, r, apiErr(kindInvalidParameter, "lookups", "name at least one lookup"))
		return
	}
	if len(body.Lookups) > MaxCountLookups {
		s.writeProblem(w, r, overCap("lookups", MaxCountLookups, "%d lookups; the limit is %d", len(body.Lookups), MaxCountLookups))
		return
	}
	lookups := make([]countLookup, len(body.Lookups))
	for i, lj := range body.Lookups {
		prefix := fmt.Sprintf("lookups[%d].", i)
		user, err := s.parseNodeRef(lj.User, prefix+"user")
		if err == nil {
			lookups[i], err = s.buildLookup(user, lj.EdgeType, lj.Targets, lj.Windows, lj.AsOf, lj.Caps, prefix)
		}
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
	}
	s.m.stage(r, stageValidation, time.Since(start))
	r, cancel := withBudget(r, s.cfg.DefaultTimeBudget)
	defer cancel()
	t := time.Now()
	results := make([]countsAnswer, len(lookups))
	g, ctx := errgroup.WithContext(r.Context())
	g.SetLimit(s.cfg.ReadConcurrency)
	for i, l := range lookups {
		g.Go(func() error {
			res, err := s.counts.Counts(ctx, l.q)
			if err != nil {
				if errors.Is(err, graph.ErrInvalidQuery) {
					return fmt.Errorf("lookups[%d]: %w", i, err)
				}
				return err
			}
			results[i] = countsAnswer{l: l, res: res}
			return nil
		})
	}
	err := g.Wait()
	s.m.stage(r, stageStorage, time.Since(t))
	s.m.storeReads.WithLabelValues(routeOf(r)).Observe(float64(len(lookups)))
	if err != nil {
		// A lookup cut because a sibling failed reports the sibling's error;
		// the request context still tells the budget and client apart.
		s.writeProblem(w, r, countsErr(err))
		return
	}
	wm, _ := watermarkFrom(r.Context())
	s.writeCounts(w, results, wm, true)
}
