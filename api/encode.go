package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// Responses holding edges (adjacency pages, traversals) are the API's
// largest. They are written without reflection: the envelope is marshalled
// by encoding/json with an empty edge list, and the edges, appended by
// appendEdgeJSON, are spliced into it. Each edge's properties are the
// store's bytes (graph.EncodeProps: compact JSON, HTML-escaped as
// encoding/json escapes), copied as they are. The output is byte for byte
// what json.Marshal of the same value writes (encode_test.go checks it).

// emptyEdges is how encoding/json writes an empty edge list field. It can
// appear only as that field: inside a JSON string a quote is escaped.
var emptyEdges = []byte(`"edges":[]`)

// writeJSONEdges writes v, whose edges field must be an empty (not nil)
// list, with edges in its place.
func (s *server) writeJSONEdges(w http.ResponseWriter, r *http.Request, v any, edges []edgeJSON) {
	b, err := marshalWithEdges(v, edges)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// marshalWithEdges is what json.NewEncoder(w).Encode of v with edges in its
// edges field writes, newline included.
func marshalWithEdges(v any, edges []edgeJSON) ([]byte, error) {
	env, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	i := bytes.Index(env, emptyEdges)
	if i < 0 || bytes.Contains(env[i+len(emptyEdges):], emptyEdges) {
		return nil, fmt.Errorf("api: response has no single empty edge list to fill")
	}
	at := i + len(emptyEdges) - 1 // before ']'
	size := len(env) + 1
	for i := range edges {
		size += 160 + len(edges[i].Props) + len(edges[i].To.ID) + len(edges[i].From.ID)
	}
	out := make([]byte, 0, size)
	out = append(out, env[:at]...)
	for i := range edges {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendEdgeJSON(out, &edges[i])
	}
	out = append(out, env[at:]...)
	return append(out, '\n'), nil
}

// appendEdgeJSON appends e as json.Marshal writes an edgeJSON.
func appendEdgeJSON(b []byte, e *edgeJSON) []byte {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"from":{"type":`...)
	b = appendJSONString(b, e.From.Type)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, e.From.ID)
	b = append(b, `},"to":{"type":`...)
	b = appendJSONString(b, e.To.Type)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, e.To.ID)
	b = append(b, `},"props":`...)
	if len(e.Props) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Props...)
	}
	b = append(b, `,"event_time":`...)
	b = appendJSONTime(b, e.EventTime)
	if e.ExpiresAt != nil {
		b = append(b, `,"expires_at":`...)
		b = appendJSONTime(b, *e.ExpiresAt)
	}
	if e.Hop != 0 {
		b = append(b, `,"hop":`...)
		b = strconv.AppendInt(b, int64(e.Hop), 10)
	}
	return append(b, '}')
}

// appendJSONTime appends t as time.Time's MarshalJSON writes it (RFC 3339
// with nanoseconds, trailing zeros dropped). Stored times are within years
// 1970-9999, where the two agree.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json writes strings: HTML
// characters, control characters, U+2028 and U+2029 escaped, invalid UTF-8
// replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
