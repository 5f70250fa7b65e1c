package export

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/rtgraph/rtgraph/graph"
)

// Format is an output file format.
type Format string

// The formats.
const (
	Parquet Format = "parquet"
	JSONL   Format = "jsonl"
)

// ParseFormats reads a comma-separated list such as "parquet,jsonl".
func ParseFormats(list []string) ([]Format, error) {
	var out []Format
	seen := map[Format]bool{}
	for _, s := range list {
		f := Format(s)
		switch f {
		case Parquet, JSONL:
		default:
			return nil, fmt.Errorf("unknown format %q (want parquet, jsonl)", s)
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no format given (want parquet, jsonl)")
	}
	return out, nil
}

func (f Format) ext() string {
	if f == Parquet {
		return ".parquet"
	}
	return ".jsonl"
}

// tmpSuffix marks a file being written; it is renamed to its final name
// only once complete.
const tmpSuffix = ".partial"

// pending is one output file being written under a temporary name.
type pending struct {
	final, tmp string
	f          *os.File
}

func create(final string) (*pending, error) {
	tmp := final + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", tmp, err)
	}
	return &pending{final: final, tmp: tmp, f: f}, nil
}

// commit syncs, closes and renames the file to its final name.
func (p *pending) commit() error {
	if err := p.f.Sync(); err != nil {
		p.abort()
		return fmt.Errorf("write %s: %w", p.tmp, err)
	}
	if err := p.f.Close(); err != nil {
		_ = os.Remove(p.tmp)
		return fmt.Errorf("write %s: %w", p.tmp, err)
	}
	if err := os.Rename(p.tmp, p.final); err != nil {
		_ = os.Remove(p.tmp)
		return fmt.Errorf("rename %s: %w", p.tmp, err)
	}
	return nil
}

func (p *pending) abort() {
	_ = p.f.Close()
	_ = os.Remove(p.tmp)
}

// typeFiles writes the files of one type in every requested format.
type typeFiles struct {
	layout *layout
	edges  bool

	pq    *pending
	pw    *parquet.GenericWriter[any]
	rows  []parquet.Row
	jsonf *pending
	jw    *bufio.Writer

	n            int64
	maxEventTime time.Time
}

// batchRows is how many Parquet rows are buffered before WriteRows.
const batchRows = 1024

func openTypeFiles(dir, typ string, edges bool, l *layout, formats []Format) (*typeFiles, map[string]string, error) {
	t := &typeFiles{layout: l, edges: edges}
	sub := "nodes"
	if edges {
		sub = "edges"
	}
	names := map[string]string{}
	for _, f := range formats {
		rel := filepath.ToSlash(filepath.Join(sub, typ+f.ext()))
		p, err := create(filepath.Join(dir, sub, typ+f.ext()))
		if err != nil {
			t.abort()
			return nil, nil, err
		}
		names[string(f)] = rel
		switch f {
		case Parquet:
			t.pq = p
			t.pw = parquet.NewGenericWriter[any](p.f, l.schema, parquet.Compression(&parquet.Zstd),
				parquet.CreatedBy("rtgraph export", "", ""))
		case JSONL:
			t.jsonf = p
			t.jw = bufio.NewWriterSize(p.f, 256<<10)
		}
	}
	return t, names, nil
}

type keyJSON struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// nodeLine and edgeLine are the API's node and edge JSON.
type nodeLine struct {
	Type      string      `json:"type"`
	ID        string      `json:"id"`
	Props     graph.Props `json:"props"`
	EventTime time.Time   `json:"event_time"`
}

type edgeLine struct {
	Type      string      `json:"type"`
	From      keyJSON     `json:"from"`
	To        keyJSON     `json:"to"`
	Props     graph.Props `json:"props"`
	EventTime time.Time   `json:"event_time"`
	ExpiresAt *time.Time  `json:"expires_at,omitempty"`
}

func nonNil(p graph.Props) graph.Props {
	if p == nil {
		return graph.Props{}
	}
	return p
}

func (t *typeFiles) node(n graph.Node) error {
	if t.pw != nil {
		row, err := t.layout.nodeRow(nil, n)
		if err != nil {
			return err
		}
		if err := t.addRow(row); err != nil {
			return err
		}
	}
	if t.jw != nil {
		if err := t.line(nodeLine{Type: n.Key.Type, ID: n.Key.ID, Props: nonNil(n.Props), EventTime: n.EventTime.UTC()}); err != nil {
			return err
		}
	}
	t.count(n.EventTime)
	return nil
}

func (t *typeFiles) edge(e graph.Edge) error {
	if t.pw != nil {
		row, err := t.layout.edgeRow(nil, e)
		if err != nil {
			return err
		}
		if err := t.addRow(row); err != nil {
			return err
		}
	}
	if t.jw != nil {
		l := edgeLine{
			Type: e.Key.Type, From: keyJSON(e.Key.From), To: keyJSON(e.Key.To),
			Props: nonNil(e.Props), EventTime: e.EventTime.UTC(),
		}
		if !e.ExpiresAt.IsZero() {
			x := e.ExpiresAt.UTC()
			l.ExpiresAt = &x
		}
		if err := t.line(l); err != nil {
			return err
		}
	}
	t.count(e.EventTime)
	return nil
}

func (t *typeFiles) count(at time.Time) {
	t.n++
	if at.After(t.maxEventTime) {
		t.maxEventTime = at
	}
}

func (t *typeFiles) addRow(row parquet.Row) error {
	t.rows = append(t.rows, row)
	if len(t.rows) < batchRows {
		return nil
	}
	return t.flushRows()
}

func (t *typeFiles) flushRows() error {
	if len(t.rows) == 0 {
		return nil
	}
	if _, err := t.pw.WriteRows(t.rows); err != nil {
		return fmt.Errorf("write %s: %w", t.pq.tmp, err)
	}
	t.rows = t.rows[:0]
	return nil
}

func (t *typeFiles) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", t.jsonf.tmp, err)
	}
	b = append(b, '\n')
	if _, err := t.jw.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", t.jsonf.tmp, err)
	}
	return nil
}

// commit completes every file and gives it its final name.
func (t *typeFiles) commit() error {
	if t.pw != nil {
		if err := t.flushRows(); err != nil {
			t.abort()
			return err
		}
		if err := t.pw.Close(); err != nil {
			t.abort()
			return fmt.Errorf("write %s: %w", t.pq.tmp, err)
		}
	}
	if t.jw != nil {
		if err := t.jw.Flush(); err != nil {
			t.abort()
			return fmt.Errorf("write %s: %w", t.jsonf.tmp, err)
		}
	}
	var errs []error
	for _, p := range []*pending{t.pq, t.jsonf} {
		if p != nil {
			errs = append(errs, p.commit())
		}
	}
	return errors.Join(errs...)
}

// abort removes the temporary files.
func (t *typeFiles) abort() {
	for _, p := range []*pending{t.pq, t.jsonf} {
		if p != nil {
			p.abort()
		}
	}
}
