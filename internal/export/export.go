// Package export writes the nodes and edges of chosen types of a graph store
// to files, Parquet and JSON Lines, one file set per type, with a manifest.
// It reads through the graph.Lister and graph.Reader interfaces only, so it
// works on every backend.
//
// Layout of the output directory:
//
//	nodes/<type>.parquet, nodes/<type>.jsonl
//	edges/<type>.parquet, edges/<type>.jsonl
//	manifest.json (written last, only when every file is complete)
//
// Edges of a type are found by listing every node of each of the type's From
// node types and paging its Out adjacency. A node type that is implicit lets
// edges start at a node that was never written, which no listing returns:
// when the edge type keeps a reverse index, the edges are also paged In from
// every listed node of its To types, and those whose From node does not exist
// are exported too. What this cannot reach is reported per edge type in the
// manifest's coverage text.
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rtgraph/rtgraph/graph"
)

// Source is what an export reads.
type Source interface {
	graph.Reader
	graph.Lister
}

// Options configure Run.
type Options struct {
	// Schema is the graph schema of the store. Required.
	Schema *graph.Schema
	// Source is the store. Required.
	Source Source
	// Dir is the output directory. It is created if missing; an existing
	// one must be empty unless Overwrite.
	Dir string
	// Overwrite allows a non-empty Dir: its manifest.json is removed first,
	// then the files of the layout (nodes/*, edges/* of the formats) are
	// replaced; other files are left alone.
	Overwrite bool
	// NodeTypes and EdgeTypes select the types; nil means all, an empty
	// non-nil slice none.
	NodeTypes, EdgeTypes []string
	// Formats to write; nil means Parquet and JSONL.
	Formats []Format
	// Parallel is how many types are exported at once; default 2.
	Parallel int
	// Backend names the store in the manifest.
	Backend string
	// Consistency is the manifest's consistency text.
	Consistency string
	// Watermark is the freshness watermark read at the start, nil when
	// unknown.
	Watermark *time.Time
	// WatermarkNote explains the watermark (or its absence) in the manifest.
	WatermarkNote string
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
	// ProgressEvery is how often a rows-so-far line is written; default 5s.
	ProgressEvery time.Duration
	// ListLimit and AdjacencyLimit are page sizes; defaults 1000 and 5000.
	ListLimit, AdjacencyLimit int
	// GetNodesBatch bounds the keys of one GetNodes; default 500.
	GetNodesBatch int
	// Now is the clock of the manifest's times; default time.Now.
	Now func() time.Time
}

// ManifestName is the manifest's file name in the output directory.
const ManifestName = "manifest.json"

// ManifestVersion is the manifest's format_version.
const ManifestVersion = 1

// Manifest describes a complete export.
type Manifest struct {
	FormatVersion int       `json:"format_version"`
	StartedAt     time.Time `json:"started_at"`
	FinishedAt    time.Time `json:"finished_at"`
	Backend       string    `json:"backend"`
	// Watermark is the freshness watermark read at the start: every event
	// up to it was ingested before the export began. Null when unknown.
	Watermark     *time.Time `json:"watermark"`
	WatermarkNote string     `json:"watermark_note"`
	// MaxEventTime is the newest event time among the exported rows (null
	// when none was exported).
	MaxEventTime *time.Time  `json:"max_event_time"`
	Consistency  string      `json:"consistency"`
	Formats      []Format    `json:"formats"`
	Nodes        []TypeEntry `json:"nodes"`
	Edges        []TypeEntry `json:"edges"`
}

// TypeEntry is one exported type.
type TypeEntry struct {
	Type string `json:"type"`
	Rows int64  `json:"rows"`
	// Files maps a format to the file's path relative to the directory.
	Files   map[string]string `json:"files"`
	Columns []Column          `json:"parquet_columns,omitempty"`
	// MaxEventTime is the newest event time of the type's rows.
	MaxEventTime *time.Time `json:"max_event_time"`
	// ViaReverse (edges) counts the rows found through the reverse index
	// because their From node was never written.
	ViaReverse int64 `json:"rows_via_reverse,omitempty"`
	// Coverage (edges) is "complete", or says which edges cannot be reached.
	Coverage string `json:"coverage,omitempty"`
}

type job struct {
	typ   string
	edges bool
}

func (o *Options) defaults() {
	if o.Parallel < 1 {
		o.Parallel = 2
	}
	if o.Formats == nil {
		o.Formats = []Format{Parquet, JSONL}
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 5 * time.Second
	}
	if o.ListLimit < 1 {
		o.ListLimit = 1000
	}
	if o.AdjacencyLimit < 1 {
		o.AdjacencyLimit = 5000
	}
	if o.GetNodesBatch < 1 {
		o.GetNodesBatch = 500
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Run exports and returns the manifest it wrote. On error nothing is left
// under a final name that was not complete, and no manifest is written.
func Run(ctx context.Context, o Options) (*Manifest, error) {
	o.defaults()
	if o.Schema == nil || o.Source == nil {
		return nil, errors.New("export: schema and source are required")
	}
	if o.Dir == "" {
		return nil, errors.New("export: no output directory")
	}
	if _, err := ParseFormats(func() []string {
		s := make([]string, len(o.Formats))
		for i, f := range o.Formats {
			s[i] = string(f)
		}
		return s
	}()); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	nodeTypes, err := selectTypes("node", o.NodeTypes, o.Schema.NodeTypes())
	if err != nil {
		return nil, err
	}
	edgeTypes, err := selectTypes("edge", o.EdgeTypes, o.Schema.EdgeTypes())
	if err != nil {
		return nil, err
	}
	if len(nodeTypes)+len(edgeTypes) == 0 {
		return nil, errors.New("export: no type selected")
	}
	if err := prepareDir(o.Dir, o.Overwrite, o.Formats); err != nil {
		return nil, err
	}
	m := &Manifest{
		FormatVersion: ManifestVersion, StartedAt: o.Now().UTC(), Backend: o.Backend,
		Consistency: o.Consistency, Formats: o.Formats, WatermarkNote: o.WatermarkNote,
		Nodes: make([]TypeEntry, len(nodeTypes)), Edges: make([]TypeEntry, len(edgeTypes)),
	}
	if o.Watermark != nil {
		t := o.Watermark.UTC()
		m.Watermark = &t
	}

	var jobs []job
	for _, t := range nodeTypes {
		jobs = append(jobs, job{typ: t})
	}
	for _, t := range edgeTypes {
		jobs = append(jobs, job{typ: t, edges: true})
	}
	r := &runner{o: &o, total: len(jobs)}
	stopProgress := r.progress(ctx)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Parallel)
	for _, j := range jobs {
		g.Go(func() error {
			if j.edges {
				e, err := r.exportEdges(gctx, j.typ)
				if err != nil {
					return fmt.Errorf("export edges %s: %w", j.typ, err)
				}
				m.Edges[slices.Index(edgeTypes, j.typ)] = e
				return nil
			}
			e, err := r.exportNodes(gctx, j.typ)
			if err != nil {
				return fmt.Errorf("export nodes %s: %w", j.typ, err)
			}
			m.Nodes[slices.Index(nodeTypes, j.typ)] = e
			return nil
		})
	}
	err = g.Wait()
	stopProgress()
	if err != nil {
		return nil, err
	}
	for _, e := range slices.Concat(m.Nodes, m.Edges) {
		if e.MaxEventTime != nil && (m.MaxEventTime == nil || e.MaxEventTime.After(*m.MaxEventTime)) {
			m.MaxEventTime = e.MaxEventTime
		}
	}
	m.FinishedAt = o.Now().UTC()
	if err := writeManifest(o.Dir, m); err != nil {
		return nil, err
	}
	types := fmt.Sprintf("%d types", len(jobs))
	if len(jobs) == 1 {
		types = "1 type"
	}
	fmt.Fprintf(o.Progress, "export: done: %d rows of %s in %s, manifest %s\n",
		r.rows.Load(), types, m.FinishedAt.Sub(m.StartedAt).Round(time.Millisecond), filepath.Join(o.Dir, ManifestName))
	return m, nil
}

func selectTypes(kind string, asked, all []string) ([]string, error) {
	if asked == nil {
		return all, nil
	}
	var out []string
	for _, t := range asked {
		if !slices.Contains(all, t) {
			return nil, fmt.Errorf("export: unknown %s type %q (the schema has: %s)", kind, t, strings.Join(all, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// prepareDir makes dir ready: created, or empty, or (overwrite) rid of its
// manifest and of the files of the layout.
func prepareDir(dir string, overwrite bool, formats []Format) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("export: %w", err)
	case len(entries) > 0 && !overwrite:
		return fmt.Errorf("export: %s is not empty; choose an empty or new directory, or pass --overwrite to replace an earlier export there", dir)
	case len(entries) > 0:
		// The manifest goes first: from here on the directory does not
		// claim to hold a complete export until the new manifest is written.
		if err := os.Remove(filepath.Join(dir, ManifestName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("export: %w", err)
		}
		for _, sub := range []string{"nodes", "edges"} {
			files, err := os.ReadDir(filepath.Join(dir, sub))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			for _, f := range files {
				n := f.Name()
				if f.Type().IsRegular() && (strings.HasSuffix(n, ".parquet") || strings.HasSuffix(n, ".jsonl") || strings.HasSuffix(n, tmpSuffix)) {
					if err := os.Remove(filepath.Join(dir, sub, n)); err != nil {
						return fmt.Errorf("export: %w", err)
					}
				}
			}
		}
	}
	for _, sub := range []string{"nodes", "edges"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return nil
}

func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("export: encode manifest: %w", err)
	}
	p, err := create(filepath.Join(dir, ManifestName))
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := p.f.Write(append(b, '\n')); err != nil {
		p.abort()
		return fmt.Errorf("export: write manifest: %w", err)
	}
	if err := p.commit(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

type runner struct {
	o     *Options
	total int
	rows  atomic.Int64
	done  atomic.Int64
	mu    sync.Mutex // serialises progress lines
}

func (r *runner) say(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.o.Progress, format, args...)
}

// progress writes a rows-so-far line every ProgressEvery until stopped.
func (r *runner) progress(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.o.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.say("export: %d rows so far, %d of %d types done (%s)\n",
					r.rows.Load(), r.done.Load(), r.total, time.Since(start).Round(time.Second))
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

func (r *runner) finish(kind, typ string, e *TypeEntry, start time.Time) {
	r.done.Add(1)
	extra := ""
	if e.ViaReverse > 0 {
		extra = fmt.Sprintf(", %d through the reverse index", e.ViaReverse)
	}
	r.say("export: %s/%s: %d rows%s (%s)\n", kind, typ, e.Rows, extra, time.Since(start).Round(time.Millisecond))
}

func entryOf(typ string, t *typeFiles, files map[string]string, cols []Column, formats []Format) TypeEntry {
	e := TypeEntry{Type: typ, Rows: t.n, Files: files}
	if slices.Contains(formats, Parquet) {
		e.Columns = cols
	}
	if !t.maxEventTime.IsZero() {
		x := t.maxEventTime.UTC()
		e.MaxEventTime = &x
	}
	return e
}

// retry calls f until it succeeds, fails permanently, or fails
// retryably five times; it backs off between attempts.
func retry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		v, err := f()
		if err == nil || !graph.IsRetryable(err) || attempt == 5 || ctx.Err() != nil {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// listAll pages through the nodes of typ, calling fn with each page.
func (r *runner) listAll(ctx context.Context, typ string, fn func([]graph.Node) error) error {
	var cursor []byte
	for {
		page, err := retry(ctx, func() (graph.NodePage, error) {
			return r.o.Source.ListNodes(ctx, graph.NodeListQuery{Type: typ, Limit: r.o.ListLimit, Cursor: cursor})
		})
		if err != nil {
			return fmt.Errorf("list %s nodes: %w", typ, err)
		}
		if err := fn(page.Nodes); err != nil {
			return err
		}
		if page.Next == nil {
			return nil
		}
		cursor = page.Next
	}
}

// adjacency pages through the edges of edgeType at node in dir.
func (r *runner) adjacency(ctx context.Context, node graph.NodeKey, edgeType string, dir graph.Direction, fn func([]graph.Edge) error) error {
	q := graph.AdjacencyQuery{Node: node, EdgeType: edgeType, Direction: dir, Order: graph.OrderKey, Limit: r.o.AdjacencyLimit}
	for {
		page, err := retry(ctx, func() (graph.AdjacencyPage, error) { return r.o.Source.Adjacency(ctx, q) })
		if err != nil {
			return fmt.Errorf("%s edges %s of %s: %w", edgeType, dir, node, err)
		}
		if err := fn(page.Edges); err != nil {
			return err
		}
		if page.Next == nil {
			return nil
		}
		q.Cursor = page.Next
	}
}

func (r *runner) exportNodes(ctx context.Context, typ string) (TypeEntry, error) {
	start := time.Now()
	nt, _ := r.o.Schema.NodeType(typ)
	l, err := newLayout(typ, nodeFixed, nt.Props)
	if err != nil {
		return TypeEntry{}, err
	}
	files, names, err := openTypeFiles(r.o.Dir, typ, false, l, r.o.Formats)
	if err != nil {
		return TypeEntry{}, err
	}
	err = r.listAll(ctx, typ, func(nodes []graph.Node) error {
		for _, n := range nodes {
			if err := files.node(n); err != nil {
				return err
			}
		}
		r.rows.Add(int64(len(nodes)))
		return nil
	})
	if err != nil {
		files.abort()
		return TypeEntry{}, err
	}
	if err := files.commit(); err != nil {
		return TypeEntry{}, err
	}
	e := entryOf(typ, files, names, l.cols, r.o.Formats)
	r.finish("nodes", typ, &e, start)
	return e, nil
}

// Coverage texts.
const CoverageComplete = "complete"

// coverage says which edges of et the export cannot reach, and whether the
// reverse pass is worth running.
func coverage(s *graph.Schema, et *graph.EdgeType) (text string, reversePass bool) {
	var implicitFrom, implicitTo []string
	for _, t := range et.From {
		if nt, ok := s.NodeType(t); ok && nt.Implicit {
			implicitFrom = append(implicitFrom, t)
		}
	}
	for _, t := range et.To {
		if nt, ok := s.NodeType(t); ok && nt.Implicit {
			implicitTo = append(implicitTo, t)
		}
	}
	if len(implicitFrom) == 0 {
		return CoverageComplete, false
	}
	from := strings.Join(implicitFrom, ", ")
	if !et.Reverse {
		return fmt.Sprintf("incomplete: edges whose from node (implicit type %s) was never written are not exported: no listing returns that node and the edge type keeps no reverse index", from), false
	}
	if len(implicitTo) == 0 {
		return CoverageComplete, true
	}
	return fmt.Sprintf("incomplete: edges whose from node (implicit type %s) and to node (implicit type %s) were both never written are not exported; edges from a never-written node to a written one are found through the reverse index",
		from, strings.Join(implicitTo, ", ")), true
}

func (r *runner) exportEdges(ctx context.Context, typ string) (TypeEntry, error) {
	start := time.Now()
	et, _ := r.o.Schema.EdgeType(typ)
	l, err := newLayout(typ, edgeFixed, et.Props)
	if err != nil {
		return TypeEntry{}, err
	}
	files, names, err := openTypeFiles(r.o.Dir, typ, true, l, r.o.Formats)
	if err != nil {
		return TypeEntry{}, err
	}
	emit := func(edges []graph.Edge) error {
		for _, e := range edges {
			if err := files.edge(e); err != nil {
				return err
			}
		}
		r.rows.Add(int64(len(edges)))
		return nil
	}
	cov, reversePass := coverage(r.o.Schema, et)
	// Out from every listed From node.
	for _, from := range et.From {
		err := r.listAll(ctx, from, func(nodes []graph.Node) error {
			for _, n := range nodes {
				if err := r.adjacency(ctx, n.Key, typ, graph.Out, emit); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			files.abort()
			return TypeEntry{}, err
		}
	}
	var viaReverse int64
	if reversePass {
		viaReverse, err = r.reversePass(ctx, et, func(e graph.Edge) error { return emit([]graph.Edge{e}) })
		if err != nil {
			files.abort()
			return TypeEntry{}, err
		}
	}
	if err := files.commit(); err != nil {
		return TypeEntry{}, err
	}
	e := entryOf(typ, files, names, l.cols, r.o.Formats)
	e.Coverage, e.ViaReverse = cov, viaReverse
	r.finish("edges", typ, &e, start)
	return e, nil
}

// reversePass pages In from every listed To node and emits the edges whose
// From node is of an implicit type and does not exist (the Out pass, which
// starts at listed nodes, has not seen them).
func (r *runner) reversePass(ctx context.Context, et *graph.EdgeType, emit func(graph.Edge) error) (int64, error) {
	var n int64
	var cand []graph.Edge
	flush := func() error {
		if len(cand) == 0 {
			return nil
		}
		var keys []graph.NodeKey
		seen := map[graph.NodeKey]bool{}
		for _, e := range cand {
			if !seen[e.Key.From] {
				seen[e.Key.From] = true
				keys = append(keys, e.Key.From)
			}
		}
		found, err := retry(ctx, func() (map[graph.NodeKey]graph.Node, error) { return r.o.Source.GetNodes(ctx, keys) })
		if err != nil {
			return fmt.Errorf("read %s from nodes: %w", et.Name, err)
		}
		for _, e := range cand {
			if _, ok := found[e.Key.From]; ok {
				continue
			}
			if err := emit(e); err != nil {
				return err
			}
			n++
		}
		cand = cand[:0]
		return nil
	}
	for _, to := range et.To {
		err := r.listAll(ctx, to, func(nodes []graph.Node) error {
			for _, node := range nodes {
				err := r.adjacency(ctx, node.Key, et.Name, graph.In, func(edges []graph.Edge) error {
					for _, e := range edges {
						if nt, ok := r.o.Schema.NodeType(e.Key.From.Type); !ok || !nt.Implicit {
							continue
						}
						cand = append(cand, e)
						if len(cand) >= r.o.GetNodesBatch {
							if err := flush(); err != nil {
								return err
							}
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, flush()
}
