package vertical

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
)

// Dead-letter stages and the classes the pipeline assigns itself, as in
// package ingest's dead-letter headers.
const (
	StageDecode = "decode"
	StageMap    = "map"

	classDecodeError  = "decode_error"
	classMappingError = "mapping_error"
	classNonConform   = "non_conforming"
)

// CacheFill says how a join cache was filled for an offline run.
type CacheFill struct {
	Name, Topic string
	// File is the samples file the documents came from; empty when the
	// vertical has no samples of the cache's topic (the cache is empty).
	File      string
	Documents int
}

// Runner decodes and maps records of a vertical's topics as the pipeline
// does, without Kafka or a store: each topic's decoder, then the mapping
// rules compiled against the graph schema, with the join caches filled from
// the vertical's samples of the cache topics.
type Runner struct {
	v        *Vertical
	schema   *graph.Schema
	mapper   *mapping.Mapper
	decoders map[string]normalize.Decoder
	mappings map[string]string // topic → its decoder's mapping name
	caches   []CacheFill
	now      func() time.Time
}

// RunnerOption adjusts a Runner.
type RunnerOption func(*Runner)

// WithClock sets the clock that stamps envelopes' ingest time and the
// records a file gives no timestamp (produce sends the time of sending).
// Default time.Now.
func WithClock(now func() time.Time) RunnerOption { return func(r *Runner) { r.now = now } }

// NewRunner loads v's graph schema, fills its caches from its samples,
// compiles its mappings and builds its decoders. v must come from Load.
func NewRunner(v *Vertical, opts ...RunnerOption) (*Runner, error) {
	r := &Runner{v: v, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	schema, err := graph.LoadSchema(v.FS, GraphDir)
	if err != nil {
		return nil, fmt.Errorf("vertical %s: %w", v.Source, err)
	}
	r.schema = schema
	lookup, fills, errs := v.fillCaches()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("vertical %s: %w", v.Source, err)
	}
	r.caches = fills
	mapper, err := mapping.Load(v.MappingsFS(), schema, lookup)
	if err != nil {
		return nil, fmt.Errorf("vertical %s: %s/%w", v.Source, MappingsDir, trimMappingPrefix(err))
	}
	r.mapper = mapper
	r.decoders = make(map[string]normalize.Decoder, len(v.Topics))
	r.mappings = make(map[string]string, len(v.Topics))
	for _, t := range v.Topics {
		d, err := normalize.New(t.Decoder, normalize.WithClock(r.now))
		if err != nil {
			return nil, fmt.Errorf("vertical %s: %s: topics.%s: %w", v.Source, FileName, t.Name, err)
		}
		r.decoders[t.Name] = d
		r.mappings[t.Name] = t.Decoder.Mapping
	}
	return r, nil
}

// trimMappingPrefix turns "mapping x.yaml:3: …" into "x.yaml:3: …", for
// "mappings/x.yaml:3: …".
func trimMappingPrefix(err error) error {
	var le *mapping.LoadError
	if errors.As(err, &le) {
		return &prefixed{msg: strings.TrimPrefix(le.Error(), "mapping "), err: err}
	}
	return &prefixed{msg: " " + err.Error(), err: err}
}

type prefixed struct {
	msg string
	err error
}

func (p *prefixed) Error() string { return p.msg }
func (p *prefixed) Unwrap() error { return p.err }

// Schema returns the vertical's graph schema.
func (r *Runner) Schema() *graph.Schema { return r.schema }

// Mapper returns the vertical's compiled mappings.
func (r *Runner) Mapper() *mapping.Mapper { return r.mapper }

// Caches says how each join cache was filled, in vertical.yaml order.
func (r *Runner) Caches() []CacheFill { return r.caches }

// DeadLetter says why the pipeline would dead-letter a record, in the
// terms of its dead-letter headers (rtgraph.dlq.stage, class, field,
// mapping, reason).
type DeadLetter struct {
	Stage   string `json:"stage"`
	Class   string `json:"class"`
	Field   string `json:"field,omitempty"`
	Mapping string `json:"mapping,omitempty"`
	Reason  string `json:"reason"`
}

// Mapped is one envelope a record decoded to and the mutations mapping
// made of it.
type Mapped struct {
	Envelope  normalize.Envelope
	Mutations []graph.Mutation
}

// Outcome is what the pipeline would make of one record: the envelopes it
// decodes to with their mutations, or a dead letter. When an envelope fails
// to map, the record is dead-lettered and none of its mutations are
// written: Envelopes then ends with the envelope that failed, and no
// envelope keeps its mutations.
type Outcome struct {
	Envelopes  []Mapped
	DeadLetter *DeadLetter
}

// Mutations counts the mutations of every envelope.
func (o *Outcome) Mutations() int {
	n := 0
	for _, m := range o.Envelopes {
		n += len(m.Mutations)
	}
	return n
}

// Message is rec as the pipeline would consume it from topic at offset:
// a record without timestamp gets the runner's clock, as produce stamps
// the time of sending; one without partition is on partition 0.
func (r *Runner) Message(topic string, offset int64, rec *Record) normalize.Message {
	msg := normalize.Message{Topic: topic, Partition: max(rec.Partition, 0), Offset: offset,
		Key: rec.Key, Value: rec.Value, Headers: rec.Headers, Timestamp: rec.Timestamp}
	if msg.Timestamp.IsZero() {
		msg.Timestamp = r.now()
	}
	return msg
}

// Process decodes and maps msg, a record of one of the vertical's event
// topics. It fails only for a topic the vertical does not declare or when
// ctx ends.
func (r *Runner) Process(ctx context.Context, msg normalize.Message) (Outcome, error) {
	dec, ok := r.decoders[msg.Topic]
	if !ok {
		return Outcome{}, fmt.Errorf("topic %s is not an event topic of vertical %s", msg.Topic, r.v.Name)
	}
	mappingName := r.mappings[msg.Topic]
	envs, err := dec.Decode(msg)
	if err != nil {
		dl := &DeadLetter{Stage: StageDecode, Class: classDecodeError, Reason: err.Error(), Mapping: mappingName}
		var de *normalize.DecodeError
		if errors.As(err, &de) {
			dl.Class = string(de.Class)
			dl.Field = de.Field
		}
		return Outcome{DeadLetter: dl}, nil
	}
	var out Outcome
	for i := range envs {
		muts, err := r.mapper.Map(ctx, &envs[i])
		out.Envelopes = append(out.Envelopes, Mapped{Envelope: envs[i], Mutations: muts})
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return Outcome{}, ctx.Err()
		}
		out.DeadLetter = mapDeadLetter(err, mappingName)
		for j := range out.Envelopes {
			out.Envelopes[j].Mutations = nil
		}
		break
	}
	return out, nil
}

// mapDeadLetter classifies a mapping error as the pipeline does.
func mapDeadLetter(err error, mappingName string) *DeadLetter {
	dl := &DeadLetter{Stage: StageMap, Class: classMappingError, Reason: err.Error(), Mapping: mappingName}
	var me *mapping.Error
	if errors.As(err, &me) {
		if c := me.DeadLetterClass(); c != "" {
			dl.Class = c
		}
		dl.Field = me.DeadLetterField()
		if m := me.DeadLetterMapping(); m != "" {
			dl.Mapping = m
		}
		return dl
	}
	var se *graph.SchemaError
	if errors.As(err, &se) {
		dl.Class = classNonConform
		dl.Field = se.Property
	}
	return dl
}

// fillCaches builds the join caches from the samples of the cache topics,
// applying every record as the cache's feeder does: a tombstone deletes
// the key, a document replaces it. Records that a cache refuses are
// returned as problems naming the samples file and line.
func (v *Vertical) fillCaches() (mapping.MapLookup, []CacheFill, []error) {
	lookup := mapping.MapLookup{}
	var fills []CacheFill
	var errs []error
	for _, c := range v.Enrich.Caches {
		docs := map[string]map[string]any{}
		lookup[c.Name] = docs
		fill := CacheFill{Name: c.Name, Topic: c.Topic}
		recs, file, err := v.sampleRecords(c.Topic)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fills = append(fills, fill)
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		fill.File = file
		for i := range recs {
			if err := applyDocument(docs, c, &recs[i]); err != nil {
				errs = append(errs, &Problem{File: file, Line: recs[i].Line, Msg: fmt.Sprintf("cache %s: %v", c.Name, err)})
			}
		}
		fill.Documents = len(docs)
		fills = append(fills, fill)
	}
	return lookup, fills, errs
}

// applyDocument applies one record of a cache topic to docs, as
// enrich.Cache.Apply does.
func applyDocument(docs map[string]map[string]any, c enrich.CacheConfig, rec *Record) error {
	k, ok := enrich.RecordKey(rec.Key)
	if !ok {
		return enrich.ErrNoKey
	}
	if len(rec.Value) == 0 {
		delete(docs, k)
		return nil
	}
	limit := c.MaxDocumentBytes
	if limit == 0 {
		limit = enrich.DefaultMaxDocumentBytes
	}
	doc, err := enrich.DecodeDocument(rec.Value, limit)
	if err != nil {
		delete(docs, k)
		return fmt.Errorf("key %q: %w", k, err)
	}
	docs[k] = doc
	return nil
}

// sampleRecords reads samples/<topic>.jsonl; the error wraps
// fs.ErrNotExist when there is none.
func (v *Vertical) sampleRecords(topic string) ([]Record, string, error) {
	file := samplePath(topic)
	data, err := readFile(v.FS, file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, file, err
		}
		return nil, file, &Problem{File: file, Msg: err.Error()}
	}
	recs, err := ReadRecords(strings.NewReader(string(data)), file, FormatAuto)
	if err != nil {
		var re *RecordError
		if errors.As(err, &re) {
			return nil, file, &Problem{File: re.File, Line: re.Line, Msg: re.Err.Error()}
		}
		return nil, file, &Problem{File: file, Msg: err.Error()}
	}
	return recs, file, nil
}

// Samples returns the sample records of topic (an event topic or a cache
// topic) in file order; the error wraps fs.ErrNotExist when the vertical
// has no samples of it.
func (v *Vertical) Samples(topic string) ([]Record, error) {
	recs, _, err := v.sampleRecords(topic)
	return recs, err
}

// SampleTopics lists the topics that have a samples file, sorted.
func (v *Vertical) SampleTopics() ([]string, error) {
	entries, err := fs.ReadDir(v.FS, SamplesDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("vertical %s: %w", v.Source, err)
	}
	var out []string
	for _, e := range entries {
		if t, ok := strings.CutSuffix(e.Name(), ".jsonl"); ok && !e.IsDir() {
			out = append(out, t)
		}
	}
	return out, nil
}
