package produce

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
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

// Options tune File. The zero value is FormatAuto, records up to
// MaxLineBytes, and no topic creation.
type Options struct {
	Format Format
	// MaxMessageBytes is the largest record the producer sends
	// [max.request.size]; 0 is MaxLineBytes. A larger record fails the
	// command before anything is sent.
	MaxMessageBytes int
	// Create, when set, creates the topic if it does not exist.
	Create *TopicSpec
}

// TopicSpec is a topic to create: partitions, replication factor and topic
// configs (e.g. max.message.bytes, cleanup.policy).
type TopicSpec struct {
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
}

// Record is one record to send.
type Record struct {
	Line      int
	Key       []byte // nil: no key
	Value     []byte // nil: tombstone
	Timestamp time.Time
	Headers   []sarama.RecordHeader // in file order
	// Partition is the partition to send to; -1 lets the partitioner choose
	// (murmur2 of PartitionKey, else of Key, like the Java client).
	Partition    int32
	PartitionKey []byte
}

// Encodings of a record object's key, value and header values.
const (
	// EncodingJSON (the default for value): the JSON value itself, sent as
	// its compact encoding. For key, a string is its text.
	EncodingJSON = "json"
	// EncodingUTF8: a JSON string whose UTF-8 bytes are sent as they are,
	// for text that is not JSON (truncated or malformed events).
	EncodingUTF8 = "utf8"
	// EncodingBase64: a JSON string holding standard base64, decoded and
	// sent byte for byte, for binary data.
	EncodingBase64 = "base64"
)

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
	maxBytes := opts.MaxMessageBytes
	if maxBytes == 0 {
		maxBytes = MaxLineBytes
	}
	if maxBytes < 0 || maxBytes >= int(sarama.MaxRequestSize) {
		return 0, fmt.Errorf("%w: max message bytes %d: must be between 1 and %d", ErrSend, maxBytes, sarama.MaxRequestSize-1)
	}
	// Check the whole file before connecting: a bad line publishes nothing.
	if err := scanFile(path, opts.Format, func(r Record) error {
		if n := r.size(); n > maxBytes {
			return &LineError{File: path, Line: r.Line, Err: fmt.Errorf("record of %d bytes is over the %d-byte limit (--max-message-bytes)", n, maxBytes)}
		}
		return nil
	}); err != nil {
		return 0, err
	}
	sc, err := ProducerConfig(k)
	if err != nil {
		return 0, err
	}
	sc.Producer.MaxMessageBytes = maxBytes
	if opts.Create != nil {
		if err := createTopic(k, sc, topic, *opts.Create); err != nil {
			return 0, err
		}
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
	sc.Producer.Partitioner = newRecordPartitioner
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
					return fmt.Errorf("%w: %s:%d: %v", ErrSend, path, m.Metadata.(routing).line, ferr)
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
		msg := &sarama.ProducerMessage{Topic: topic, Timestamp: r.Timestamp, Headers: r.Headers,
			Metadata: routing{line: r.Line, partition: r.Partition, partitionKey: r.PartitionKey}}
		if r.Key != nil {
			msg.Key = sarama.ByteEncoder(r.Key)
		}
		if r.Value != nil {
			msg.Value = sarama.ByteEncoder(r.Value)
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
			rec = Record{Value: bytes.Clone(text), Partition: -1}
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
var recordFields = map[string]bool{
	"key": true, "value": true, "timestamp": true, "headers": true,
	"key_encoding": true, "value_encoding": true, "headers_encoding": true, "partition": true, "partition_key": true,
}

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
		return Record{Value: compact(raw), Partition: -1}, nil
	}
	rec := Record{Partition: -1}
	enc := func(name string) (string, error) {
		v, ok := obj[name]
		if !ok || isNull(v) {
			return "", nil
		}
		var e string
		if err := json.Unmarshal(v, &e); err != nil || (e != EncodingJSON && e != EncodingUTF8 && e != EncodingBase64) {
			return "", fmt.Errorf("%s: %s is not one of json, utf8, base64", name, v)
		}
		return e, nil
	}
	keyEnc, err := enc("key_encoding")
	if err != nil {
		return Record{}, err
	}
	valueEnc, err := enc("value_encoding")
	if err != nil {
		return Record{}, err
	}
	headersEnc, err := enc("headers_encoding")
	if err != nil {
		return Record{}, err
	}
	for name, v := range obj {
		switch name {
		case "key":
			k, err := bytesOf(v, keyEnc, true)
			if err != nil {
				return Record{}, fmt.Errorf("key: %w", err)
			}
			rec.Key = k
		case "value":
			b, err := bytesOf(v, valueEnc, false)
			if err != nil {
				return Record{}, fmt.Errorf("value: %w", err)
			}
			rec.Value = b
		case "partition_key":
			k, err := bytesOf(v, keyEnc, true)
			if err != nil {
				return Record{}, fmt.Errorf("partition_key: %w", err)
			}
			rec.PartitionKey = k
		case "partition":
			if isNull(v) {
				continue
			}
			var p int32
			if err := json.Unmarshal(v, &p); err != nil || p < 0 {
				return Record{}, fmt.Errorf("partition: %s is not a partition number", v)
			}
			rec.Partition = p
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
			hs, err := parseHeaders(v, headersEnc)
			if err != nil {
				return Record{}, err
			}
			rec.Headers = hs
		case "key_encoding", "value_encoding", "headers_encoding":
		default:
			return Record{}, fmt.Errorf("unknown field %s of a record object (key, value, timestamp, headers, key_encoding, value_encoding, headers_encoding, partition, partition_key)", strconv.Quote(name))
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

// bytesOf reads a key or value per its encoding: json (for a key, a string
// is its text; any other value its compact encoding), utf8 (a string's
// bytes) or base64 (a string decoded). null is nil: no key, or a tombstone.
func bytesOf(raw json.RawMessage, enc string, isKey bool) ([]byte, error) {
	if isNull(raw) {
		return nil, nil
	}
	switch enc {
	case EncodingUTF8, EncodingBase64:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("with encoding %s it must be a JSON string", enc)
		}
		if enc == EncodingUTF8 {
			return []byte(s), nil
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("not base64: %v", err)
		}
		return b, nil
	}
	if isKey {
		return keyBytes(raw)
	}
	return compact(raw), nil
}

// parseHeaders reads headers: an object of strings (in file order) or an
// array of {"key": …, "value": …} objects (repeated keys allowed); values
// are text, or base64 with headers_encoding base64; a null value is a
// header without value.
func parseHeaders(raw json.RawMessage, enc string) ([]sarama.RecordHeader, error) {
	value := func(v *string) ([]byte, error) {
		if v == nil {
			return nil, nil
		}
		if enc == EncodingBase64 {
			b, err := base64.StdEncoding.DecodeString(*v)
			if err != nil {
				return nil, fmt.Errorf("headers: not base64: %v", err)
			}
			return b, nil
		}
		return []byte(*v), nil
	}
	var out []sarama.RecordHeader
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		var list []struct {
			Key   *string `json:"key"`
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, errors.New("headers: not an array of {\"key\": string, \"value\": string or null}")
		}
		for _, h := range list {
			if h.Key == nil {
				return nil, errors.New("headers: an entry without key")
			}
			v, err := value(h.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, sarama.RecordHeader{Key: []byte(*h.Key), Value: v})
		}
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("headers: not an object of strings")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errors.New("headers: not an object of strings")
		}
		var v *string
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("headers: not an object of strings")
		}
		b, err := value(v)
		if err != nil {
			return nil, err
		}
		out = append(out, sarama.RecordHeader{Key: []byte(t.(string)), Value: b})
	}
	return out, nil
}

// size is an upper bound of the record's size as the producer counts it.
func (r Record) size() int {
	m := &sarama.ProducerMessage{Headers: r.Headers}
	if r.Key != nil {
		m.Key = sarama.ByteEncoder(r.Key)
	}
	if r.Value != nil {
		m.Value = sarama.ByteEncoder(r.Value)
	}
	return m.ByteSize(2)
}

// routing travels with each message as its Metadata: where it came from
// and where it goes.
type routing struct {
	line         int
	partition    int32
	partitionKey []byte
}

// recordPartitioner sends a record to its explicit partition, else hashes
// its partition key, else its key, with murmur2 as the Java client does.
type recordPartitioner struct {
	hash sarama.Partitioner
}

func newRecordPartitioner(topic string) sarama.Partitioner {
	return &recordPartitioner{hash: sarama.NewMurmur2Partitioner(topic)}
}

func (p *recordPartitioner) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	rt, _ := m.Metadata.(routing)
	if rt.partition >= 0 && m.Metadata != nil {
		if rt.partition >= n {
			return 0, fmt.Errorf("partition %d: the topic has %d", rt.partition, n)
		}
		return rt.partition, nil
	}
	if rt.partitionKey != nil {
		return p.hash.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(rt.partitionKey)}, n)
	}
	return p.hash.Partition(m, n)
}

func (p *recordPartitioner) RequiresConsistency() bool { return true }

// createTopic creates topic as spec says, unless it exists.
func createTopic(k ingest.KafkaConfig, sc *sarama.Config, topic string, spec TopicSpec) error {
	admin, err := sarama.NewClusterAdmin(k.Brokers, sc)
	if err != nil {
		return fmt.Errorf("%w: connect to %v: %v", ErrSend, k.Brokers, err)
	}
	defer func() { _ = admin.Close() }()
	entries := map[string]*string{}
	for key, v := range spec.Configs {
		entries[key] = &v
	}
	rf := spec.ReplicationFactor
	if rf == 0 {
		rf = -1 // the broker's default.replication.factor
	}
	parts := spec.Partitions
	if parts == 0 {
		parts = -1 // the broker's num.partitions
	}
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: rf, ConfigEntries: entries}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("%w: create topic %s: %v", ErrSend, topic, err)
	}
	return nil
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
