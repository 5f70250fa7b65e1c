package api

import (
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/rtgraph/rtgraph/graph"
)

// Count answers are the API's most frequent responses (an ad server asks
// before every impression), so they are written without reflection or
// maps: appendCountsResult writes byte for byte what encoding/json writes
// of the countsResultJSON the same answer makes (counts_encode_test.go
// checks it), object keys of a target's counts in sorted order included.

// countsBufs recycles response buffers; buffers grown past 64 KiB (a batch
// of many lookups) are left to the collector.
var countsBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeCounts writes a GET answer (one lookup, batch false) or a batch's.
func (s *server) writeCounts(w http.ResponseWriter, answers []countsAnswer, wm Watermark, batch bool) {
	bp := countsBufs.Get().(*[]byte)
	b := appendCountsResponse((*bp)[:0], answers, wm, batch)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		countsBufs.Put(bp)
	}
}

// appendCountsResponse appends what json.NewEncoder(w).Encode writes of a
// countsResponse (batch false, one answer) or a countsBatchResponse,
// newline included.
func appendCountsResponse(b []byte, answers []countsAnswer, wm Watermark, batch bool) []byte {
	if batch {
		b = append(b, `{"results":[`...)
		for i := range answers {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCountsResult(b, &answers[i])
			b = append(b, '}')
		}
		b = append(b, `],"watermark":`...)
	} else {
		b = appendCountsResult(b, &answers[0])
		b = append(b, `,"watermark":`...)
	}
	b = appendWatermark(b, wm)
	return append(b, '}', '\n')
}

func appendWatermark(b []byte, wm Watermark) []byte {
	b = append(b, `{"event_time":`...)
	if wm.EventTime == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONTime(b, *wm.EventTime)
	}
	b = append(b, `,"known":`...)
	b = strconv.AppendBool(b, wm.Known)
	return append(b, '}')
}

// appendCountsResult appends a's countsResultJSON without its closing
// brace, so that a GET response can add the watermark to the same object.
func appendCountsResult(b []byte, a *countsAnswer) []byte {
	res := &a.res
	var small [graph.MaxCountWindows]string
	names := small[:0]
	if len(res.Windows) > len(small) {
		names = make([]string, 0, len(res.Windows))
	}
	for _, w := range res.Windows {
		names = append(names, formatWindow(w))
	}
	// A target's counts are a JSON object: encoding/json writes map keys
	// sorted. Distinct windows have distinct names (formatWindow is
	// one-to-one), so the order is total.
	var smallOrder [graph.MaxCountWindows]int
	order := smallOrder[:0]
	if len(names) > len(smallOrder) {
		order = make([]int, 0, len(names))
	}
	for i := range names {
		order = append(order, i)
	}
	slices.SortFunc(order, func(x, y int) int {
		switch {
		case names[x] < names[y]:
			return -1
		case names[x] > names[y]:
			return 1
		}
		return 0
	})

	b = append(b, `{"user":`...)
	b = appendNodeRef(b, a.l.q.User)
	b = append(b, `,"edge_type":`...)
	b = appendJSONString(b, a.l.q.EdgeType)
	b = append(b, `,"as_of":`...)
	b = appendJSONTime(b, res.AsOf)
	b = append(b, `,"windows":[`...)
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, n)
	}
	b = append(b, `],"targets":[`...)
	for i := range res.Targets {
		tc := &res.Targets[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"target":`...)
		b = appendNodeRef(b, tc.Target)
		b = append(b, `,"counts":{`...)
		for j, k := range order {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, names[k])
			b = append(b, ':')
			b = strconv.AppendInt(b, tc.Counts[k], 10)
		}
		b = append(b, '}', '}')
	}
	b = append(b, ']')
	allowed := true
	if len(a.l.caps) > 0 {
		b = append(b, `,"caps":[`...)
		for i, c := range a.l.caps {
			n := capCount(res, c)
			ok := n < c.max
			allowed = allowed && ok
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"target":`...)
			b = appendNodeRef(b, c.target)
			b = append(b, `,"window":`...)
			b = appendJSONString(b, formatWindow(c.window))
			b = append(b, `,"max":`...)
			b = strconv.AppendInt(b, c.max, 10)
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, n, 10)
			b = append(b, `,"allowed":`...)
			b = strconv.AppendBool(b, ok)
			b = append(b, `,"remaining":`...)
			b = strconv.AppendInt(b, max(0, c.max-n), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"allowed":`...)
	return strconv.AppendBool(b, allowed)
}

// appendNodeRef appends k as the JSON string "type:id".
func appendNodeRef(b []byte, k graph.NodeKey) []byte {
	if jsonPlain(k.Type) && jsonPlain(k.ID) {
		b = append(b, '"')
		b = append(b, k.Type...)
		b = append(b, ':')
		b = append(b, k.ID...)
		return append(b, '"')
	}
	return appendJSONString(b, k.String())
}

// jsonPlain reports whether encoding/json writes s as it is between quotes.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// capCount is the count a cap judges: its target's in its window. Both
// are in the lookup (buildLookup adds them).
func capCount(res *graph.CountResult, c parsedCap) int64 {
	w := slices.Index(res.Windows, c.window)
	for i := range res.Targets {
		if res.Targets[i].Target == c.target {
			return res.Targets[i].Counts[w]
		}
	}
	return 0
}
