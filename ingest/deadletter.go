package ingest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/normalize"
)

// Headers of a dead-letter record. The record's key and value are the
// source record's, byte for byte, and its own headers follow these, so a
// dead letter can be replayed as it was.
const (
	HeaderClass     = "rtgraph.dlq.class"     // error class: a closed vocabulary per stage
	HeaderStage     = "rtgraph.dlq.stage"     // decode, map or store
	HeaderReason    = "rtgraph.dlq.reason"    // human-readable error, at most MaxReasonBytes
	HeaderField     = "rtgraph.dlq.field"     // offending field, when known
	HeaderMapping   = "rtgraph.dlq.mapping"   // mapping the topic feeds, when known
	HeaderTopic     = "rtgraph.dlq.topic"     // source topic
	HeaderPartition = "rtgraph.dlq.partition" // source partition, decimal
	HeaderOffset    = "rtgraph.dlq.offset"    // source offset, decimal
	HeaderTimestamp = "rtgraph.dlq.timestamp" // source record timestamp, RFC 3339
	HeaderGroup     = "rtgraph.dlq.group"     // consumer group that dead-lettered it
	HeaderTime      = "rtgraph.dlq.time"      // when it was dead-lettered, RFC 3339
	// HeaderValueOmitted is set (OmitTooLarge or OmitRefused) when the
	// source value could not go in a dead-letter record and was left out;
	// the source coordinates still locate it, and HeaderValueBytes and
	// HeaderValueSHA256 identify it.
	HeaderValueOmitted = "rtgraph.dlq.value_omitted"
)

// headerPrefix starts every header the pipeline adds; replay strips them.
const headerPrefix = "rtgraph.dlq."

// MaxReasonBytes bounds the reason header.
const MaxReasonBytes = 1024

// Stages at which a record can fail.
const (
	StageDecode = "decode"
	StageMap    = "map"
	StageStore  = "store"
)

// Classes the pipeline itself assigns; the others come from normalize
// (normalize.ErrorClass) and from the mapper.
const (
	// ClassNonConforming: the store refused the record's mutations as not
	// conforming to the graph schema (graph.ErrNonConforming).
	ClassNonConforming = "non_conforming"
	// ClassDecodeError: the decoder failed without a *normalize.DecodeError.
	ClassDecodeError = "decode_error"
	// ClassMappingError: the mapper failed permanently without naming a class.
	ClassMappingError = "mapping_error"
)

// Cause says why a record was dead-lettered.
type Cause struct {
	Stage   string
	Class   string
	Reason  string
	Field   string
	Mapping string
}

// ClassifiedError is implemented by permanent mapper errors that name their
// dead-letter class, field and mapping. A mapper error that does not
// implement it is dead-lettered with class mapping_error and its text as
// the reason.
type ClassifiedError interface {
	error
	DeadLetterClass() string
	DeadLetterField() string
	DeadLetterMapping() string
}

// decodeCause describes a decoder error.
func decodeCause(err error, mapping string) Cause {
	c := Cause{Stage: StageDecode, Class: ClassDecodeError, Reason: err.Error(), Mapping: mapping}
	var de *normalize.DecodeError
	if errors.As(err, &de) {
		c.Class = string(de.Class)
		c.Field = de.Field
	}
	return c
}

// mapCause describes a permanent mapper error.
func mapCause(err error, mapping string) Cause {
	c := Cause{Stage: StageMap, Class: ClassMappingError, Reason: err.Error(), Mapping: mapping}
	var ce ClassifiedError
	if errors.As(err, &ce) {
		if cl := ce.DeadLetterClass(); cl != "" {
			c.Class = cl
		}
		c.Field = ce.DeadLetterField()
		if m := ce.DeadLetterMapping(); m != "" {
			c.Mapping = m
		}
		return c
	}
	var se *graph.SchemaError
	if errors.As(err, &se) {
		c.Class = ClassNonConforming
		c.Field = se.Property
	}
	return c
}

// storeCause describes a store's refusal of a record's mutations.
func storeCause(err error, mapping string) Cause {
	c := Cause{Stage: StageStore, Class: ClassNonConforming, Reason: err.Error(), Mapping: mapping}
	var se *graph.SchemaError
	if errors.As(err, &se) {
		c.Field = se.Property
	}
	return c
}

// deadLetterMessage builds the dead-letter record of msg.
func deadLetterMessage(topic, group string, msg *sarama.ConsumerMessage, c Cause, at time.Time) *sarama.ProducerMessage {
	hs := make([]sarama.RecordHeader, 0, 11+len(msg.Headers))
	add := func(k, v string) {
		if v != "" {
			hs = append(hs, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
	}
	add(HeaderClass, c.Class)
	add(HeaderStage, c.Stage)
	add(HeaderReason, truncateUTF8(c.Reason, MaxReasonBytes))
	add(HeaderField, c.Field)
	add(HeaderMapping, c.Mapping)
	add(HeaderTopic, msg.Topic)
	add(HeaderPartition, strconv.FormatInt(int64(msg.Partition), 10))
	add(HeaderOffset, strconv.FormatInt(msg.Offset, 10))
	if !msg.Timestamp.IsZero() {
		add(HeaderTimestamp, msg.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	add(HeaderGroup, group)
	add(HeaderTime, at.UTC().Format(time.RFC3339Nano))
	for _, h := range msg.Headers {
		if h != nil && !strings.HasPrefix(string(h.Key), headerPrefix) {
			hs = append(hs, *h)
		}
	}
	pm := &sarama.ProducerMessage{Topic: topic, Headers: hs}
	if msg.Key != nil {
		pm.Key = sarama.ByteEncoder(msg.Key)
	}
	if msg.Value != nil {
		pm.Value = sarama.ByteEncoder(msg.Value)
	}
	if !msg.Timestamp.IsZero() {
		pm.Timestamp = msg.Timestamp
	}
	return pm
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// DeadLetter is a dead-letter record read back: why it failed and where it
// came from.
type DeadLetter struct {
	Cause
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time // source record timestamp; zero when unknown
	Group     string
	At        time.Time // when it was dead-lettered
	// ValueOmitted is set when the value was left out (OmitTooLarge or
	// OmitRefused); ValueBytes and ValueSHA256 then describe it. The same
	// for the key; HeadersOmitted when the source headers were left out.
	ValueOmitted   bool
	ValueWhy       string
	ValueBytes     int
	ValueSHA256    string
	KeyOmitted     bool
	KeyBytes       int
	KeySHA256      string
	HeadersOmitted bool
}

// ErrNotDeadLetter is returned by ParseDeadLetter for a record without the
// source coordinates headers.
var ErrNotDeadLetter = errors.New("ingest: not a dead-letter record")

// ParseDeadLetter reads the dead-letter headers of a record.
func ParseDeadLetter(headers []*sarama.RecordHeader) (DeadLetter, error) {
	var d DeadLetter
	var havePartition, haveOffset bool
	for _, h := range headers {
		if h == nil {
			continue
		}
		v := string(h.Value)
		switch string(h.Key) {
		case HeaderClass:
			d.Class = v
		case HeaderStage:
			d.Stage = v
		case HeaderReason:
			d.Reason = v
		case HeaderField:
			d.Field = v
		case HeaderMapping:
			d.Mapping = v
		case HeaderTopic:
			d.Topic = v
		case HeaderPartition:
			p, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return d, fmt.Errorf("%w: %s %q: %v", ErrNotDeadLetter, HeaderPartition, v, err)
			}
			d.Partition, havePartition = int32(p), true
		case HeaderOffset:
			o, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return d, fmt.Errorf("%w: %s %q: %v", ErrNotDeadLetter, HeaderOffset, v, err)
			}
			d.Offset, haveOffset = o, true
		case HeaderTimestamp:
			d.Timestamp, _ = time.Parse(time.RFC3339Nano, v)
		case HeaderGroup:
			d.Group = v
		case HeaderTime:
			d.At, _ = time.Parse(time.RFC3339Nano, v)
		case HeaderValueOmitted:
			d.ValueOmitted, d.ValueWhy = true, v
		case HeaderValueBytes:
			d.ValueBytes, _ = strconv.Atoi(v)
		case HeaderValueSHA256:
			d.ValueSHA256 = v
		case HeaderKeyOmitted:
			d.KeyOmitted = true
		case HeaderKeyBytes:
			d.KeyBytes, _ = strconv.Atoi(v)
		case HeaderKeySHA256:
			d.KeySHA256 = v
		case HeaderHeadersOmitted:
			d.HeadersOmitted = true
		}
	}
	if d.Topic == "" || !havePartition || !haveOffset {
		return d, fmt.Errorf("%w: missing %s, %s or %s", ErrNotDeadLetter, HeaderTopic, HeaderPartition, HeaderOffset)
	}
	return d, nil
}
