package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/schemas"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// testClock is the ingest clock of every test decoder, so outputs are
// reproducible.
var testClock = func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }

var (
	envelopeSchemaOnce sync.Once
	envelopeSchema     *jsonschema.Schema
	envelopeSchemaErr  error
)

// compiledEnvelopeSchema compiles schemas/envelope.schema.json with format
// assertions on (date-time is checked, not just annotated).
func compiledEnvelopeSchema(tb testing.TB) *jsonschema.Schema {
	tb.Helper()
	envelopeSchemaOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.EnvelopeSchema))
		if err != nil {
			envelopeSchemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err := c.AddResource("envelope.schema.json", doc); err != nil {
			envelopeSchemaErr = err
			return
		}
		envelopeSchema, envelopeSchemaErr = c.Compile("envelope.schema.json")
	})
	if envelopeSchemaErr != nil {
		tb.Fatalf("compile envelope schema: %v", envelopeSchemaErr)
	}
	return envelopeSchema
}

// validateEnvelopeJSON validates one envelope's JSON encoding against the
// JSON Schema.
func validateEnvelopeJSON(tb testing.TB, b []byte) error {
	tb.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return compiledEnvelopeSchema(tb).Validate(inst)
}

// checkDecodeResult asserts the decoder contract on one result: an error is
// a *DecodeError of a known class and comes with no envelopes; otherwise
// there is at least one envelope and each passes Validate and the JSON
// Schema.
func checkDecodeResult(tb testing.TB, envs []Envelope, err error) {
	tb.Helper()
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			tb.Fatalf("error %v (%T) is not a *DecodeError", err, err)
		}
		switch de.Class {
		case ClassMalformedJSON, ClassSchemaViolation, ClassUnsupportedOp, ClassMissingField, ClassBadTime, ClassWrongType:
		default:
			tb.Fatalf("error class %q is not in the vocabulary", de.Class)
		}
		if envs != nil {
			tb.Fatalf("error %v returned with envelopes", err)
		}
		return
	}
	if len(envs) == 0 {
		tb.Fatal("no envelopes and no error")
	}
	for i := range envs {
		if verr := envs[i].Validate(); verr != nil {
			tb.Fatalf("envelope %d: %v", i, verr)
		}
		b, merr := json.Marshal(&envs[i])
		if merr != nil {
			tb.Fatalf("envelope %d does not encode: %v", i, merr)
		}
		if verr := validateEnvelopeJSON(tb, b); verr != nil {
			tb.Fatalf("envelope %d fails the JSON Schema: %v\n%s", i, verr, b)
		}
	}
}

func timeFromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
