package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/normalize"
)

func TestCauses(t *testing.T) {
	schemaErr := &graph.SchemaError{Rule: graph.RuleUnknownProperty, Op: graph.OpUpsertEdge, Type: "viewed", Property: "colour"}
	tests := []struct {
		name string
		got  Cause
		want Cause
	}{
		{"decode error", decodeCause(&normalize.DecodeError{Class: normalize.ClassBadTime, Field: "ts", Reason: "not a time"}, "m"),
			Cause{Stage: StageDecode, Class: "bad_time", Field: "ts", Mapping: "m"}},
		{"decoder breaking its contract", decodeCause(errors.New("boom"), "m"),
			Cause{Stage: StageDecode, Class: ClassDecodeError, Mapping: "m"}},
		{"classified mapping error", mapCause(&classifiedErr{class: "join_failed", field: "joins.title"}, "m"),
			Cause{Stage: StageMap, Class: "join_failed", Field: "joins.title", Mapping: "views"}},
		{"schema error from a mapper", mapCause(schemaErr, "m"),
			Cause{Stage: StageMap, Class: ClassNonConforming, Field: "colour", Mapping: "m"}},
		{"unclassified mapping error", mapCause(errors.New("boom"), "m"),
			Cause{Stage: StageMap, Class: ClassMappingError, Mapping: "m"}},
		{"store refusal", storeCause(schemaErr, "m"),
			Cause{Stage: StageStore, Class: ClassNonConforming, Field: "colour", Mapping: "m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.Reason == "" {
				t.Error("no reason")
			}
			tt.got.Reason = ""
			if tt.got != tt.want {
				t.Errorf("cause = %+v, want %+v", tt.got, tt.want)
			}
		})
	}
}

func TestParseDeadLetterRefuses(t *testing.T) {
	h := func(kv ...string) []*sarama.RecordHeader {
		var out []*sarama.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, &sarama.RecordHeader{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
		}
		return out
	}
	tests := []struct {
		name    string
		headers []*sarama.RecordHeader
	}{
		{"no headers", nil},
		{"no topic", h(HeaderPartition, "1", HeaderOffset, "2")},
		{"no partition", h(HeaderTopic, "t", HeaderOffset, "2")},
		{"no offset", h(HeaderTopic, "t", HeaderPartition, "1")},
		{"bad partition", h(HeaderTopic, "t", HeaderPartition, "x", HeaderOffset, "2")},
		{"partition out of range", h(HeaderTopic, "t", HeaderPartition, "4294967296", HeaderOffset, "2")},
		{"bad offset", h(HeaderTopic, "t", HeaderPartition, "1", HeaderOffset, "2.5")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseDeadLetter(tt.headers); !errors.Is(err, ErrNotDeadLetter) {
				t.Fatalf("err = %v, want ErrNotDeadLetter", err)
			}
		})
	}
}

func TestReasonIsTruncatedOnARuneBoundary(t *testing.T) {
	long := strings.Repeat("é", MaxReasonBytes) // 2 bytes each
	src := &sarama.ConsumerMessage{Topic: "t", Partition: 1, Offset: 2}
	m := deadLetterMessage("dlq", "g", src, Cause{Stage: StageMap, Class: "c", Reason: "x" + long}, time.Now())
	r := header(m, HeaderReason)
	if len(r) > MaxReasonBytes || !utf8.ValidString(r) || len(r) < MaxReasonBytes-2 {
		t.Fatalf("reason of %d bytes, valid UTF-8 %v", len(r), utf8.ValidString(r))
	}
	if m.Key != nil || m.Value != nil {
		t.Error("a record without key and value gained one")
	}
}

// FuzzDeadLetterRoundTrip: whatever the cause and the source record's
// headers, the dead letter parses back to its source coordinates and cause,
// and the source headers are kept except the pipeline's own.
func FuzzDeadLetterRoundTrip(f *testing.F) {
	f.Add("malformed_json", "value", "unexpected end", "views", "orders", int32(3), int64(42), "trace", "t-1")
	f.Add("", "", "", "", "t", int32(0), int64(0), HeaderClass, "forged")
	f.Fuzz(func(t *testing.T, class, field, reason, mapping, topic string, partition int32, offset int64, hk, hv string) {
		if topic == "" || partition < 0 || offset < 0 {
			return
		}
		src := &sarama.ConsumerMessage{Topic: topic, Partition: partition, Offset: offset, Key: []byte("k"), Value: []byte("v"),
			Timestamp: time.Unix(1_700_000_000, 0), Headers: []*sarama.RecordHeader{{Key: []byte(hk), Value: []byte(hv)}}}
		c := Cause{Stage: StageDecode, Class: class, Field: field, Reason: reason, Mapping: mapping}
		m := deadLetterMessage("dlq", "g", src, c, time.Unix(1_700_000_100, 0))
		dl, err := ParseDeadLetter(toRecordHeaders(m.Headers))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		if dl.Topic != topic || dl.Partition != partition || dl.Offset != offset || dl.Group != "g" ||
			dl.Class != class || dl.Field != field || dl.Mapping != mapping || dl.Stage != StageDecode ||
			dl.Reason != truncateUTF8(reason, MaxReasonBytes) || !dl.Timestamp.Equal(src.Timestamp) {
			t.Fatalf("round trip: %+v from %+v", dl, c)
		}
		kept := header(m, hk)
		if strings.HasPrefix(hk, headerPrefix) {
			if hk != HeaderClass && hk != HeaderStage && hk != HeaderReason && hk != HeaderField && hk != HeaderMapping &&
				hk != HeaderTopic && hk != HeaderPartition && hk != HeaderOffset && hk != HeaderTimestamp && hk != HeaderGroup &&
				hk != HeaderTime && kept != "" {
				t.Fatalf("source header %q under the pipeline's prefix was kept", hk)
			}
		} else if kept != hv {
			t.Fatalf("source header %q = %q, want %q", hk, kept, hv)
		}
	})
}
