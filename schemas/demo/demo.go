// Package demo gives tests, benchmarks and the demo generator the built-in
// streaming vertical's input description: a streaming service with an ad
// tier. The vertical itself is one folder, verticals/streaming (read by
// package vertical): vertical.yaml names the topics with their decoders
// and the metadata caches, graph/ and mappings/ hold its node and edge
// types and its rules, and samples/<topic>.jsonl sample records of every
// topic. This package keeps the API the tests were written against.
package demo

import (
	"fmt"

	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/normalize"
	"github.com/rtgraph/rtgraph/vertical"
)

// Topic is one input topic and its decoder configuration.
type Topic struct {
	Topic   string
	Decoder normalize.Config
}

// Vertical is the demo's input description.
type Vertical struct {
	// Topics are the event topics (CDC and request logs), in the order
	// vertical.yaml lists them.
	Topics []Topic
	// Enrich configures the metadata caches (titles, campaigns), with
	// enrich.DefaultConfig's other settings.
	Enrich enrich.Config
}

// Load parses the built-in vertical's vertical.yaml strictly and validates
// every decoder and the enrich configuration.
func Load() (*Vertical, error) {
	v, err := vertical.Builtin()
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	out := &Vertical{Enrich: v.Enrich}
	for _, t := range v.Topics {
		out.Topics = append(out.Topics, Topic{Topic: t.Name, Decoder: t.Decoder})
	}
	return out, nil
}

// SampleTopics lists the topics that have samples, sorted.
func SampleTopics() []string {
	v, err := vertical.Builtin()
	if err != nil {
		return nil
	}
	topics, _ := v.SampleTopics() // the folder is embedded, so it reads
	return topics
}

// Samples returns the sample records of topic in file order, as the
// consumer would read them from partition 0 starting at offset 0.
func Samples(topic string) ([]normalize.Message, error) {
	v, err := vertical.Builtin()
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	recs, err := v.Samples(topic)
	if err != nil {
		return nil, fmt.Errorf("demo: samples of %s: %w", topic, err)
	}
	out := make([]normalize.Message, len(recs))
	for i, r := range recs {
		out[i] = normalize.Message{Topic: topic, Offset: int64(i), Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
	}
	return out, nil
}
