package demogen

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rtgraph/rtgraph/schemas/demo"
)

// Debezium's PostgreSQL connector, as the samples have it.
const debeziumVersion = "2.7.3.Final"

// pgSource is the source block of the PostgreSQL connector.
type pgSource struct {
	Version   string  `json:"version"`
	Connector string  `json:"connector"`
	Name      string  `json:"name"`
	TsMs      int64   `json:"ts_ms"`
	TsUs      int64   `json:"ts_us"`
	Snapshot  string  `json:"snapshot"`
	DB        string  `json:"db"`
	Sequence  *string `json:"sequence"`
	Schema    string  `json:"schema"`
	Table     string  `json:"table"`
	TxID      int64   `json:"txId"`
	LSN       int64   `json:"lsn"`
	Xmin      *int64  `json:"xmin"`
}

// change is a Debezium change event's payload (the plain JSON envelope).
type change[T any] struct {
	Before      *T              `json:"before"`
	After       *T              `json:"after"`
	Source      pgSource        `json:"source"`
	Op          string          `json:"op"`
	TsMs        int64           `json:"ts_ms"`
	Transaction json.RawMessage `json:"transaction"`
}

// wrapped is the JSON converter's envelope with schemas enabled.
type wrapped struct {
	Schema  json.RawMessage `json:"schema"`
	Payload any             `json:"payload"`
}

// flatDevice is a devices row flattened by ExtractNewRecordState with
// add.fields=op,db,schema,table,lsn,source.ts_ms,ts_ms and
// delete.handling.mode=rewrite.
type flatDevice struct {
	Device
	Op         string `json:"__op"`
	DB         string `json:"__db"`
	Schema     string `json:"__schema"`
	Table      string `json:"__table"`
	LSN        int64  `json:"__lsn"`
	SourceTsMs int64  `json:"__source_ts_ms"`
	TsMs       int64  `json:"__ts_ms"`
	Deleted    string `json:"__deleted"`
}

// connectorLagMs is how long after the commit the connector stamps an
// event, as in the samples.
const connectorLagMs = 150

var nullJSON = json.RawMessage("null")

// subscriptionSchemas are the Connect schemas of billing's key and value,
// taken from the subscriptions sample so the generator writes exactly what
// the sample (and the decoder's tests) describe.
var subscriptionSchemas = sync.OnceValues(func() (schemas [2]json.RawMessage, err error) {
	msgs, err := demo.Samples(TopicSubscriptions)
	if err != nil {
		return schemas, err
	}
	if len(msgs) == 0 {
		return schemas, fmt.Errorf("demogen: no %s sample to take the schemas from", TopicSubscriptions)
	}
	for i, raw := range [][]byte{msgs[0].Key, msgs[0].Value} {
		var w struct {
			Schema json.RawMessage `json:"schema"`
		}
		if err := json.Unmarshal(raw, &w); err != nil || len(w.Schema) == 0 || w.Schema[0] != '{' {
			return schemas, fmt.Errorf("demogen: the first %s sample has no schema wrapper", TopicSubscriptions)
		}
		schemas[i] = w.Schema
	}
	return schemas, nil
})

// cdcEvent describes one change to encode.
type cdcEvent struct {
	op       string // c, u, d, r
	snapshot string // "false", "true" or "last"
	at       int64  // event time, Unix µs; also the LSN
	txID     int64
}

func (e cdcEvent) source(name, table string) pgSource {
	return pgSource{Version: debeziumVersion, Connector: "postgresql", Name: name, TsMs: e.at / 1000, TsUs: e.at,
		Snapshot: e.snapshot, DB: name, Schema: "public", Table: table, TxID: e.txID, LSN: e.at}
}

func (e cdcEvent) kind() string {
	switch e.op {
	case "r":
		return kindSnapshot
	case "c":
		return kindInsert
	case "u":
		return kindUpdate
	}
	return kindDelete
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value marshalled here is built from plain structs of
		// strings and numbers.
		panic(fmt.Sprintf("demogen: marshal %T: %v", v, err))
	}
	return b
}

func usTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

// plainEvent encodes a change of the plain-JSON tables (accounts,
// profiles): the change event, then for a delete its tombstone.
func plainEvent[T any](topic, table string, key []byte, e cdcEvent, before, after *T) []record {
	v := change[T]{Before: before, After: after, Source: e.source("streaming", table), Op: e.op,
		TsMs: e.at/1000 + connectorLagMs, Transaction: nullJSON}
	recs := []record{{topic: topic, key: key, value: mustJSON(v), at: usTime(e.at), kind: e.kind()}}
	if e.op == "d" {
		recs = append(recs, record{topic: topic, key: key, at: usTime(e.at + 1), kind: kindTombstone})
	}
	return recs
}

func accountRecordKey(id int64) []byte {
	return []byte(`{"account_id":` + strconv.FormatInt(id, 10) + `}`)
}

func profileRecordKey(id string) []byte { return mustJSON(map[string]string{"profile_id": id}) }

func deviceRecordKey(id string) []byte { return mustJSON(map[string]string{"device_id": id}) }

// deviceEvent encodes a flattened devices change: the row after (before
// for a delete, marked __deleted), no tombstone (dropped by the SMT).
func deviceEvent(e cdcEvent, row Device) record {
	deleted := "false"
	if e.op == "d" {
		deleted = "true"
	}
	v := flatDevice{Device: row, Op: e.op, DB: "streaming", Schema: "public", Table: "devices", LSN: e.at,
		SourceTsMs: e.at / 1000, TsMs: e.at/1000 + connectorLagMs - 30, Deleted: deleted}
	return record{topic: TopicDevices, key: deviceRecordKey(row.DeviceID), value: mustJSON(v), at: usTime(e.at), kind: e.kind()}
}

// subscriptionEvent encodes a billing change with the schema wrapper, and
// for a delete its tombstone.
func subscriptionEvent(e cdcEvent, id int64, before, after *Subscription) ([]record, error) {
	schemas, err := subscriptionSchemas()
	if err != nil {
		return nil, err
	}
	key := mustJSON(wrapped{Schema: schemas[0], Payload: map[string]int64{"subscription_id": id}})
	payload := change[Subscription]{Before: before, After: after, Source: e.source("billing", "subscriptions"),
		Op: e.op, TsMs: e.at/1000 + connectorLagMs, Transaction: nullJSON}
	recs := []record{{topic: TopicSubscriptions, key: key, value: mustJSON(wrapped{Schema: schemas[1], Payload: payload}),
		at: usTime(e.at), kind: e.kind()}}
	if e.op == "d" {
		recs = append(recs, record{topic: TopicSubscriptions, key: key, at: usTime(e.at + 1), kind: kindTombstone})
	}
	return recs, nil
}

// rfc3339Micro formats a row timestamp column as PostgreSQL's JSON output
// of timestamptz does (microseconds, trailing zeros dropped).
func rfc3339Micro(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
}

func emailOf(first, last string, id int64, domain string) string {
	local := strings.ToLower(strings.ReplaceAll(first+"."+last, " ", ""))
	return fmt.Sprintf("%s%d@%s", local, id%100, domain)
}
