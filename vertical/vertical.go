package vertical

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/normalize"
	"github.com/rtgraph/rtgraph/verticals"
)

// The parts of a vertical folder.
const (
	// FileName is the vertical file at the folder's root.
	FileName = "vertical.yaml"
	// GraphDir holds the graph schema (*.yaml, read by graph.LoadSchema).
	GraphDir = "graph"
	// MappingsDir holds the mapping rules (*.yaml, read by mapping.Load).
	MappingsDir = "mappings"
	// SamplesDir holds sample records, <topic>.jsonl, in the format
	// `rtgraph produce` reads.
	SamplesDir = "samples"
)

// maxFileBytes bounds vertical.yaml and each samples file read whole.
const maxFileBytes = 16 << 20

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// Topic is one event topic of a vertical and its decoder configuration.
type Topic struct {
	Name    string
	Decoder normalize.Config
	// Line is where the topic is declared in vertical.yaml.
	Line int
}

// cacheDecl is where one metadata cache is declared in vertical.yaml.
type cacheDecl struct {
	name string
	line int
}

// Vertical is a vertical folder, parsed: its topics with their decoders,
// its caches and counted edge types from vertical.yaml, and the folder
// itself for the graph schema, the mappings and the samples.
type Vertical struct {
	// Name identifies the vertical in messages.
	Name string
	// Description is free text.
	Description string
	// Topics are the event topics in the order vertical.yaml lists them.
	Topics []Topic
	// Enrich holds the metadata caches; IdleProbe is enrich's default, since
	// it is a setting of the process, not of the vertical.
	Enrich enrich.Config
	// CountEdgeTypes are the edge types counted for frequency caps
	// (counts.edge_types); nil when the vertical counts none.
	CountEdgeTypes []string
	// FS is the folder: vertical.yaml, graph/, mappings/, samples/.
	FS fs.FS
	// Source says where the folder came from, for messages: its directory,
	// or "built-in streaming".
	Source string

	caches     []cacheDecl
	countsLine int
}

// Builtin returns the built-in streaming vertical (verticals/streaming,
// embedded in the binary).
func Builtin() (*Vertical, error) {
	return Load(verticals.Streaming(), "built-in "+verticals.StreamingName)
}

// LoadDir loads the vertical in directory dir.
func LoadDir(dir string) (*Vertical, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("vertical %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("vertical %s: not a directory", dir)
	}
	return Load(os.DirFS(dir), dir)
}

// Load reads vertical.yaml at the root of fsys strictly (unknown keys are
// errors at every level) and validates its topics' decoders and its
// caches. It does not read graph/, mappings/ or samples/: see Check, and
// GraphFS and MappingsFS. source names the folder in errors.
func Load(fsys fs.FS, source string) (*Vertical, error) {
	v, err := parse(fsys, source)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, t := range v.Topics {
		if err := v.topicError(t); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, v.cacheErrors()...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("vertical %s:\n%w", source, err)
	}
	return v, nil
}

// GraphFS returns the graph/ folder, for graph.LoadSchema(fsys, ".").
func (v *Vertical) GraphFS() fs.FS { return sub(v.FS, GraphDir) }

// MappingsFS returns the mappings/ folder, for mapping.Load.
func (v *Vertical) MappingsFS() fs.FS { return sub(v.FS, MappingsDir) }

// TopicConfigs returns the topics in the shape of ingest.topics: topic →
// decoder configuration.
func (v *Vertical) TopicConfigs() map[string]normalize.Config {
	out := make(map[string]normalize.Config, len(v.Topics))
	for _, t := range v.Topics {
		out[t.Name] = t.Decoder
	}
	return out
}

// TopicNames returns the event topics in file order.
func (v *Vertical) TopicNames() []string {
	out := make([]string, len(v.Topics))
	for i, t := range v.Topics {
		out[i] = t.Name
	}
	return out
}

// CacheTopics returns the topics of the caches, in file order.
func (v *Vertical) CacheTopics() []string {
	out := make([]string, len(v.Enrich.Caches))
	for i, c := range v.Enrich.Caches {
		out[i] = c.Topic
	}
	return out
}

// Topic returns the event topic called name.
func (v *Vertical) Topic(name string) (Topic, bool) {
	for _, t := range v.Topics {
		if t.Name == name {
			return t, true
		}
	}
	return Topic{}, false
}

// cacheOf returns the cache fed by topic.
func (v *Vertical) cacheOf(topic string) (enrich.CacheConfig, bool) {
	for _, c := range v.Enrich.Caches {
		if c.Topic == topic {
			return c, true
		}
	}
	return enrich.CacheConfig{}, false
}

func sub(fsys fs.FS, dir string) fs.FS {
	s, err := fs.Sub(fsys, dir)
	if err != nil {
		// dir is one of the constant, valid folder names.
		panic(err)
	}
	return s
}

// Problem locates one thing wrong with a vertical: a file of the folder,
// a line when known, a field, and what is wrong.
type Problem struct {
	File  string // path within the folder: vertical.yaml, mappings/x.yaml, samples/t.jsonl
	Line  int    // 1-based; 0 when unknown
	Field string // dotted path within the file; may be empty
	Msg   string
}

func (p *Problem) Error() string { return p.Location() + ": " + p.Msg }

// Location is "file:line field", leaving out what is unknown.
func (p *Problem) Location() string {
	s := p.File
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
	}
	if p.Field != "" {
		s += " " + p.Field
	}
	return s
}

// topLevelKeys are the keys of vertical.yaml.
var topLevelKeys = []string{"name", "description", "topics", "enrich", "counts"}

// definition is vertical.yaml decoded.
type definition struct {
	Name        string                      `yaml:"name"`
	Description string                      `yaml:"description"`
	Topics      map[string]normalize.Config `yaml:"topics"`
	Enrich      enrich.Config               `yaml:"enrich"`
	Counts      *struct {
		EdgeTypes []string `yaml:"edge_types"`
	} `yaml:"counts"`
}

// parse reads vertical.yaml: its syntax, its keys and the name. The
// topics' decoders and the caches are validated by topicError and
// cacheErrors, so that Check can report each on its own.
func parse(fsys fs.FS, source string) (*Vertical, error) {
	data, err := readFile(fsys, FileName)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &Problem{File: FileName, Msg: fmt.Sprintf("missing: %s is not a vertical folder (it needs vertical.yaml, graph/ and mappings/)", source)}
		}
		return nil, &Problem{File: FileName, Msg: err.Error()}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlProblem(FileName, err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, &Problem{File: FileName, Msg: "not a YAML mapping of " + strings.Join(topLevelKeys, ", ")}
	}
	top := root.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i]
		if !slices.Contains(topLevelKeys, k.Value) {
			return nil, &Problem{File: FileName, Line: k.Line, Field: k.Value, Msg: "unknown key (known: " + strings.Join(topLevelKeys, ", ") + ")"}
		}
	}
	var d definition
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlProblem(FileName, err)
	}
	v := &Vertical{Name: d.Name, Description: d.Description, FS: fsys, Source: source, Enrich: enrich.DefaultConfig()}
	nameLine := lineOf(top, "name")
	switch {
	case d.Name == "":
		return nil, &Problem{File: FileName, Line: nameLine, Field: "name", Msg: "required: the vertical's name, [a-z][a-z0-9_-]*"}
	case !nameRE.MatchString(d.Name):
		return nil, &Problem{File: FileName, Line: nameLine, Field: "name", Msg: fmt.Sprintf("%q must match [a-z][a-z0-9_-]* and be at most 64 bytes", d.Name)}
	}
	if len(d.Topics) == 0 {
		return nil, &Problem{File: FileName, Line: lineOf(top, "topics"), Field: "topics", Msg: "must name at least one event topic (topic: decoder configuration, as ingest.topics)"}
	}
	// The topics in file order, with their lines.
	if tn := valueOf(top, "topics"); tn != nil && tn.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(tn.Content); i += 2 {
			name := tn.Content[i].Value
			v.Topics = append(v.Topics, Topic{Name: name, Decoder: d.Topics[name], Line: tn.Content[i].Line})
		}
	}
	if d.Enrich.IdleProbe != 0 {
		en := valueOf(top, "enrich")
		return nil, &Problem{File: FileName, Line: lineOf(en, "idle_probe"), Field: "enrich.idle_probe",
			Msg: "a setting of the process, not of the vertical: set enrich.idle_probe in the process configuration"}
	}
	v.Enrich.Caches = d.Enrich.Caches
	if en := valueOf(top, "enrich"); en != nil {
		if cn := valueOf(en, "caches"); cn != nil && cn.Kind == yaml.SequenceNode {
			for i, item := range cn.Content {
				if i < len(d.Enrich.Caches) {
					v.caches = append(v.caches, cacheDecl{name: d.Enrich.Caches[i].Name, line: item.Line})
				}
			}
		}
	}
	if d.Counts != nil {
		v.countsLine = lineOf(top, "counts")
		if len(d.Counts.EdgeTypes) == 0 {
			return nil, &Problem{File: FileName, Line: v.countsLine, Field: "counts.edge_types",
				Msg: "empty: name the edge types counted for frequency caps, or leave counts out to count none"}
		}
		v.CountEdgeTypes = slices.Clone(d.Counts.EdgeTypes)
	}
	return v, nil
}

// topicError validates one topic: its name and its decoder.
func (v *Vertical) topicError(t Topic) error {
	if err := checkTopicName(t.Name); err != nil {
		return &Problem{File: FileName, Line: t.Line, Field: "topics." + t.Name, Msg: err.Error()}
	}
	if err := t.Decoder.Validate(); err != nil {
		return &Problem{File: FileName, Line: t.Line, Field: "topics." + t.Name, Msg: err.Error()}
	}
	return nil
}

// cacheErrors validates the caches; enrich's errors name the field
// (enrich.caches[1].topic), which is its path in vertical.yaml too.
func (v *Vertical) cacheErrors() []error {
	err := v.Enrich.Validate()
	if err == nil {
		for i, c := range v.Enrich.Caches {
			if cerr := checkTopicName(c.Topic); cerr != nil {
				return []error{&Problem{File: FileName, Line: v.cacheLine(i), Field: fmt.Sprintf("enrich.caches[%d].topic", i), Msg: cerr.Error()}}
			}
		}
		return nil
	}
	var out []error
	for _, e := range unjoin(err) {
		field, msg, _ := strings.Cut(e.Error(), ": ")
		line := 0
		if i, ok := cacheIndex(field); ok {
			line = v.cacheLine(i)
		}
		out = append(out, &Problem{File: FileName, Line: line, Field: field, Msg: msg})
	}
	return out
}

func (v *Vertical) cacheLine(i int) int {
	if i >= 0 && i < len(v.caches) {
		return v.caches[i].line
	}
	return 0
}

// cacheIndex reads i from "enrich.caches[i]...".
func cacheIndex(field string) (int, bool) {
	rest, ok := strings.CutPrefix(field, "enrich.caches[")
	if !ok {
		return 0, false
	}
	n, _, ok := strings.Cut(rest, "]")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(n)
	return i, err == nil
}

// unjoin splits an errors.Join into its errors.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// checkTopicName applies Kafka's rules for topic names.
func checkTopicName(t string) error {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return fmt.Errorf("%q is not a valid topic name", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return fmt.Errorf("%q is not a valid topic name (only [a-zA-Z0-9._-])", t)
		}
	}
	return nil
}

func readFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxFileBytes)
	}
	return data, nil
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): `)

// yamlProblem turns a YAML error into a Problem with its line; of several
// (a yaml.TypeError), the first is located and the rest follow.
func yamlProblem(file string, err error) *Problem {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msgs = te.Errors
	} else {
		msgs[0] = strings.TrimPrefix(msgs[0], "yaml: ")
	}
	p := &Problem{File: file}
	for i, m := range msgs {
		if mm := yamlLineRE.FindStringSubmatch(m); mm != nil {
			if i == 0 {
				p.Line, _ = strconv.Atoi(mm[1])
				m = m[len(mm[0]):]
			}
		}
		if i > 0 {
			p.Msg += "; "
		}
		p.Msg += m
	}
	return p
}

// valueOf returns the value of key in mapping node n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// lineOf returns the line of key in mapping node n, else n's, else 0.
func lineOf(n *yaml.Node, key string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	return n.Line
}

// samplePath is the samples file of topic.
func samplePath(topic string) string { return path.Join(SamplesDir, topic+".jsonl") }
