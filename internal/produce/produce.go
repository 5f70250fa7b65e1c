package produce

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/rtgraph/rtgraph/ingest"
)

// Format says how the values of a file are read.
type Format string

// The formats; see the package documentation.
const (
	FormatAuto    Format = "auto"
	FormatRecords Format = "records"
	FormatValues  Format = "values"
	FormatLines   Format = "lines"
)

// Limits.
const (
	// MaxLineBytes bounds one line of a JSON Lines file (and one line of
	// FormatLines).
	MaxLineBytes = 16 << 20
	// MaxArrayFileBytes bounds a file holding a JSON array, which is read
	// whole; larger inputs must be JSON Lines, which are streamed.
	MaxArrayFileBytes = 256 << 20
	// BatchSize is the most records sent in one produce call.
	BatchSize = 500
)

// Errors. A *LineError wraps ErrInvalidRecord.
var (
	ErrInvalidRecord = errors.New("produce: invalid record")
	ErrBadFormat     = errors.New("produce: unknown format")
	ErrSend          = errors.New("produce: send")
)

// LineError names the line of the file that could not be read as a record.
type LineError struct {
	File string
	Line int // 1-based; for a JSON array, the line its element starts on
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("produce: %s:%d: %v", e.File, e.Line, e.Err)
}

func (e *LineError) Unwrap() []error { return []error{ErrInvalidRecord, e.Err} }

// Options tune File. The zero value is FormatAuto.
type Options struct {
	Format Format
}

// Record is one record to send.
type Record struct {
	Line      int
	Key       []byte // nil: no key
	Value     []byte // nil: tombstone
	Timestamp time.Time
	Headers   map[string]string
}

// File publishes the records of the file at path to topic on the Kafka
// cluster k describes, reading the file as FormatAuto. It returns how many
// records the broker acknowledged. ctx cancels between batches.
func File(ctx context.Context, k ingest.KafkaConfig, topic, path string) (int, error) {
	return FileWith(ctx, k, topic, path, Options{})
}

// FileWith is File with options.
func FileWith(ctx context.Context, k ingest.KafkaConfig, topic, path string, opts Options) (int, error) {
	if topic == "" {
		return 0, fmt.Errorf("%w: no topic", ErrSend)
	}
	// Check the whole file before connecting: a bad line publishes nothing.
	if err := scanFile(path, opts.Format, func(Record) error { return nil }); err != nil {
		return 0, err
	}
	sc, err := ProducerConfig(k)
	if err != nil {
		return 0, err
	}
	p, err := sarama.NewSyncProducer(k.Brokers, sc)
	if err != nil {
		return 0, fmt.Errorf("%w: connect to %v: %v", ErrSend, k.Brokers, err)
	}
	n, err := send(ctx, p, topic, path, opts.Format)
	if cerr := p.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("%w: close producer: %v", ErrSend, cerr)
	}
	return n, err
}

// ProducerConfig is the sarama configuration File sends with: idempotent,
// acknowledged by all in-sync replicas [acks=all, enable.idempotence=true],
// partitioned like the Java client.
func ProducerConfig(k ingest.KafkaConfig) (*sarama.Config, error) {
	sc, err := k.Sarama()
	if err != nil {
		return nil, err
	}
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.Backoff = 250 * time.Millisecond
	sc.Producer.MaxMessageBytes = MaxLineBytes
	sc.Net.MaxOpenRequests = 1 // required by the idempotent producer
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	return sc, nil
}

// Sender is what send publishes through; sarama.SyncProducer satisfies it.
// SendMessages returns sarama.ProducerErrors naming the messages that
// failed.
type Sender interface {
	SendMessages(msgs []*sarama.ProducerMessage) error
}

// send publishes the file's records in batches and returns how many were
// acknowledged in file order before the first failure.
func send(ctx context.Context, p Sender, topic, path string, format Format) (int, error) {
	sent := 0
	batch := make([]*sarama.ProducerMessage, 0, BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := p.SendMessages(batch)
		if err != nil {
			var perrs sarama.ProducerErrors
			if !errors.As(err, &perrs) || len(perrs) == 0 {
				return fmt.Errorf("%w: %v", ErrSend, err)
			}
			// Count the records before the first that failed: they are
			// acknowledged, and file order is what callers reason in.
			failed := make(map[*sarama.ProducerMessage]error, len(perrs))
			for _, pe := range perrs {
				failed[pe.Msg] = pe.Err
			}
			for _, m := range batch {
				if ferr, ok := failed[m]; ok {
					return fmt.Errorf("%w: %s:%d: %v", ErrSend, path, m.Metadata.(int), ferr)
				}
				sent++
			}
			return fmt.Errorf("%w: %v", ErrSend, err)
		}
		sent += len(batch)
		batch = batch[:0]
		return nil
	}
	err := scanFile(path, format, func(r Record) error {
		msg := &sarama.ProducerMessage{Topic: topic, Timestamp: r.Timestamp, Metadata: r.Line}
		if r.Key != nil {
			msg.Key = sarama.ByteEncoder(r.Key)
		}
		if r.Value != nil {
			msg.Value = sarama.ByteEncoder(r.Value)
		}
		for k, v := range r.Headers {
			msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
		batch = append(batch, msg)
		if len(batch) == BatchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return sent, err
}

// scanFile reads the records of the file at path in order and calls fn for
// each; it stops at the first error, fn's or the file's.
func scanFile(path string, format Format, fn func(Record) error) error {
	switch format {
	case "":
		format = FormatAuto
	case FormatAuto, FormatRecords, FormatValues, FormatLines:
	default:
		return fmt.Errorf("%w: %q (auto, records, values, lines)", ErrBadFormat, format)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("produce: open %s: %w", path, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	if format != FormatLines {
		first, err := firstNonSpace(br)
		if err != nil {
			return fmt.Errorf("produce: read %s: %w", path, err)
		}
		if first == '[' {
			return scanArray(path, br, format, fn)
		}
	}
	return scanLines(path, br, format, fn)
}

// firstNonSpace peeks at the first byte that is not JSON white space, 0 for
// an empty file.
func firstNonSpace(br *bufio.Reader) (byte, error) {
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			if errors.Is(err, io.EOF) {
				return 0, nil
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				return 0, nil // a buffer of white space: not an array
			}
			return 0, err
		}
		switch c := b[n-1]; c {
		case ' ', '\t', '\r', '\n':
		default:
			return c, nil
		}
	}
}

func scanLines(path string, r io.Reader, format Format, fn func(Record) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var rec Record
		var err error
		if format == FormatLines {
			rec = Record{Value: bytes.Clone(text)}
		} else {
			rec, err = parseRecord(text, format)
		}
		if err != nil {
			return &LineError{File: path, Line: line, Err: err}
		}
		rec.Line = line
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &LineError{File: path, Line: line + 1, Err: fmt.Errorf("longer than %d bytes", MaxLineBytes)}
		}
		return fmt.Errorf("produce: read %s: %w", path, err)
	}
	return nil
}

func scanArray(path string, r io.Reader, format Format, fn func(Record) error) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxArrayFileBytes+1))
	if err != nil {
		return fmt.Errorf("produce: read %s: %w", path, err)
	}
	if len(data) > MaxArrayFileBytes {
		return fmt.Errorf("%w: %s: a JSON array file is limited to %d bytes; write JSON Lines instead", ErrInvalidRecord, path, MaxArrayFileBytes)
	}
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte{'\n'}) }
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the '['
		return &LineError{File: path, Line: 1, Err: err}
	}
	for dec.More() {
		// The offset after the previous token, moved past white space and
		// the comma, is where the element starts.
		start := skipSeparators(data, dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return &LineError{File: path, Line: lineAt(start), Err: err}
		}
		rec, err := parseRecord(raw, format)
		if err != nil {
			return &LineError{File: path, Line: lineAt(start), Err: err}
		}
		rec.Line = lineAt(start)
		if err := fn(rec); err != nil {
			return err
		}
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != nil { // the ']'
		return &LineError{File: path, Line: lineAt(end), Err: err}
	}
	if tok, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &LineError{File: path, Line: lineAt(dec.InputOffset()), Err: fmt.Errorf("data after the array: %v", tok)}
	}
	return nil
}

func skipSeparators(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
		default:
			return off
		}
	}
	return off
}

// recordFields are the keys of a record object.
var recordFields = map[string]bool{"key": true, "value": true, "timestamp": true, "headers": true}

// parseRecord reads one JSON value as a record, per format.
func parseRecord(raw []byte, format Format) (Record, error) {
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v) // for the position of the fault
		return Record{}, fmt.Errorf("not JSON: %v", err)
	}
	var obj map[string]json.RawMessage
	isObject := raw[0] == '{' && json.Unmarshal(raw, &obj) == nil
	asRecord := false
	switch format {
	case FormatRecords:
		if !isObject {
			return Record{}, errors.New("not a record object {\"key\":…, \"value\":…}")
		}
		asRecord = true
	case FormatAuto:
		asRecord = isObject && looksLikeRecord(obj)
	}
	if !asRecord {
		if bytes.Equal(raw, []byte("null")) {
			return Record{}, errors.New("a null value is a tombstone, which needs a key: write it as {\"key\":…, \"value\":null}")
		}
		return Record{Value: compact(raw)}, nil
	}
	var rec Record
	for name, v := range obj {
		switch name {
		case "key":
			k, err := keyBytes(v)
			if err != nil {
				return Record{}, fmt.Errorf("key: %w", err)
			}
			rec.Key = k
		case "value":
			if !isNull(v) {
				rec.Value = compact(v)
			}
		case "timestamp":
			if isNull(v) {
				continue
			}
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return Record{}, fmt.Errorf("timestamp: not an RFC 3339 string: %s", v)
			}
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return Record{}, fmt.Errorf("timestamp: %w", err)
			}
			rec.Timestamp = ts
		case "headers":
			if isNull(v) {
				continue
			}
			if err := json.Unmarshal(v, &rec.Headers); err != nil {
				return Record{}, errors.New("headers: not an object of strings")
			}
		default:
			return Record{}, fmt.Errorf("unknown field %s of a record object (key, value, timestamp, headers)", strconv.Quote(name))
		}
	}
	if _, ok := obj["value"]; !ok {
		return Record{}, errors.New("record object without \"value\"")
	}
	if rec.Value == nil && rec.Key == nil {
		return Record{}, errors.New("a tombstone (null value) needs a key")
	}
	return rec, nil
}

func looksLikeRecord(obj map[string]json.RawMessage) bool {
	if _, ok := obj["value"]; !ok {
		return false
	}
	for k := range obj {
		if !recordFields[k] {
			return false
		}
	}
	return true
}

// keyBytes follows the samples' convention: a string key is its text, any
// other JSON value its compact encoding, null no key.
func keyBytes(raw json.RawMessage) ([]byte, error) {
	if isNull(raw) {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	return compact(raw), nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// compact removes insignificant white space: a pretty-printed array element
// becomes one compact record value.
func compact(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return bytes.Clone(raw) // valid JSON always compacts; kept as is otherwise
	}
	return b.Bytes()
}
