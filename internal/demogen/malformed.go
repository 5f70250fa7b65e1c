package demogen

import (
	"encoding/json"
	"strconv"

	"github.com/rtgraph/rtgraph/normalize"
)

// malformed builds a record that the topic's decoder must refuse, with the
// class it must refuse it with. They change no table: a malformed record
// is what a buggy producer sends, not a change of the source.
func (g *Generator) malformed() record {
	switch g.rng.IntN(5) {
	case 0: // a truncated value: the producer crashed mid-write
		var rec record
		if g.st.Accounts.len() > 0 && g.rng.IntN(2) == 0 {
			a := pick(g, g.st.Accounts.Rows)
			rec = plainEvent(TopicAccounts, "accounts", accountRecordKey(a.AccountID), g.liveEvent("u"), &a, &a)[0]
		} else {
			rec = g.anyRequest().record()
		}
		rec.value = rec.value[:len(rec.value)/2]
		return g.bad(rec, normalize.ClassMalformedJSON)
	case 1: // a request log without its id
		return g.requestWithout(normalize.ClassMissingField, func(m map[string]any) { delete(m, "request_id") })
	case 2: // a request log whose time is not one
		return g.requestWithout(normalize.ClassBadTime, func(m map[string]any) {
			if _, ok := m["ts_ms"]; ok {
				m["ts_ms"] = "soon"
			} else {
				m["ts"] = "yesterday"
			}
		})
	case 3: // an insert without its row image
		e := g.liveEvent("c")
		id := g.st.Accounts.NextID // not taken: no row is created
		rec := plainEvent[Account](TopicAccounts, "accounts", accountRecordKey(id), e, nil, nil)[0]
		return g.bad(rec, normalize.ClassMissingField)
	}
	// A price the Decimal schema cannot hold.
	if g.st.Subscriptions.len() == 0 {
		return g.requestWithout(normalize.ClassMissingField, func(m map[string]any) { delete(m, "request_id") })
	}
	s := pick(g, g.st.Subscriptions.Rows)
	after := s
	after.Price = "not base64!"
	rec := g.subscriptionRecords(g.liveEvent("u"), s.SubscriptionID, &s, &after)[0]
	return g.bad(rec, normalize.ClassSchemaViolation)
}

func (g *Generator) bad(r record, class normalize.ErrorClass) record {
	r.kind, r.class = kindMalformed, class
	return r
}

// anyRequest builds a request log of a random kind without touching the
// tables; an impression when the tables cannot supply a viewer.
func (g *Generator) anyRequest() request {
	var (
		r  request
		ok bool
	)
	switch g.rng.IntN(4) {
	case 0:
		r, ok = g.login()
	case 1:
		r, ok = g.titlePage()
	case 2:
		r, ok = g.playback()
	}
	if !ok {
		r = g.impression()
	}
	return r
}

// requestWithout builds a request log and breaks it with edit.
func (g *Generator) requestWithout(class normalize.ErrorClass, edit func(map[string]any)) record {
	r := g.anyRequest()
	var m map[string]any
	if err := json.Unmarshal(mustJSON(r.value), &m); err != nil {
		panic("demogen: a request log does not round-trip: " + strconv.Quote(err.Error()))
	}
	edit(m)
	rec := r.record()
	rec.value = mustJSON(m)
	return g.bad(rec, class)
}
