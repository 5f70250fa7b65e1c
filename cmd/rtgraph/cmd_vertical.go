package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/internal/config"
	"github.com/rtgraph/rtgraph/normalize"
	"github.com/rtgraph/rtgraph/vertical"
)

// Hooks for tests: where `vertical try --file -` reads, and the clock that
// stamps ingest times and records without timestamp in check and try.
var (
	verticalStdin io.Reader = os.Stdin
	verticalClock           = time.Now
)

// verticalFlag adds --vertical DIR to a command's flags.
func verticalFlag(fs *flag.FlagSet) *string {
	return fs.String("vertical", "", "run the vertical in this folder: its topics and decoders, caches, graph schema and mappings (see verticals/README.md)")
}

// loadConfigWith loads the configuration; with dir set, around the vertical
// in dir (see loadVerticalConfig).
func loadConfigWith(path string, environ []string, dir string) (*Config, error) {
	if dir == "" {
		return loadConfig(path, environ)
	}
	v, err := vertical.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	return loadVerticalConfig(path, environ, v, "--vertical "+dir)
}

// loadVerticalConfig loads the configuration of a process that runs v: the
// vertical's topics, caches, graph schema, mappings and counted edge types
// take the place of ingest.topics, enrich.caches, schemas.graph_dir,
// schemas.mappings_dir and counts.edge_types. A configuration that sets
// any of them as well is refused, naming both, rather than one silently
// replacing the other; counts.edge_types may come from the configuration
// when the vertical names none. When neither does, counts are off. flag
// names the vertical in errors.
func loadVerticalConfig(path string, environ []string, v *vertical.Vertical, flag string) (*Config, error) {
	c := defaultConfig()
	// Left nil by a configuration that does not set it.
	c.Counts.EdgeTypes = nil
	file := configPath(path, environ)
	if err := config.Load(file, environ, c); err != nil {
		return nil, err
	}
	var both []string
	if len(c.Ingest.Topics) > 0 {
		both = append(both, "ingest.topics")
	}
	if len(c.Enrich.Caches) > 0 {
		both = append(both, "enrich.caches")
	}
	if c.Schemas.GraphDir != "" {
		both = append(both, "schemas.graph_dir")
	}
	if c.Schemas.MappingsDir != "" {
		both = append(both, "schemas.mappings_dir")
	}
	if c.Counts.EdgeTypes != nil && v.CountEdgeTypes != nil {
		both = append(both, "counts.edge_types")
	}
	if len(both) > 0 {
		where := "the configuration (RTGRAPH_* variables)"
		if file != "" {
			where = "the configuration (" + file + " and RTGRAPH_* variables)"
		}
		return nil, fmt.Errorf("%w: %s conflicts with %s in %s: the vertical brings its own (vertical.yaml, graph/, mappings/) and would replace them; remove them from the configuration, or drop --vertical",
			errUsage, flag, joinAnd(both), where)
	}
	switch {
	case v.CountEdgeTypes != nil:
		c.Counts.EdgeTypes = slices.Clone(v.CountEdgeTypes)
	case c.Counts.EdgeTypes == nil:
		c.countsOff = true
	}
	c.Ingest.Topics = v.TopicConfigs()
	c.Enrich.Caches = slices.Clone(v.Enrich.Caches)
	c.vertical = v
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration with %s:\n%w", flag, err)
	}
	return c, nil
}

// joinAnd joins "a", "b", "c" as "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// cmdVertical: rtgraph vertical check DIR | rtgraph vertical try DIR --topic T --file F.
func cmdVertical(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: vertical needs a subcommand: check, try", errUsage)
	}
	switch args[0] {
	case "check":
		return cmdVerticalCheck(ctx, args[1:], stdout, stderr)
	case "try":
		return cmdVerticalTry(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: vertical needs a subcommand: check, try (not %q)", errUsage, args[0])
}

// parseDirArgs parses flags and exactly one folder argument, which may
// come before or after the flags.
func parseDirArgs(fs *flag.FlagSet, args []string) (string, error) {
	var dir string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dir, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", fmt.Errorf("%w: %v", errUsage, err)
	}
	rest := fs.Args()
	if dir == "" && len(rest) > 0 {
		dir, rest = rest[0], rest[1:]
	}
	switch {
	case dir == "":
		return "", fmt.Errorf("%w: %s needs the vertical's folder (DIR)", errUsage, fs.Name())
	case len(rest) > 0:
		return "", fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	}
	if st, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("%s: %w", fs.Name(), err)
	} else if !st.IsDir() {
		return "", fmt.Errorf("%s: %s is not a directory", fs.Name(), dir)
	}
	return dir, nil
}

// cmdVerticalCheck: rtgraph vertical check DIR. One line per checked
// thing on stdout, then a summary; exit 1 when a check failed.
func cmdVerticalCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("vertical check", stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: rtgraph vertical check DIR\n\nValidates the vertical in DIR offline: vertical.yaml, decoders, caches, graph schema, mappings, samples.")
	}
	dir, err := parseDirArgs(fs, args)
	if err != nil {
		return err
	}
	rep := vertical.Check(ctx, os.DirFS(dir), dir, vertical.WithClock(verticalClock))
	for _, r := range rep.Results {
		fmt.Fprintln(stdout, r)
	}
	name := rep.Name
	if name == "" {
		name = dir
	}
	parts := []string{fmt.Sprintf("%d ok", rep.Count(vertical.StatusOK))}
	for _, s := range []struct {
		status vertical.Status
		word   string
	}{{vertical.StatusFail, "failed"}, {vertical.StatusWarn, "warnings"}, {vertical.StatusSkip, "skipped"}} {
		if n := rep.Count(s.status); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s.word))
		}
	}
	fmt.Fprintf(stdout, "vertical %s: %s\n", name, strings.Join(parts, ", "))
	if !rep.OK() {
		return fmt.Errorf("vertical check %s: %d failed", dir, rep.Count(vertical.StatusFail))
	}
	return nil
}

// cmdVerticalTry: rtgraph vertical try DIR --topic T --file F [--json].
func cmdVerticalTry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("vertical try", stderr)
	topic := fs.String("topic", "", "event topic of the vertical the records belong to (required)")
	file := fs.String("file", "", "records in the format rtgraph produce reads (JSON Lines, a JSON array, {\"key\",\"value\"} records); - reads stdin (required)")
	format := fs.String("format", "auto", "file format, as rtgraph produce's: auto, records, values, lines")
	asJSON := fs.Bool("json", false, "print one JSON object per record instead of text")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: rtgraph vertical try DIR --topic T --file F [--json]\n\nPrints what the pipeline makes of each record: the envelope, the mutations, or the dead letter.")
		fs.PrintDefaults()
	}
	dir, err := parseDirArgs(fs, args)
	if err != nil {
		return err
	}
	if *topic == "" || *file == "" {
		return fmt.Errorf("%w: --topic and --file are required", errUsage)
	}
	v, err := vertical.LoadDir(dir)
	if err != nil {
		return err
	}
	if _, ok := v.Topic(*topic); !ok {
		for _, c := range v.Enrich.Caches {
			if c.Topic == *topic {
				return fmt.Errorf("%w: --topic %s feeds cache %s; its records are documents, not events: put them in %s/samples/%s.jsonl to fill the cache",
					errUsage, *topic, c.Name, dir, *topic)
			}
		}
		return fmt.Errorf("%w: --topic %s is not a topic of vertical %s (its topics: %s)", errUsage, *topic, v.Name, strings.Join(v.TopicNames(), ", "))
	}
	var in io.Reader = verticalStdin
	name := "stdin"
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return fmt.Errorf("vertical try: %w", err)
		}
		defer f.Close()
		in, name = f, *file
	}
	recs, err := vertical.ReadRecords(in, name, vertical.Format(*format))
	if err != nil {
		return fmt.Errorf("vertical try: %w", err)
	}
	r, err := vertical.NewRunner(v, vertical.WithClock(verticalClock))
	if err != nil {
		return err
	}
	if note := cachesNote(r.Caches()); note != "" {
		fmt.Fprintln(stderr, note)
	}
	var mapped, dead, muts int
	for i := range recs {
		rec := &recs[i]
		out, err := r.Process(ctx, r.Message(*topic, int64(i), rec))
		if err != nil {
			return err
		}
		exp, expErr := vertical.ExpectOf(rec)
		if out.DeadLetter != nil {
			dead++
		} else {
			mapped++
			muts += out.Mutations()
		}
		if *asJSON {
			if err := writeTryJSON(stdout, i, *topic, rec, &out, exp, expErr); err != nil {
				return err
			}
			continue
		}
		writeTryText(stdout, i, rec, &out, exp, expErr)
	}
	summary := fmt.Sprintf("%s: %d mapped (%s), %d dead-lettered", plural(len(recs), "record"), mapped, plural(muts, "mutation"), dead)
	if *asJSON {
		fmt.Fprintln(stderr, summary)
	} else {
		fmt.Fprintln(stdout, summary)
	}
	return nil
}

// cachesNote says once how the join caches were filled.
func cachesNote(fills []vertical.CacheFill) string {
	if len(fills) == 0 {
		return ""
	}
	var parts []string
	for _, c := range fills {
		if c.File == "" {
			parts = append(parts, fmt.Sprintf("%s empty (no samples/%s.jsonl)", c.Name, c.Topic))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s from %s (%s)", c.Name, c.File, plural(c.Documents, "document")))
	}
	return "join caches: " + strings.Join(parts, "; ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// keyText shows a record key: its text when it is UTF-8, else base64.
func keyText(k []byte) (text string, encoding string) {
	if utf8.Valid(k) {
		return string(k), ""
	}
	return base64.StdEncoding.EncodeToString(k), "base64"
}

func writeTryText(w io.Writer, i int, rec *vertical.Record, out *vertical.Outcome, exp vertical.Expect, expErr error) {
	key := "no key"
	if rec.Key != nil {
		t, enc := keyText(rec.Key)
		key = "key " + t
		if enc != "" {
			key += " (" + enc + ")"
		}
	}
	value := ""
	if rec.Value == nil {
		value = ", tombstone"
	}
	fmt.Fprintf(w, "record %d (line %d, %s%s):\n", i+1, rec.Line, key, value)
	for _, m := range out.Envelopes {
		e := &m.Envelope
		fmt.Fprintf(w, "  envelope %s: %s %s %s", e.ID, e.Kind, e.Op, e.EntityType)
		if e.Key != "" {
			fmt.Fprintf(w, ", key %s", e.Key)
		}
		fmt.Fprintf(w, ", event time %s\n", e.EventTime.UTC().Format(time.RFC3339Nano))
		// Attributes repeat the after (or, for a delete, the before) image
		// of a CDC event: shown only when they say something else.
		attrs := e.Attributes
		if reflect.DeepEqual(attrs, e.After) || reflect.DeepEqual(attrs, e.Before) {
			attrs = nil
		}
		for _, part := range []struct {
			name string
			m    map[string]any
		}{{"key_fields", e.KeyFields}, {"before", e.Before}, {"after", e.After}, {"attributes", attrs}} {
			if len(part.m) > 0 {
				fmt.Fprintf(w, "    %-10s %s\n", part.name, compactJSON(part.m))
			}
		}
		if out.DeadLetter != nil {
			continue
		}
		if len(m.Mutations) == 0 {
			fmt.Fprintln(w, "  no mutations")
			continue
		}
		fmt.Fprintf(w, "  %s:\n", plural(len(m.Mutations), "mutation"))
		for _, mu := range m.Mutations {
			fmt.Fprintf(w, "    %s\n", mutationText(mu, e.EventTime))
		}
	}
	switch dl := out.DeadLetter; {
	case expErr != nil:
		fmt.Fprintf(w, "  (%v)\n", expErr)
	case dl == nil && exp.DeadLetter:
		fmt.Fprintf(w, "  not a dead letter, though %s says %s\n", vertical.ExpectHeader, exp)
	}
	if dl := out.DeadLetter; dl != nil {
		fmt.Fprintf(w, "  dead letter: stage %s, class %s", dl.Stage, dl.Class)
		if dl.Field != "" {
			fmt.Fprintf(w, ", field %s", dl.Field)
		}
		if dl.Mapping != "" {
			fmt.Fprintf(w, ", mapping %s", dl.Mapping)
		}
		switch {
		case exp.DeadLetter && (exp.Class == "" || exp.Class == dl.Class):
			fmt.Fprintf(w, " (expected)")
		case exp.DeadLetter:
			fmt.Fprintf(w, " (%s expects %s)", vertical.ExpectHeader, exp)
		}
		fmt.Fprintf(w, "\n    %s\n", dl.Reason)
	}
}

// mutationText is one mutation on a line: "upsert_edge customer:42 -viewed->
// product:p-100 {props} ttl 30d", with its time when it is not the
// envelope's.
func mutationText(m graph.Mutation, at time.Time) string {
	var b strings.Builder
	b.WriteString(m.Op.String())
	b.WriteString(" ")
	switch m.Op {
	case graph.OpTruncateType:
		b.WriteString(m.Node.Type)
	case graph.OpUpsertNode, graph.OpDeleteNode:
		b.WriteString(m.Node.Type + ":" + m.Node.ID)
	default:
		fmt.Fprintf(&b, "%s:%s -%s-> %s:%s", m.Edge.From.Type, m.Edge.From.ID, m.Edge.Type, m.Edge.To.Type, m.Edge.To.ID)
	}
	if len(m.Props) > 0 {
		b.WriteString(" ")
		b.WriteString(compactJSON(m.Props))
	}
	if len(m.Keep) > 0 {
		b.WriteString(" keep ")
		b.WriteString(strings.Join(m.Keep, ","))
	}
	if m.TTL > 0 {
		b.WriteString(" ttl ")
		b.WriteString(ttlText(m.TTL))
	}
	if !m.EventTime.Equal(at) {
		b.WriteString(" at ")
		b.WriteString(m.EventTime.UTC().Format(time.RFC3339Nano))
	}
	return b.String()
}

// ttlText writes whole days as "30d", as the graph schema does.
func ttlText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// tryRecord is one record of `vertical try --json`.
type tryRecord struct {
	Record      int                  `json:"record"` // 1-based, in file order
	Line        int                  `json:"line"`
	Topic       string               `json:"topic"`
	Partition   int32                `json:"partition"`
	Offset      int64                `json:"offset"`
	Key         *string              `json:"key"`
	KeyEncoding string               `json:"key_encoding,omitempty"`
	Tombstone   bool                 `json:"tombstone,omitempty"`
	Expect      string               `json:"expect,omitempty"`
	ExpectError string               `json:"expect_error,omitempty"`
	Envelopes   []tryEnvelope        `json:"envelopes"`
	DeadLetter  *vertical.DeadLetter `json:"dead_letter,omitempty"`
}

type tryEnvelope struct {
	Envelope  normalize.Envelope `json:"envelope"`
	Mutations []tryMutation      `json:"mutations"`
}

// tryMutation is graph.Mutation with its op and TTL spelt out.
type tryMutation struct {
	Op        string         `json:"op"`
	Node      *graph.NodeKey `json:"node,omitempty"`
	Edge      *graph.EdgeKey `json:"edge,omitempty"`
	Props     graph.Props    `json:"props,omitempty"`
	Keep      []string       `json:"keep,omitempty"`
	EventTime time.Time      `json:"event_time"`
	TTL       string         `json:"ttl,omitempty"`
}

func writeTryJSON(w io.Writer, i int, topic string, rec *vertical.Record, out *vertical.Outcome, exp vertical.Expect, expErr error) error {
	tr := tryRecord{Record: i + 1, Line: rec.Line, Topic: topic, Partition: max(rec.Partition, 0), Offset: int64(i),
		Tombstone: rec.Value == nil, DeadLetter: out.DeadLetter, Envelopes: []tryEnvelope{}}
	if rec.Key != nil {
		t, enc := keyText(rec.Key)
		tr.Key, tr.KeyEncoding = &t, enc
	}
	if exp.DeadLetter {
		tr.Expect = exp.String()
	}
	if expErr != nil {
		tr.ExpectError = expErr.Error()
	}
	for _, m := range out.Envelopes {
		te := tryEnvelope{Envelope: m.Envelope, Mutations: []tryMutation{}}
		for _, mu := range m.Mutations {
			tm := tryMutation{Op: mu.Op.String(), Props: mu.Props, Keep: mu.Keep, EventTime: mu.EventTime}
			switch mu.Op {
			case graph.OpUpsertNode, graph.OpDeleteNode, graph.OpTruncateType:
				tm.Node = &mu.Node
			default:
				tm.Edge = &mu.Edge
			}
			if mu.TTL > 0 {
				tm.TTL = ttlText(mu.TTL)
			}
			te.Mutations = append(te.Mutations, tm)
		}
		tr.Envelopes = append(tr.Envelopes, te)
	}
	b, err := json.Marshal(tr)
	if err != nil {
		return fmt.Errorf("vertical try: record %d: %w", i+1, err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
