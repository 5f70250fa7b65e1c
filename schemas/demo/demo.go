// Package demo owns the demo vertical's input description: a streaming
// service with an ad tier. It embeds which topics exist and how each is
// decoded (vertical.yaml: a normalize.Config per topic and the enrich
// configuration of the metadata caches) and sample records of every topic
// (samples/<topic>.jsonl), used by tests, benchmarks and the embedded demo.
// Its mapping rules are schemas/mappings/*.yaml, its node and edge
// types schemas/graph/*.yaml.
package demo

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/normalize"
)

//go:embed vertical.yaml
var verticalYAML []byte

//go:embed samples/*.jsonl
var samples embed.FS

// Topic is one input topic and its decoder configuration.
type Topic struct {
	Topic   string           `yaml:"topic"`
	Decoder normalize.Config `yaml:"decoder"`
}

// Vertical is the demo's input description.
type Vertical struct {
	// Topics are the event topics (CDC and request logs), in the order the
	// file lists them.
	Topics []Topic `yaml:"topics"`
	// Enrich configures the metadata caches (titles, campaigns).
	Enrich enrich.Config `yaml:"enrich"`
}

// Load parses the embedded vertical.yaml strictly (unknown keys are errors)
// and validates every decoder and the enrich configuration. Enrich settings
// the file does not give keep enrich.DefaultConfig's values.
func Load() (*Vertical, error) {
	v := &Vertical{Enrich: enrich.DefaultConfig()}
	dec := yaml.NewDecoder(bytes.NewReader(verticalYAML))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("demo: vertical.yaml: %w", err)
	}
	seen := map[string]bool{}
	for i, t := range v.Topics {
		if t.Topic == "" || seen[t.Topic] {
			return nil, fmt.Errorf("demo: vertical.yaml: topics[%d]: topic %q is empty or repeated", i, t.Topic)
		}
		seen[t.Topic] = true
		if err := t.Decoder.Validate(); err != nil {
			return nil, fmt.Errorf("demo: vertical.yaml: topics[%d] (%s): %w", i, t.Topic, err)
		}
	}
	if err := v.Enrich.Validate(); err != nil {
		return nil, fmt.Errorf("demo: vertical.yaml: %w", err)
	}
	return v, nil
}

// sampleLine is one line of samples/<topic>.jsonl. A string key is the
// record key's text; any other JSON key is the record key's JSON encoding;
// null is no key. A null value is a tombstone.
type sampleLine struct {
	Key       json.RawMessage `json:"key"`
	Value     json.RawMessage `json:"value"`
	Timestamp time.Time       `json:"timestamp"`
}

// SampleTopics lists the topics that have samples, sorted.
func SampleTopics() []string {
	entries, _ := samples.ReadDir("samples") // the directory is embedded, so it exists
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".jsonl"))
	}
	slices.Sort(out)
	return out
}

// Samples returns the sample records of topic in file order, as the
// consumer would read them from partition 0 starting at offset 0.
func Samples(topic string) ([]normalize.Message, error) {
	data, err := samples.ReadFile(path.Join("samples", topic+".jsonl"))
	if err != nil {
		return nil, fmt.Errorf("demo: samples of %s: %w", topic, err)
	}
	var out []normalize.Message
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l sampleLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("demo: samples of %s: line %d: %w", topic, len(out)+1, err)
		}
		msg := normalize.Message{Topic: topic, Offset: int64(len(out)), Timestamp: l.Timestamp}
		if msg.Key, err = recordBytes(l.Key, true); err != nil {
			return nil, fmt.Errorf("demo: samples of %s: line %d: key: %w", topic, len(out)+1, err)
		}
		if msg.Value, err = recordBytes(l.Value, false); err != nil {
			return nil, fmt.Errorf("demo: samples of %s: line %d: value: %w", topic, len(out)+1, err)
		}
		out = append(out, msg)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("demo: samples of %s: %w", topic, err)
	}
	return out, nil
}

func recordBytes(raw json.RawMessage, unquote bool) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if unquote && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	if !json.Valid(raw) {
		return nil, errors.New("not JSON")
	}
	return slices.Clone(raw), nil
}
