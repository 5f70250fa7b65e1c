package traverse

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rtgraph/rtgraph/graph"
)

// Options tune an Engine. The zero value takes the defaults.
type Options struct {
	// Concurrency is the most store calls one traversal has in flight.
	// Default 8.
	Concurrency int
	// NodeBatch is the most keys one GetNodes call asks for. Default 256.
	NodeBatch int
	// MaxPage is the most edges one Adjacency call asks for; a source that
	// wants more reads several pages. Default 1000.
	MaxPage int
	// RawProps reads adjacency with graph.AdjacencyQuery.RawProps wherever
	// a hop filters on no edge property, and the result's nodes with
	// graph.RawNodeReader when the reader is one: the result's edges and
	// nodes then carry their stored property bytes (PropsJSON) and may have
	// nil Props. For callers that only pass properties on.
	RawProps bool
}

// Engine runs traversals over a graph.Reader. It is safe for concurrent use:
// each Run keeps its own state.
type Engine struct {
	r      graph.Reader
	schema *graph.Schema
	conc   int
	batch  int
	page   int
	raw    bool
}

// New returns an Engine reading from r, whose graph follows schema.
func New(r graph.Reader, schema *graph.Schema, opts Options) *Engine {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.NodeBatch <= 0 {
		opts.NodeBatch = 256
	}
	if opts.MaxPage <= 0 {
		opts.MaxPage = 1000
	}
	return &Engine{r: r, schema: schema, conc: opts.Concurrency, batch: opts.NodeBatch, page: opts.MaxPage, raw: opts.RawProps}
}

// PanicError is a panic raised by the graph.Reader inside one of the
// engine's goroutines, returned as an error so that a faulty store fails one
// traversal instead of the process (no HTTP recoverer sees those goroutines).
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("traverse: store panicked: %v", e.Value) }

// guard runs f, turning a panic into a failed result.
func guard(f func() sourceResult) (res sourceResult) {
	defer func() {
		if v := recover(); v != nil {
			res = sourceResult{state: stateFailed, err: &PanicError{Value: v, Stack: debug.Stack()}}
		}
	}()
	return f()
}

// errBudget is the cause of the contexts the engine cancels at the deadline,
// which is how a spent budget is told apart from a cancelled caller.
var errBudget = errors.New("traverse: time budget spent")

func budgetSpent(ctx context.Context) bool { return errors.Is(context.Cause(ctx), errBudget) }

// Validate checks req against the schema without reading anything. Errors
// wrap ErrInvalidRequest and are *RequestError. It normalises the values of
// req's property filters in place, as Run does.
func (e *Engine) Validate(req *Request) error { return validate(e.schema, req) }

// Run validates req (see Validate) and runs it.
//
// A deadline reached is not an error: the result is marked truncated for
// ReasonTimeBudget. Errors are a *RequestError (the request can never
// succeed), a store error (graph.IsRetryable tells whether retrying may help),
// or ctx's error when the caller cancelled. Run blocks until every store call
// it started has returned.
func (e *Engine) Run(ctx context.Context, req Request) (*Result, error) {
	if err := validate(e.schema, &req); err != nil {
		return nil, err
	}
	hydrateCtx, expandCtx := ctx, ctx
	if !req.Deadline.IsZero() {
		var cancelH, cancelE context.CancelFunc
		hydrateCtx, cancelH = context.WithDeadlineCause(ctx, req.Deadline, errBudget)
		defer cancelH()
		// A tenth of the budget is kept for reading the properties of the
		// nodes reached, so a traversal cut by time still describes them.
		reserve := max(time.Until(req.Deadline)/10, 0)
		expandCtx, cancelE = context.WithDeadlineCause(hydrateCtx, req.Deadline.Add(-reserve), errBudget)
		defer cancelE()
	}
	t := &traversal{
		e:       e,
		req:     &req,
		res:     &Result{},
		nodeIdx: map[graph.NodeKey]int{},
		edgeSet: map[graph.EdgeKey]struct{}{},
		parent:  map[graph.NodeKey]int{},
		cache:   map[graph.NodeKey]*graph.Node{},
	}
	if err := t.expand(expandCtx); err != nil {
		return nil, err
	}
	if err := t.hydrate(hydrateCtx); err != nil {
		return nil, err
	}
	if req.IncludePaths {
		t.paths()
	}
	t.res.StoreReads = int(t.reads.Load())
	return t.res, nil
}

// traversal is the state of one Run. Only the goroutine running Run touches
// it, except reads (atomic) and cache (under cacheMu), which source readers
// share.
type traversal struct {
	e     *Engine
	req   *Request
	res   *Result
	reads atomic.Int64
	total int // edges returned so far

	nodeIdx map[graph.NodeKey]int      // index into res.Nodes
	edgeSet map[graph.EdgeKey]struct{} // edges returned
	parent  map[graph.NodeKey]int      // edge (index into res.Edges) that first reached a node

	cacheMu sync.Mutex
	cache   map[graph.NodeKey]*graph.Node // nodes read; nil value = read and missing
}

// addNode records k as reached by hop; it reports whether k is new.
func (t *traversal) addNode(k graph.NodeKey, hop int) bool {
	if _, ok := t.nodeIdx[k]; ok {
		return false
	}
	t.nodeIdx[k] = len(t.res.Nodes)
	t.res.Nodes = append(t.res.Nodes, NodeResult{Key: k, Hop: hop, Status: NodeNotRead})
	return true
}

func (t *traversal) sources(frontier []graph.NodeKey, h *Hop) []Source {
	var out []Source
	for _, n := range frontier {
		for _, es := range h.Edges {
			et, _ := t.e.schema.EdgeType(es.Type)
			for _, d := range h.Direction.graphDirs() {
				if sourceAllowed(et, n.Type, d) {
					out = append(out, Source{Node: n, EdgeType: es.Type, Direction: d})
				}
			}
		}
	}
	return out
}

func (t *traversal) expand(ctx context.Context) error {
	req := t.req
	first := 0
	var work []Source
	if req.Resume != nil {
		first = req.Resume.Hop
		work = slices.Clone(req.Resume.Work)
		for _, s := range work {
			t.addNode(s.Node, 0)
		}
	} else {
		var frontier []graph.NodeKey
		for _, k := range req.Start {
			if t.addNode(k, 0) {
				frontier = append(frontier, k)
			}
		}
		work = t.sources(frontier, &req.Hops[0])
	}
	frontier := t.frontierOf(req.Resume, work)
	var stop Reason // set once the traversal cannot read further hops
	for k := first; k < len(req.Hops); k++ {
		hr := HopResult{Hop: k + 1, UnreadExact: true}
		hop := &req.Hops[k]
		limit, limitReason := hop.Limit, ReasonHopLimit
		if left := req.MaxResults - t.total; left < limit {
			limit, limitReason = left, ReasonMaxResults
		}
		if stop == "" && limit == 0 && len(work) > 0 {
			stop = ReasonMaxResults
		}
		if stop != "" {
			hr.Skipped, hr.Reasons, hr.UnreadExact = true, []Reason{stop}, false
			if len(work) > 0 {
				hr.Continue = t.continuation(k, work, frontier)
			}
			work, frontier = nil, nil
			t.res.Hops = append(t.res.Hops, hr)
			continue
		}
		lo, err := t.level(ctx, k, work, frontier, limit, limitReason)
		if err != nil {
			return err
		}
		hr.Edges, hr.NewNodes = lo.edges, len(lo.next)
		hr.Reasons, hr.UnreadEdges, hr.UnreadExact = lo.reasons, lo.unread, lo.exact
		if len(lo.cont) > 0 {
			hr.Continue = t.continuation(k, lo.cont, frontier)
		}
		if lo.budget {
			stop = ReasonTimeBudget
		}
		t.res.Hops = append(t.res.Hops, hr)
		work, frontier = nil, nil
		if k+1 < len(req.Hops) {
			work = t.sources(lo.next, &req.Hops[k+1])
			frontier = lo.next
		}
	}
	return nil
}

// frontierOf returns the nodes the first hop run expands.
func (t *traversal) frontierOf(resume *Continuation, work []Source) []graph.NodeKey {
	if resume == nil {
		var out []graph.NodeKey
		for _, n := range t.res.Nodes {
			out = append(out, n.Key)
		}
		return out
	}
	if resume.Frontier != nil {
		return resume.Frontier
	}
	var out []graph.NodeKey
	seen := map[graph.NodeKey]bool{}
	for _, s := range work {
		if !seen[s.Node] {
			seen[s.Node] = true
			out = append(out, s.Node)
		}
	}
	return out
}

func (t *traversal) continuation(k int, work []Source, frontier []graph.NodeKey) *Continuation {
	c := &Continuation{Hop: k, Work: work}
	if t.req.Hops[k].Direction == Both {
		c.Frontier = frontier
	}
	return c
}

type srcState uint8

const (
	stateNotRead   srcState = iota // never started: the level stopped first
	stateCancelled                 // started, then cut by the level stop or the deadline
	stateFailed                    // the store failed
	stateExhausted                 // read to the end of the scan
	stateMore                      // stopped with as many candidates as wanted; next continues
	stateCapped                    // stopped at the supernode cap; next continues
)

// cand is an edge that passed the hop's filters.
type cand struct {
	edge graph.Edge
	far  graph.NodeKey
	pos  Position
	page []byte // store cursor of the page it came from
}

type sourceResult struct {
	state srcState
	cands []cand
	next  []byte // where reading stopped, for stateMore and stateCapped
	read  int    // edges read from this source in this hop
	err   error
}

type levelOut struct {
	edges   int
	next    []graph.NodeKey // nodes first reached, in order
	reasons []Reason
	unread  int
	exact   bool
	cont    []Source
	budget  bool
}

func (o *levelOut) addReason(r Reason) {
	if !slices.Contains(o.reasons, r) {
		o.reasons = append(o.reasons, r)
		slices.SortFunc(o.reasons, func(a, b Reason) int { return reasonOrder[a] - reasonOrder[b] })
	}
}

// level reads one hop's sources and returns at most limit new edges.
//
// A producer goroutine starts source reads in order, at most Concurrency in
// flight (errgroup limit) and at most 2×Concurrency ahead of the consumer
// (window), so reading stops soon after the limit is met. The consumer (this
// goroutine) takes results strictly in source order, which makes the answer
// independent of timing. Invariant: results[i] is written only before
// done[i] is closed, and read only after.
func (t *traversal) level(ctx context.Context, k int, work []Source, frontier []graph.NodeKey, limit int, limitReason Reason) (levelOut, error) {
	out := levelOut{exact: true}
	if len(work) == 0 {
		return out, nil
	}
	hop := &t.req.Hops[k]
	var owned map[graph.NodeKey]bool
	if hop.Direction == Both {
		owned = make(map[graph.NodeKey]bool, len(frontier))
		for _, n := range frontier {
			owned[n] = true
		}
	}
	lctx, cancel := context.WithCancel(ctx)
	results := make([]sourceResult, len(work))
	done := make([]chan struct{}, len(work))
	for i := range done {
		done[i] = make(chan struct{})
	}
	window := make(chan struct{}, 2*t.e.conc)
	var accepted atomic.Int64
	var g errgroup.Group
	g.SetLimit(t.e.conc)
	producerDone := make(chan struct{})
	go func() {
		defer close(producerDone)
		for i := range work {
			select {
			case window <- struct{}{}:
			case <-lctx.Done():
			}
			if lctx.Err() != nil {
				for j := i; j < len(work); j++ {
					close(done[j]) // results[j] stays stateNotRead
				}
				return
			}
			want := max(limit-int(accepted.Load()), 1)
			g.Go(func() error {
				if lctx.Err() == nil {
					results[i] = guard(func() sourceResult { return t.read(lctx, hop, owned, work[i], want, 0) })
				}
				close(done[i])
				return nil
			})
		}
	}()
	stopAll := func() {
		cancel()
		<-producerDone
		_ = g.Wait()
	}
	defer stopAll()

	acc := 0
	for i := range work {
		<-done[i]
		r := results[i]
		src := work[i]
		for {
			switch r.state {
			case stateNotRead, stateCancelled:
				if !budgetSpent(ctx) {
					if err := ctx.Err(); err != nil {
						return out, err
					}
				}
				stopAll()
				out.budget, out.exact = true, false
				out.addReason(ReasonTimeBudget)
				out.cont = append(out.cont, src)
				t.tail(&out, work[i+1:], results[i+1:])
				out.edges = acc
				return out, nil
			case stateFailed:
				return out, r.err
			}
			for ci, c := range r.cands {
				if _, dup := t.edgeSet[c.edge.Key]; dup {
					continue
				}
				if acc == limit {
					// Cut inside this source: resume at this candidate.
					stopAll()
					from := c.pos
					out.cont = append(out.cont, Source{Node: src.Node, EdgeType: src.EdgeType, Direction: src.Direction, Cursor: c.page, From: &from})
					out.unread += t.countNew(r.cands[ci:])
					if r.state != stateExhausted {
						// The resumed scan goes on past this page by itself.
						out.exact = false
					}
					t.tail(&out, work[i+1:], results[i+1:])
					out.addReason(limitReason)
					out.edges = acc
					return out, nil
				}
				if t.accept(k, src.Node, c) {
					out.next = append(out.next, c.far)
				}
				acc++
				accepted.Store(int64(acc))
			}
			if r.state == stateMore && acc < limit {
				// Only edges already returned by another source can leave a
				// source short of what it was asked for; read on in place.
				src = Source{Node: src.Node, EdgeType: src.EdgeType, Direction: src.Direction, Cursor: r.next}
				prev := r.read
				r = guard(func() sourceResult { return t.read(lctx, hop, owned, src, limit-acc, prev) })
				continue
			}
			break
		}
		before := len(out.cont)
		switch r.state {
		case stateCapped:
			out.cont = append(out.cont, Source{Node: src.Node, EdgeType: src.EdgeType, Direction: src.Direction, Cursor: r.next})
			out.exact = false
			out.addReason(ReasonSupernodeCap)
			before = len(out.cont)
		case stateMore:
			// acc == limit and the scan goes on: its edges are unread.
			out.cont = append(out.cont, Source{Node: src.Node, EdgeType: src.EdgeType, Direction: src.Direction, Cursor: r.next})
			out.exact = false
		}
		<-window
		if acc == limit {
			stopAll()
			t.tail(&out, work[i+1:], results[i+1:])
			if len(out.cont) > before {
				out.addReason(limitReason)
			}
			break
		}
	}
	out.edges = acc
	return out, nil
}

// tail accounts for the sources after a level stopped: each goes into the
// continuation unless it was read to its end and matched nothing new. Call it
// only after stopAll, when every result is final.
func (t *traversal) tail(out *levelOut, work []Source, results []sourceResult) {
	for j, src := range work {
		r := results[j]
		switch r.state {
		case stateExhausted:
			n := t.countNew(r.cands)
			if n == 0 {
				continue
			}
			out.unread += n
		case stateMore, stateCapped:
			out.unread += t.countNew(r.cands)
			out.exact = false
		default:
			out.exact = false
		}
		out.cont = append(out.cont, src)
	}
}

// countNew counts candidates whose edge has not been returned.
func (t *traversal) countNew(cs []cand) int {
	n := 0
	for _, c := range cs {
		if _, dup := t.edgeSet[c.edge.Key]; !dup {
			n++
		}
	}
	return n
}

// accept returns the edge; it reports whether its far node is new.
func (t *traversal) accept(k int, from graph.NodeKey, c cand) bool {
	idx := len(t.res.Edges)
	t.res.Edges = append(t.res.Edges, EdgeResult{Edge: c.edge, Hop: k + 1, From: from})
	t.edgeSet[c.edge.Key] = struct{}{}
	t.total++
	if t.addNode(c.far, k+1) {
		t.parent[c.far] = idx
		return true
	}
	return false
}

func (h *Hop) spec(edgeType string) EdgeSpec {
	for _, es := range h.Edges {
		if es.Type == edgeType {
			return es
		}
	}
	return EdgeSpec{Type: edgeType}
}

func (h *Hop) keepsType(t string) bool {
	return len(h.NodeTypes) == 0 || slices.Contains(h.NodeTypes, t)
}

// read scans one source until it has want candidates, reaches the
// supernode cap (read counts edges already read from it in this hop), or
// ends. A page that returns no edge but a next cursor counts as one edge
// read, so a store returning empty pages cannot keep it reading forever.
// An In source skips edges whose From end is in owned: the Out source of
// that node returns them.
func (t *traversal) read(ctx context.Context, h *Hop, owned map[graph.NodeKey]bool, src Source, want, read int) sourceResult {
	spec := h.spec(src.EdgeType)
	q := graph.AdjacencyQuery{
		Node: src.Node, EdgeType: src.EdgeType, Direction: src.Direction, Order: h.Order,
		Since: spec.Since, Until: spec.Until, Cursor: src.Cursor,
		RawProps: t.e.raw && len(h.EdgeProps) == 0,
	}
	from := src.From
	res := sourceResult{read: read}
	fail := func(err error) sourceResult {
		if ctx.Err() != nil {
			return sourceResult{state: stateCancelled, read: res.read}
		}
		return sourceResult{state: stateFailed, err: fmt.Errorf("traverse: read %s %s %s: %w", src.Node, src.EdgeType, src.Direction, err)}
	}
	for {
		q.Limit = max(1, min(h.NodeCap-res.read, want-len(res.cands), t.e.page))
		page, err := t.e.r.Adjacency(ctx, q)
		t.reads.Add(1)
		if err != nil {
			return fail(err)
		}
		res.read += max(len(page.Edges), 1)
		var fresh []cand
		for _, e := range page.Edges {
			far := e.Key.To
			if src.Direction == graph.In {
				far = e.Key.From
			}
			pos := Position{EventTime: e.EventTime, Neighbor: far}
			if from != nil {
				if comparePos(h.Order, pos, *from) < 0 {
					continue
				}
				from = nil
			}
			if !h.keepsType(far.Type) || !matches(e.Props, h.EdgeProps) ||
				(src.Direction == graph.In && owned[far]) {
				continue
			}
			fresh = append(fresh, cand{edge: e, far: far, pos: pos, page: q.Cursor})
		}
		if len(h.NodeProps) > 0 && len(fresh) > 0 {
			nodes, err := t.lookup(ctx, fresh)
			if err != nil {
				return fail(err)
			}
			fresh = slices.DeleteFunc(fresh, func(c cand) bool {
				n := nodes[c.far]
				return n == nil || !matches(n.Props, h.NodeProps)
			})
		}
		res.cands = append(res.cands, fresh...)
		if page.Next == nil {
			res.state = stateExhausted
			return res
		}
		q.Cursor = page.Next
		res.next = page.Next
		switch {
		case len(res.cands) >= want:
			res.state = stateMore
			return res
		case res.read >= h.NodeCap:
			res.state = stateCapped
			return res
		}
	}
}

// lookup returns the far nodes of cs, reading those not cached.
func (t *traversal) lookup(ctx context.Context, cs []cand) (map[graph.NodeKey]*graph.Node, error) {
	out := make(map[graph.NodeKey]*graph.Node, len(cs))
	var missing []graph.NodeKey
	t.cacheMu.Lock()
	for _, c := range cs {
		if n, ok := t.cache[c.far]; ok {
			out[c.far] = n
		} else if _, dup := out[c.far]; !dup {
			out[c.far] = nil
			missing = append(missing, c.far)
		}
	}
	t.cacheMu.Unlock()
	for chunk := range slices.Chunk(missing, t.e.batch) {
		got, err := t.e.r.GetNodes(ctx, chunk)
		t.reads.Add(1)
		if err != nil {
			return nil, err
		}
		t.cacheMu.Lock()
		for _, k := range chunk {
			var n *graph.Node
			if v, ok := got[k]; ok {
				n = &v
			}
			t.cache[k] = n
			out[k] = n
		}
		t.cacheMu.Unlock()
	}
	return out, nil
}

// getNodes reads the result's nodes: with only their stored property bytes
// when the engine passes properties on and the reader can (graph.RawNodeReader).
func (t *traversal) getNodes(ctx context.Context, keys []graph.NodeKey) (map[graph.NodeKey]graph.Node, error) {
	if rr, ok := t.e.r.(graph.RawNodeReader); ok && t.e.raw {
		return rr.GetNodesRaw(ctx, keys)
	}
	return t.e.r.GetNodes(ctx, keys)
}

// hydrate reads the properties of every node reached that is not cached, in
// batches, Concurrency at a time. Batches the deadline cuts leave their nodes
// NodeNotRead.
func (t *traversal) hydrate(ctx context.Context) error {
	var keys []graph.NodeKey
	for _, n := range t.res.Nodes {
		if _, ok := t.cache[n.Key]; !ok {
			keys = append(keys, n.Key)
		}
	}
	chunks := slices.Collect(slices.Chunk(keys, t.e.batch))
	got := make([]map[graph.NodeKey]graph.Node, len(chunks))
	errs := make([]error, len(chunks))
	var g errgroup.Group
	g.SetLimit(t.e.conc)
	for i, chunk := range chunks {
		g.Go(func() error {
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				return nil
			}
			r := guard(func() sourceResult {
				var r sourceResult
				got[i], r.err = t.getNodes(ctx, chunk)
				return r
			})
			errs[i] = r.err
			t.reads.Add(1)
			return nil
		})
	}
	_ = g.Wait()
	for i, chunk := range chunks {
		if errs[i] != nil {
			if ctx.Err() != nil && budgetSpent(ctx) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("traverse: read nodes: %w", errs[i])
		}
		for _, k := range chunk {
			var n *graph.Node
			if v, ok := got[i][k]; ok {
				n = &v
			}
			t.cache[k] = n
		}
	}
	cut := false
	for i := range t.res.Nodes {
		nr := &t.res.Nodes[i]
		n, ok := t.cache[nr.Key]
		switch {
		case !ok:
			nr.Status = NodeNotRead
			cut = true
		case n == nil:
			nr.Status = NodeMissing
		default:
			nr.Status, nr.Node = NodeFound, *n
		}
	}
	if cut && len(t.res.Hops) > 0 {
		// The budget ran out while reading node properties: say so on the
		// last hop, which is where the traversal stopped.
		last := &t.res.Hops[len(t.res.Hops)-1]
		if !slices.Contains(last.Reasons, ReasonTimeBudget) {
			last.Reasons = append(last.Reasons, ReasonTimeBudget)
		}
	}
	return nil
}

// paths builds, for every edge of the deepest hop that returned edges, the
// chain of edges from a start node to it.
func (t *traversal) paths() {
	deepest := 0
	for _, e := range t.res.Edges {
		deepest = max(deepest, e.Hop)
	}
	for i, e := range t.res.Edges {
		if e.Hop != deepest {
			continue
		}
		p := []int{i}
		for n := e.From; ; {
			j, ok := t.parent[n]
			if !ok {
				break
			}
			p = append(p, j)
			n = t.res.Edges[j].From
		}
		slices.Reverse(p)
		t.res.Paths = append(t.res.Paths, p)
	}
}
