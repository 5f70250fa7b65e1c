package schemas

import _ "embed"

// EnvelopeSchema is the JSON Schema (draft 2020-12) of the JSON encoding of
// normalize.Envelope. The normalize tests validate every envelope the
// decoders produce against it, so it cannot drift from the Go type.
//
//go:embed envelope.schema.json
var EnvelopeSchema []byte
