package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// Headers added to a dead letter that could not be produced as it was. The
// source record stays where it was (HeaderTopic, HeaderPartition,
// HeaderOffset); its size and SHA-256 let `rtgraph dlq replay` fetch it from
// there and check that it found the same bytes.
const (
	HeaderValueBytes  = "rtgraph.dlq.value_bytes"  // size of the omitted value, decimal
	HeaderValueSHA256 = "rtgraph.dlq.value_sha256" // SHA-256 of the omitted value, hex
	HeaderKeyOmitted  = "rtgraph.dlq.key_omitted"  // why the key was left out: OmitTooLarge or OmitRefused
	HeaderKeyBytes    = "rtgraph.dlq.key_bytes"    // size of the omitted key, decimal
	HeaderKeySHA256   = "rtgraph.dlq.key_sha256"   // SHA-256 of the omitted key, hex
	// HeaderHeadersOmitted is set ("1") when the source record's own headers
	// were left out too.
	HeaderHeadersOmitted = "rtgraph.dlq.headers_omitted"
	// HeaderOmitError is the producer's error that made the pipeline leave
	// the value out, when a refusal (not the size check before sending) did.
	HeaderOmitError = "rtgraph.dlq.omit_error"
)

// Values of HeaderValueOmitted and HeaderKeyOmitted.
const (
	// OmitTooLarge: the record was larger than the dead-letter producer's
	// max message bytes or the dead-letter topic's max.message.bytes.
	OmitTooLarge = "too_large"
	// OmitRefused: the dead-letter topic refused the record permanently for
	// its content (invalid record or timestamp, policy violation).
	OmitRefused = "refused"
)

// recordBatchOverhead is what a v2 record batch adds to its records; the
// broker holds the whole batch to max.message.bytes, sarama only the
// records to Producer.MaxMessageBytes.
const recordBatchOverhead = 61

// produceFailure is what a producer error says about retrying the record.
type produceFailure int

const (
	// failTransient: the cluster may accept the same record later (no
	// leader, not enough replicas, timeouts, broker down, authorization
	// that an operator can grant). The record is retried as it is and the
	// partition stalls meanwhile.
	failTransient produceFailure = iota
	// failTooLarge: the record as it is will never fit.
	failTooLarge
	// failRefused: the record as it is will never be accepted for its
	// content.
	failRefused
)

// classifyProduceError tells permanent producer errors from transient ones
// by their class: sarama's client-side refusals (ConfigurationError: the
// size check against Producer.MaxMessageBytes) and the broker's record-level
// error codes are permanent for that record; everything else is retried.
func classifyProduceError(err error) produceFailure {
	var ce sarama.ConfigurationError
	if errors.As(err, &ce) {
		return failTooLarge
	}
	var ke sarama.KError
	if errors.As(err, &ke) {
		switch ke {
		case sarama.ErrMessageSizeTooLarge, sarama.ErrMessageSetSizeTooLarge:
			return failTooLarge
		case sarama.ErrInvalidMessage, sarama.ErrInvalidRecord, sarama.ErrInvalidTimestamp,
			sarama.ErrPolicyViolation, sarama.ErrUnsupportedForMessageFormat:
			return failRefused
		}
	}
	return failTransient
}

// Levels of what a dead letter carries of its source record.
const (
	levelWhole   = iota // key, value and headers as they were
	levelNoValue        // the value left out
	levelBare           // value, key and source headers left out: only the pipeline's headers
)

// outgoing is one dead letter being produced.
type outgoing struct {
	src    *sarama.ConsumerMessage
	cause  Cause
	level  int
	why    string // OmitTooLarge or OmitRefused, once level > levelWhole
	errMsg string // producer error that raised the level, if any
	pm     *sarama.ProducerMessage
	done   bool // acknowledged by the dead-letter topic
}

// deadLetterSender produces the dead letters of one batch so that none can
// block its partition: a record the producer or the topic refuses as too
// large or invalid is produced again with less of its source record, down
// to the pipeline's headers alone, which always fit.
type deadLetterSender struct {
	prod     producer
	topic    string
	group    string
	maxBytes int // the producer's Producer.MaxMessageBytes
}

// build makes the dead-letter record of o at its current level, lowering
// the level first while the record would exceed maxBytes.
func (s *deadLetterSender) build(o *outgoing, at time.Time) {
	for {
		o.pm = s.message(o, at)
		if o.level == levelBare || o.pm.ByteSize(2) <= s.maxBytes {
			return
		}
		o.level++
		o.why = OmitTooLarge
	}
}

func (s *deadLetterSender) message(o *outgoing, at time.Time) *sarama.ProducerMessage {
	pm := deadLetterMessage(s.topic, s.group, o.src, o.cause, at)
	if o.level == levelWhole {
		return pm
	}
	add := func(k, v string) {
		pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	// Keep the pipeline's headers, drop the source's at levelBare.
	if o.level >= levelBare {
		pm.Headers = slices.DeleteFunc(pm.Headers, func(h sarama.RecordHeader) bool {
			return !strings.HasPrefix(string(h.Key), headerPrefix)
		})
		if len(o.src.Headers) > 0 {
			add(HeaderHeadersOmitted, "1")
		}
	}
	if o.src.Value != nil {
		pm.Value = nil
		add(HeaderValueOmitted, o.why)
		add(HeaderValueBytes, strconv.Itoa(len(o.src.Value)))
		add(HeaderValueSHA256, sha256Hex(o.src.Value))
	}
	if o.level >= levelBare && o.src.Key != nil {
		pm.Key = nil
		add(HeaderKeyOmitted, o.why)
		add(HeaderKeyBytes, strconv.Itoa(len(o.src.Key)))
		add(HeaderKeySHA256, sha256Hex(o.src.Key))
	}
	if o.errMsg != "" {
		add(HeaderOmitError, truncateUTF8(o.errMsg, MaxReasonBytes))
	}
	if o.why == OmitRefused {
		// The broker may have refused the source timestamp (outside the
		// topic's message.timestamp.*.max.ms); HeaderTimestamp keeps it.
		pm.Timestamp = at
	}
	return pm
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// send produces the dead letters of outs not yet acknowledged, one producer
// call per round. A record refused permanently is rebuilt with less of its
// source and sent again in the next round at once. send returns nil once
// all are acknowledged, and a *deadLetterError when some failed
// transiently, or were refused even bare; the caller retries with backoff
// by calling send again with the same outs (acknowledged ones are marked
// done and not sent twice).
func (s *deadLetterSender) send(outs []*outgoing, at time.Time) error {
	for {
		var round []*outgoing
		for _, o := range outs {
			if !o.done {
				round = append(round, o)
			}
		}
		if len(round) == 0 {
			return nil
		}
		msgs := make([]*sarama.ProducerMessage, len(round))
		byMsg := make(map[*sarama.ProducerMessage]*outgoing, len(round))
		for i, o := range round {
			if o.pm == nil {
				s.build(o, at)
			}
			msgs[i] = o.pm
			byMsg[o.pm] = o
		}
		err := s.prod.SendMessages(msgs)
		if err == nil {
			for _, o := range round {
				o.ack()
			}
			return nil
		}
		var perrs sarama.ProducerErrors
		if !errors.As(err, &perrs) {
			// The whole call failed (no broker, closed producer): nothing
			// is known to be acknowledged; all are retried.
			return &deadLetterError{err: err, failed: len(round)}
		}
		failed := make(map[*outgoing]error, len(perrs))
		for _, pe := range perrs {
			if o, ok := byMsg[pe.Msg]; ok {
				failed[o] = pe.Err
			}
		}
		var transient []error
		seen := map[string]bool{}
		nTransient, rebuilt := 0, 0
		for _, o := range round {
			ferr, ok := failed[o]
			if !ok {
				o.ack()
				continue
			}
			kind := classifyProduceError(ferr)
			if kind == failTransient || o.level == levelBare {
				if kind != failTransient {
					ferr = fmt.Errorf("%w: %w", errRefusedBare, ferr)
				}
				nTransient++
				if !seen[ferr.Error()] && len(seen) < 4 {
					seen[ferr.Error()] = true
					transient = append(transient, ferr)
				}
				continue
			}
			o.level++
			o.errMsg = ferr.Error()
			if o.why == "" {
				o.why = OmitTooLarge
				if kind == failRefused {
					o.why = OmitRefused
				}
			}
			s.build(o, at)
			rebuilt++
		}
		if nTransient > 0 {
			// Rebuilt records go again with the others after the caller's
			// backoff. The error names the distinct inner errors (a few).
			return &deadLetterError{err: errors.Join(transient...), failed: nTransient + rebuilt}
		}
	}
}

func (o *outgoing) ack() {
	o.done = true
	o.pm, o.src = nil, nil
}

// errRefusedBare: the dead-letter topic refused a dead letter that carried
// nothing of its source record but the pipeline's headers. Only an operator
// can fix that (the topic's configuration or a policy), so it is retried
// like a transient failure and the partition stalls visibly meanwhile.
var errRefusedBare = errors.New("ingest: dead-letter topic refused a record without key, value or source headers")

// deadLetterError says why a round of dead letters was not acknowledged,
// with the producer's inner errors (sarama's ProducerErrors only counts
// them).
type deadLetterError struct {
	err    error
	failed int
}

func (e *deadLetterError) Error() string {
	return fmt.Sprintf("%d dead letters not acknowledged: %s", e.failed, strings.ReplaceAll(e.err.Error(), "\n", "; "))
}

func (e *deadLetterError) Unwrap() error { return e.err }
