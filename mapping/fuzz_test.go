package mapping_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
)

var fuzzOps = []normalize.Op{normalize.OpCreate, normalize.OpUpdate, normalize.OpDelete, normalize.OpRead,
	normalize.OpUpsert, normalize.OpTruncate, normalize.OpTombstone, normalize.Op("bogus")}

// FuzzMap maps arbitrary envelopes (any topic of the demo or the unit
// rules, any op, any attribute document, any key and time, contract or not)
// and checks, also with fields marked unavailable, that Map never panics, that every error is a *mapping.Error,
// and that every mutation returned conforms to the schema.
func FuzzMap(f *testing.F) {
	f.Add(uint8(0), uint8(0), "1001", []byte(`{"account_id":1001,"email":"a@b.c","status":"active"}`), int64(1764057600000000))
	f.Add(uint8(4), uint8(0), "u", []byte(`{"user":{"id":"u-1"},"campaign_id":"c-500","creative_id":"cr-77","dwell_s":"x"}`), int64(0))
	f.Add(uint8(6), uint8(0), "k", []byte(`{"event":"playback_start","profile_id":7,"title_id":["t"]}`), int64(-1))
	f.Add(uint8(9), uint8(2), "", []byte(`{"a":{"b":{"c":null}}}`), int64(1<<62))
	f.Add(uint8(10), uint8(0), "k", []byte(`{"kind":"strict","account":1e300,"title":{"x":1}}`), int64(5))
	demo := demoMapper(f)
	unit := unitMapper(f)
	schema, unitSchema := demoSchema(f), testSchema(f)
	topics := append(demo.Topics(), unit.Topics()...)
	topics = append(topics, "t.nowhere")
	f.Fuzz(func(t *testing.T, topic, op uint8, key string, attrs []byte, us int64) {
		env := &normalize.Envelope{
			ID: "fuzz", Kind: normalize.KindRequest, Op: fuzzOps[int(op)%len(fuzzOps)], EntityType: "x", Key: key,
			EventTime: time.UnixMicro(us).UTC(), IngestTime: time.Unix(0, 0),
			Origin: normalize.Origin{Topic: topics[int(topic)%len(topics)]},
		}
		if doc, err := enrich.DecodeDocument(attrs, 1<<16); err == nil {
			env.Attributes, env.After, env.Before = doc, doc, doc
			if op&0x80 != 0 {
				// Half the fields unavailable (unchanged TOASTed columns).
				names := slices.Sorted(maps.Keys(doc))
				for i := 0; i < len(names); i += 2 {
					delete(doc, names[i])
					env.Unavailable = append(env.Unavailable, names[i])
				}
			}
		}
		m, s := demo, schema
		if int(topic)%len(topics) >= len(demo.Topics()) {
			m, s = unit, unitSchema
		}
		muts, err := m.Map(context.Background(), env)
		if err != nil {
			var me *mapping.Error
			if !errors.As(err, &me) {
				t.Fatalf("error %T is not a *mapping.Error: %v", err, err)
			}
			if muts != nil {
				t.Fatalf("mutations returned with error %v", err)
			}
			return
		}
		for i := range muts {
			if err := s.Check(&muts[i]); err != nil {
				t.Fatalf("returned mutation %+v does not conform: %v", muts[i], err)
			}
		}
		_ = mapping.Fold(muts)
	})
}
