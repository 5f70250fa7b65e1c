package vertical

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rtgraph/rtgraph/normalize"
)

// Format says how a records file is read: the formats of
// `rtgraph produce --format`.
type Format string

// The formats. See the package documentation.
const (
	FormatAuto    Format = "auto"
	FormatRecords Format = "records"
	FormatValues  Format = "values"
	FormatLines   Format = "lines"
)

// Limits of a records file, those of `rtgraph produce`.
const (
	// MaxLineBytes bounds one line of a JSON Lines file.
	MaxLineBytes = 16 << 20
	// MaxArrayFileBytes bounds a file holding a JSON array, read whole.
	MaxArrayFileBytes = 256 << 20
)

// Record is one record of a file in the format `rtgraph produce` reads.
type Record struct {
	// Line is where the record starts in its file (1-based).
	Line  int
	Key   []byte // nil: no key
	Value []byte // nil: a tombstone
	// Timestamp is the Kafka record timestamp; zero when the file gives
	// none (produce then sends the time of sending).
	Timestamp time.Time
	Headers   []normalize.Header
	// Partition is the partition the file names; -1 when it names none.
	Partition int32
}

// Header returns the value of the record's last header called key.
func (r *Record) Header(key string) (string, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value), true
		}
	}
	return "", false
}

// RecordError names the line of a records file that could not be read.
type RecordError struct {
	File string
	Line int
	Err  error
}

func (e *RecordError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

func (e *RecordError) Unwrap() error { return e.Err }

// ReadRecords reads every record of r, a file in the format `rtgraph
// produce` reads, byte for byte as produce would send them: JSON Lines or
// one JSON array of record objects {"key", "value", "timestamp", "headers",
// "key_encoding", "value_encoding", "headers_encoding", "partition",
// "partition_key"} or of plain values. name names the file in errors, which
// are *RecordError for a line that cannot be read.
func ReadRecords(r io.Reader, name string, format Format) ([]Record, error) {
	switch format {
	case "":
		format = FormatAuto
	case FormatAuto, FormatRecords, FormatValues, FormatLines:
	default:
		return nil, fmt.Errorf("unknown format %q (auto, records, values, lines)", format)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if format != FormatLines {
		first, err := firstNonSpace(br)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if first == '[' {
			return readArray(name, br, format)
		}
	}
	return readLines(name, br, format)
}

func firstNonSpace(br *bufio.Reader) (byte, error) {
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			if errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull) {
				return 0, nil
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

func readLines(name string, r io.Reader, format Format) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	var out []Record
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
		} else if rec, err = parseRecord(text, format); err != nil {
			return nil, &RecordError{File: name, Line: line, Err: err}
		}
		rec.Line = line
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &RecordError{File: name, Line: line + 1, Err: fmt.Errorf("longer than %d bytes", MaxLineBytes)}
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

func readArray(name string, r io.Reader, format Format) ([]Record, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxArrayFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxArrayFileBytes {
		return nil, fmt.Errorf("%s: a JSON array file is limited to %d bytes; write JSON Lines instead", name, MaxArrayFileBytes)
	}
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte{'\n'}) }
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the '['
		return nil, &RecordError{File: name, Line: 1, Err: err}
	}
	var out []Record
	for dec.More() {
		start := skipSeparators(data, dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, &RecordError{File: name, Line: lineAt(start), Err: err}
		}
		rec, err := parseRecord(raw, format)
		if err != nil {
			return nil, &RecordError{File: name, Line: lineAt(start), Err: err}
		}
		rec.Line = lineAt(start)
		out = append(out, rec)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != nil { // the ']'
		return nil, &RecordError{File: name, Line: lineAt(end), Err: err}
	}
	if tok, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &RecordError{File: name, Line: lineAt(dec.InputOffset()), Err: fmt.Errorf("data after the array: %v", tok)}
	}
	return out, nil
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

// Encodings of a record object's key, value and header values.
const (
	encodingJSON   = "json"
	encodingUTF8   = "utf8"
	encodingBase64 = "base64"
)

// parseRecord reads one JSON value as a record, per format, as produce
// does.
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
		if err := json.Unmarshal(v, &e); err != nil || (e != encodingJSON && e != encodingUTF8 && e != encodingBase64) {
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
			if rec.Key, err = bytesOf(v, keyEnc, true); err != nil {
				return Record{}, fmt.Errorf("key: %w", err)
			}
		case "value":
			if rec.Value, err = bytesOf(v, valueEnc, false); err != nil {
				return Record{}, fmt.Errorf("value: %w", err)
			}
		case "partition_key":
			// Only chooses the partition; the decoders never see it.
			if _, err := bytesOf(v, keyEnc, true); err != nil {
				return Record{}, fmt.Errorf("partition_key: %w", err)
			}
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
			if rec.Headers, err = parseHeaders(v, headersEnc); err != nil {
				return Record{}, err
			}
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

// bytesOf reads a key or value per its encoding: json (for a key, a string
// is its text; any other value its compact encoding), utf8 (a string's
// bytes) or base64 (a string decoded). null is nil.
func bytesOf(raw json.RawMessage, enc string, isKey bool) ([]byte, error) {
	if isNull(raw) {
		return nil, nil
	}
	switch enc {
	case encodingUTF8, encodingBase64:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("with encoding %s it must be a JSON string", enc)
		}
		if enc == encodingUTF8 {
			return []byte(s), nil
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("not base64: %v", err)
		}
		return b, nil
	}
	if isKey && bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	return compact(raw), nil
}

// parseHeaders reads headers: an object of strings (in file order) or an
// array of {"key": …, "value": …} objects; values are text, or base64 with
// headers_encoding base64; a null value is a header without value.
func parseHeaders(raw json.RawMessage, enc string) ([]normalize.Header, error) {
	value := func(v *string) ([]byte, error) {
		if v == nil {
			return nil, nil
		}
		if enc == encodingBase64 {
			b, err := base64.StdEncoding.DecodeString(*v)
			if err != nil {
				return nil, fmt.Errorf("headers: not base64: %v", err)
			}
			return b, nil
		}
		return []byte(*v), nil
	}
	var out []normalize.Header
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
			out = append(out, normalize.Header{Key: *h.Key, Value: v})
		}
		return out, nil
	}
	notObject := errors.New("headers: not an object of strings")
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, notObject
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		var v *string
		if err := dec.Decode(&v); err != nil {
			return nil, notObject
		}
		b, err := value(v)
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		out = append(out, normalize.Header{Key: k, Value: b})
	}
	return out, nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func compact(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return bytes.Clone(raw)
	}
	return b.Bytes()
}

// ExpectHeader is the header by which a sample record says what it
// expects: "dead_letter" (any class) or "dead_letter:<class>". A header
// keeps the record in the produce format: produce publishes it like any
// header, and the pipeline ignores it (a dead letter carries it on).
const ExpectHeader = "rtgraph.expect"

// Expect is what a sample record expects of the pipeline.
type Expect struct {
	// DeadLetter: the record must be dead-lettered, of Class when set.
	DeadLetter bool
	Class      string
}

func (e Expect) String() string {
	switch {
	case !e.DeadLetter:
		return "mapped"
	case e.Class != "":
		return "dead_letter:" + e.Class
	}
	return "dead_letter"
}

// ExpectOf reads the record's ExpectHeader; without it the record must
// decode and map.
func ExpectOf(r *Record) (Expect, error) {
	v, ok := r.Header(ExpectHeader)
	if !ok {
		return Expect{}, nil
	}
	kind, class, hasClass := strings.Cut(v, ":")
	if kind != "dead_letter" || (hasClass && class == "") {
		return Expect{}, fmt.Errorf("headers.%s: %q is not dead_letter or dead_letter:<class>", ExpectHeader, v)
	}
	return Expect{DeadLetter: true, Class: class}, nil
}
