package normalize

import "time"

// Message is one Kafka record as the decoders see it. It holds no client
// library types so that any consumer (sarama, franz-go, a test) can fill it.
// Decoders never retain Key, Value or header slices after Decode returns.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil when the record has no key
	Value     []byte // nil (or empty) for a tombstone
	Headers   []Header
	Timestamp time.Time // the record's Kafka timestamp; zero when unknown
}

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Decoder turns one Kafka message into envelopes.
//
// Decode is safe for concurrent use (one decoder serves every partition of a
// topic). It never panics on any input. It returns at least one envelope, or
// a *DecodeError; errors are permanent (see DecodeError), so the caller sends
// the message to the dead-letter topic with the error's Class in a header
// and moves on. Envelopes returned pass Envelope.Validate.
type Decoder interface {
	Decode(msg Message) ([]Envelope, error)
}
