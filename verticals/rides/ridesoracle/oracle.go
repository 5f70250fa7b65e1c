// Package ridesoracle computes, from the records of the rides vertical's
// topics alone, what rtgraph's graph must hold once it has consumed them:
// every node with its properties, every visible edge with its properties,
// the edges of every node by type and direction, the frequency-cap counts
// and the dead letters per topic and class.
//
// It imports only the standard library and none of rtgraph: it is written
// from the rules below (the target semantics), not from rtgraph's code, so
// that a test comparing the two finds the places where they differ.
//
// # Rules
//
// Decoding. A record that is not JSON is a dead letter of class
// malformed_json; a plain Debezium envelope without op is missing_field; a
// key field whose value has another type than declared (integer: a JSON
// integer; string: a non-empty JSON string; uuid: a 36-character UUID
// string), and a request id that is not a string, are wrong_type. Dead
// letters change nothing. A Debezium tombstone (null value) changes
// nothing.
//
// Versions. Every mutation has a version (event time in µs, position). CDC:
// source.ts_us, else source.ts_ms (flattened rows: __source_ts_ms), and the
// LSN (source.lsn, __lsn). The metadata topic: the record's Kafka timestamp
// and its offset (records of one key are on one partition, in file order).
// Request logs: the request time and the request id. Per node and per edge
// the greatest version wins, whatever the arrival order; at equal versions
// a delete beats an upsert, and of two upserts the one whose properties have
// the greater canonical JSON.
//
// Visibility. A node exists when its best upsert beats its best delete. A
// node delete does not delete edges. An edge is visible when its best upsert
// beats its best delete, it has not expired (event time + TTL > now), and
// both ends exist — except an end of a type declared implicit (city), which
// only must not be deleted (a delete newer than its newest upsert). For an
// edge type with multiplicity many2one, each From node keeps only the edge
// upsert of the greatest version over all its edges of the type (ties: the
// greater To id); the others are not visible.
//
// Counts. Every mapped request log of a counted edge type (requested,
// viewed_surge) is one impression of (rider, edge type, zone, event time,
// request id); the same identity delivered twice counts once, the same id
// at another time twice. A window W as of T counts the impressions with
// T−W < t ≤ T. Counts need no node to exist and do not expire within 7d.
//
// The mapping (verticals/rides/mappings, restated): riders, drivers →
// rider/driver nodes (props name, tier, signup_day / name, rating_x10,
// active), deletes delete the node. Vehicles (flattened) → vehicle node
// (plate, model, seats) and drives vehicle→driver (since = owner_since) when
// driver_id is set; a delete deletes the node only. Trips → trip node
// (status, fare_cents, requested_at), booked_by trip→rider (requested_at),
// driven_by trip→driver (status) when driver_id is set; a delete deletes the
// node and both edges of the before image. Zones → zone node (name,
// surge_x100) and in_city zone→city when the document has a city; a
// tombstone deletes the node. Cities (metadata topic) → city node
// (country, population), a tombstone deletes it. Ride requests → requested rider→zone
// (request_id, fare_estimate_cents; TTL 7d1h); surge views → viewed_surge
// rider→zone (request_id, surge_x100; TTL 1h). Properties whose value is
// null or absent are left out.
package ridesoracle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Topics.
const (
	TopicRiders     = "rides.public.riders"
	TopicDrivers    = "rides.public.drivers"
	TopicVehicles   = "rides.public.vehicles"
	TopicTrips      = "rides.public.trips"
	TopicZones      = "rides.zones"
	TopicCities     = "rides.cities"
	TopicRequests   = "rides.requests"
	TopicSurgeViews = "rides.surge_views"
)

// Topics lists every topic.
var Topics = []string{TopicCities, TopicZones, TopicRiders, TopicDrivers, TopicVehicles, TopicTrips, TopicRequests, TopicSurgeViews}

// EdgeTypeInfo is what the oracle knows of an edge type.
type EdgeTypeInfo struct {
	From, To string
	Reverse  bool
	Many2One bool
	TTL      time.Duration
	Counted  bool
}

// EdgeTypes of the rides graph schema.
var EdgeTypes = map[string]EdgeTypeInfo{
	"drives":       {From: "vehicle", To: "driver", Reverse: true, Many2One: true},
	"booked_by":    {From: "trip", To: "rider", Reverse: true},
	"driven_by":    {From: "trip", To: "driver", Reverse: true, Many2One: true},
	"in_city":      {From: "zone", To: "city", Reverse: true, Many2One: true},
	"requested":    {From: "rider", To: "zone", Reverse: true, TTL: 7*24*time.Hour + time.Hour, Counted: true},
	"viewed_surge": {From: "rider", To: "zone", Reverse: false, TTL: time.Hour, Counted: true},
}

// ImplicitTypes are node types that edges may name without the node being
// written.
var ImplicitTypes = map[string]bool{"city": true}

// Windows the count lookups ask for.
var Windows = []string{"1m", "5m", "1h", "1d", "7d"}

var windowDur = map[string]time.Duration{"1m": time.Minute, "5m": 5 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour}

// NodeKey names a node.
type NodeKey struct{ Type, ID string }

func (k NodeKey) String() string { return k.Type + ":" + k.ID }

// Node is an expected node.
type Node struct {
	Key       NodeKey
	Props     map[string]any // values: string, bool, json.Number
	EventTime time.Time
}

// Edge is an expected visible edge.
type Edge struct {
	Type      string
	From, To  NodeKey
	Props     map[string]any
	EventTime time.Time
	ExpiresAt time.Time // zero: never
}

func (e Edge) String() string {
	return fmt.Sprintf("%s -%s-> %s", e.From, e.Type, e.To)
}

// CountLookup is one expected /v1/counts answer.
type CountLookup struct {
	User     NodeKey
	EdgeType string
	Targets  []NodeKey
	// Counts: target → window → count.
	Counts map[NodeKey]map[string]int64
}

// Expected is the graph the oracle computes.
type Expected struct {
	AsOf time.Time
	Now  time.Time
	// Nodes that exist.
	Nodes map[NodeKey]*Node
	// Known: every node key any mutation names (existing or not), sorted.
	Known []NodeKey
	// Edges that are visible.
	Edges []Edge
	// Counts lookups, one per (rider, counted edge type) with impressions.
	Counts []CountLookup
	// Records per topic; DeadLetters per topic and class.
	Records     map[string]int
	DeadLetters map[string]map[string]int
}

// Adjacency returns the visible edges of node k of edgeType, out (k is the
// From end) or in (k is the To end), sorted by the other end.
func (x *Expected) Adjacency(k NodeKey, edgeType string, out bool) []Edge {
	var es []Edge
	for _, e := range x.Edges {
		if e.Type != edgeType {
			continue
		}
		if (out && e.From == k) || (!out && e.To == k) {
			es = append(es, e)
		}
	}
	sort.Slice(es, func(i, j int) bool {
		if out {
			return es[i].To.ID < es[j].To.ID
		}
		return es[i].From.ID < es[j].From.ID
	})
	return es
}

// ---- versions ----

type version struct {
	us   int64 // event time, µs since the epoch
	n    int64 // numeric position (LSN, offset)
	s    string
	kind int // 1 numeric, 2 string
}

func (a version) cmp(b version) int {
	switch {
	case a.us != b.us:
		return cmpInt(a.us, b.us)
	case a.kind != b.kind:
		return cmpInt(int64(a.kind), int64(b.kind))
	case a.kind == 1:
		return cmpInt(a.n, b.n)
	default:
		return strings.Compare(a.s, b.s)
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type write struct {
	ver   version
	props map[string]any
	canon string
	ttl   time.Duration
	valid bool
}

// better reports whether w beats cur as the best upsert.
func (w write) better(cur write) bool {
	if !cur.valid {
		return true
	}
	if c := w.ver.cmp(cur.ver); c != 0 {
		return c > 0
	}
	return w.canon > cur.canon
}

type state struct {
	up  write
	del version
	has bool // has a delete
}

func (s *state) upsert(w write) {
	if w.better(s.up) {
		s.up = w
	}
}

func (s *state) delete(v version) {
	if !s.has || v.cmp(s.del) > 0 {
		s.del, s.has = v, true
	}
}

// live: the best upsert beats the best delete (a delete wins ties).
func (s *state) live() bool {
	return s.up.valid && (!s.has || s.up.ver.cmp(s.del) > 0)
}

// deleted: a delete at least as new as the newest upsert.
func (s *state) deleted() bool {
	return s.has && (!s.up.valid || s.del.cmp(s.up.ver) >= 0)
}

type edgeKey struct {
	Type     string
	From, To NodeKey
}

type impression struct {
	user, target NodeKey
	edgeType     string
	us           int64
	id           string
}

type builder struct {
	nodes       map[NodeKey]*state
	edges       map[edgeKey]*state
	known       map[NodeKey]bool
	impressions map[impression]bool
	records     map[string]int
	dead        map[string]map[string]int
}

func (b *builder) node(k NodeKey) *state {
	b.known[k] = true
	s := b.nodes[k]
	if s == nil {
		s = &state{}
		b.nodes[k] = s
	}
	return s
}

func (b *builder) edge(k edgeKey) *state {
	b.known[k.From] = true
	b.known[k.To] = true
	s := b.edges[k]
	if s == nil {
		s = &state{}
		b.edges[k] = s
	}
	return s
}

func canon(props map[string]any) string {
	bs, _ := json.Marshal(props) // map keys sorted
	return string(bs)
}

func (b *builder) upsertNode(k NodeKey, props map[string]any, v version) {
	b.node(k).upsert(write{ver: v, props: props, canon: canon(props), valid: true})
}

func (b *builder) deleteNode(k NodeKey, v version) { b.node(k).delete(v) }

func (b *builder) upsertEdge(t string, from, to NodeKey, props map[string]any, v version) {
	b.edge(edgeKey{t, from, to}).upsert(write{ver: v, props: props, canon: canon(props), ttl: EdgeTypes[t].TTL, valid: true})
}

func (b *builder) deleteEdge(t string, from, to NodeKey, v version) {
	b.edge(edgeKey{t, from, to}).delete(v)
}

// ---- reading records ----

type fileRecord struct {
	Key           json.RawMessage   `json:"key"`
	Value         json.RawMessage   `json:"value"`
	ValueEncoding string            `json:"value_encoding"`
	Timestamp     string            `json:"timestamp"`
	Headers       map[string]string `json:"headers"`
}

type deadLetter string

func (d deadLetter) Error() string { return string(d) }

const (
	dlMalformed    deadLetter = "malformed_json"
	dlMissingField deadLetter = "missing_field"
	dlWrongType    deadLetter = "wrong_type"
	dlSchema       deadLetter = "schema_violation"
	// mapping
	dlUnknownEntity deadLetter = "unknown_entity"
	dlNonConforming deadLetter = "non_conforming"
)

func isNull(r json.RawMessage) bool {
	t := bytes.TrimSpace(r)
	return len(t) == 0 || string(t) == "null"
}

func decodeObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, dlMalformed
	}
	if d.More() {
		return nil, dlMalformed
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, dlSchema
	}
	return m, nil
}

// valueBytes is the record value as sent (nil: tombstone).
func valueBytes(r fileRecord) ([]byte, error) {
	if isNull(r.Value) {
		return nil, nil
	}
	if r.ValueEncoding == "utf8" {
		var s string
		if err := json.Unmarshal(r.Value, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, r.Value); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// keyText is the record key as sent: a JSON string's text, else the JSON.
func keyText(r fileRecord) string {
	if isNull(r.Key) {
		return ""
	}
	var s string
	if json.Unmarshal(r.Key, &s) == nil {
		return s
	}
	return string(r.Key)
}

// isInteger: a JSON integer literal of any size, or a number without a
// fraction that a float64 holds exactly (12.0).
func isInteger(v any) bool {
	n, ok := v.(json.Number)
	if !ok {
		return false
	}
	s := strings.TrimPrefix(string(n), "-")
	digits := s != ""
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			digits = false
		}
	}
	if digits {
		return true
	}
	f, err := n.Float64()
	return err == nil && f == math.Trunc(f) && math.Abs(f) <= 1<<53
}

func isUUID(v any) bool {
	s, ok := v.(string)
	if !ok || len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func checkType(typ string, v any) error {
	ok := false
	switch typ {
	case "integer":
		ok = isInteger(v)
	case "string":
		s, isStr := v.(string)
		ok = isStr && s != ""
	case "uuid":
		ok = isUUID(v)
	}
	if !ok {
		return dlWrongType
	}
	return nil
}

// idText renders an id: a string as it is, an integer in decimal.
func idText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	}
	return fmt.Sprint(v)
}

// pick copies the named fields, leaving out nulls; renamed: prop → field.
func pick(m map[string]any, fields map[string]string) map[string]any {
	out := map[string]any{}
	for prop, f := range fields {
		if v, ok := m[f]; ok && v != nil {
			out[prop] = v
		}
	}
	return out
}

func num(v any) int64 {
	n, _ := v.(json.Number)
	i, _ := strconv.ParseInt(string(n), 10, 64)
	return i
}

// Compute reads <topic>.jsonl for every topic in dir and returns the
// expected graph: counts as of asOf, edge expiry judged at now.
func Compute(dir string, asOf, now time.Time) (*Expected, error) {
	b := &builder{nodes: map[NodeKey]*state{}, edges: map[edgeKey]*state{}, known: map[NodeKey]bool{},
		impressions: map[impression]bool{}, records: map[string]int{}, dead: map[string]map[string]int{}}
	for _, topic := range Topics {
		f, err := os.Open(filepath.Join(dir, topic+".jsonl"))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		line := 0
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			line++
			var r fileRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s line %d: %v", topic, line, err)
			}
			b.records[topic]++
			if err := b.apply(topic, line, r); err != nil {
				dl, ok := err.(deadLetter)
				if !ok {
					f.Close()
					return nil, fmt.Errorf("%s line %d: %v", topic, line, err)
				}
				if b.dead[topic] == nil {
					b.dead[topic] = map[string]int{}
				}
				b.dead[topic][string(dl)]++
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return b.result(asOf, now), nil
}

func (b *builder) apply(topic string, line int, r fileRecord) error {
	val, err := valueBytes(r)
	if err != nil {
		return err
	}
	switch topic {
	case TopicZones:
		return b.zone(line, r, val)
	case TopicCities:
		return b.city(line, r, val)
	case TopicRequests, TopicSurgeViews:
		return b.requestLog(topic, val)
	}
	if val == nil {
		return nil // a Debezium tombstone
	}
	m, err := decodeObject(val)
	if err != nil {
		return err
	}
	var op string
	var row map[string]any
	var v version
	if o, ok := m["op"]; ok {
		op, _ = o.(string)
		after, _ := m["after"].(map[string]any)
		before, _ := m["before"].(map[string]any)
		row = after
		if op == "d" {
			row = before
		}
		src, _ := m["source"].(map[string]any)
		us := num(src["ts_ms"]) * 1000
		if t, ok := src["ts_us"]; ok && t != nil {
			us = num(t)
		}
		v = version{us: us, n: num(src["lsn"]), kind: 1}
	} else if o, ok := m["__op"]; ok {
		op, _ = o.(string)
		if m["__deleted"] == "true" {
			op = "d"
		}
		row = m
		v = version{us: num(m["__source_ts_ms"]) * 1000, n: num(m["__lsn"]), kind: 1}
	} else {
		return dlMissingField
	}
	if op == "t" {
		return dlUnknownEntity // no rule selects a truncate
	}
	if row == nil {
		return dlMissingField
	}
	keyField, keyType := cdcKeys[topic][0], cdcKeys[topic][1]
	kv, ok := row[keyField]
	var keyObj map[string]any
	if !isNull(r.Key) {
		if km, err := decodeObject(r.Key); err == nil {
			keyObj = km
		}
	}
	if x, ok2 := keyObj[keyField]; ok2 {
		kv, ok = x, true
	}
	if !ok || kv == nil {
		return dlMissingField
	}
	if err := checkType(keyType, kv); err != nil {
		return err
	}
	id := idText(row[keyField])
	switch op {
	case "c", "u", "r":
		if topic == TopicTrips && row["rider_id"] == nil {
			// booked_by needs the rider's id: the event is not written.
			b.known[NodeKey{"trip", id}] = true
			return dlNonConforming
		}
		b.upsertCDC(topic, id, row, v)
	case "d":
		b.deleteCDC(topic, id, row, v)
	default:
		return deadLetter("unsupported_op")
	}
	return nil
}

// cdcKeys: topic → key field, declared type.
var cdcKeys = map[string][2]string{
	TopicRiders:   {"rider_id", "integer"},
	TopicDrivers:  {"driver_id", "string"},
	TopicVehicles: {"vehicle_id", "uuid"},
	TopicTrips:    {"trip_id", "integer"},
}

func (b *builder) upsertCDC(topic, id string, row map[string]any, v version) {
	switch topic {
	case TopicRiders:
		b.upsertNode(NodeKey{"rider", id}, pick(row, map[string]string{"name": "name", "tier": "tier", "signup_day": "signup_day"}), v)
	case TopicDrivers:
		b.upsertNode(NodeKey{"driver", id}, pick(row, map[string]string{"name": "name", "rating_x10": "rating_x10", "active": "active"}), v)
	case TopicVehicles:
		vk := NodeKey{"vehicle", id}
		b.upsertNode(vk, pick(row, map[string]string{"plate": "plate", "model": "model", "seats": "seats"}), v)
		if d := row["driver_id"]; d != nil {
			b.upsertEdge("drives", vk, NodeKey{"driver", idText(d)}, pick(row, map[string]string{"since": "owner_since"}), v)
		}
	case TopicTrips:
		tk := NodeKey{"trip", id}
		b.upsertNode(tk, pick(row, map[string]string{"status": "status", "fare_cents": "fare_cents", "requested_at": "requested_at"}), v)
		b.upsertEdge("booked_by", tk, NodeKey{"rider", idText(row["rider_id"])}, pick(row, map[string]string{"requested_at": "requested_at"}), v)
		if d := row["driver_id"]; d != nil {
			b.upsertEdge("driven_by", tk, NodeKey{"driver", idText(d)}, pick(row, map[string]string{"status": "status"}), v)
		}
	}
}

func (b *builder) deleteCDC(topic, id string, row map[string]any, v version) {
	switch topic {
	case TopicRiders:
		b.deleteNode(NodeKey{"rider", id}, v)
	case TopicDrivers:
		b.deleteNode(NodeKey{"driver", id}, v)
	case TopicVehicles:
		b.deleteNode(NodeKey{"vehicle", id}, v)
	case TopicTrips:
		tk := NodeKey{"trip", id}
		b.deleteNode(tk, v)
		b.deleteEdge("booked_by", tk, NodeKey{"rider", idText(row["rider_id"])}, v)
		if d := row["driver_id"]; d != nil {
			b.deleteEdge("driven_by", tk, NodeKey{"driver", idText(d)}, v)
		}
	}
}

func (b *builder) zone(line int, r fileRecord, val []byte) error {
	key := keyText(r)
	if key == "" {
		return dlMissingField
	}
	ts, err := time.Parse(time.RFC3339Nano, r.Timestamp)
	if err != nil {
		return fmt.Errorf("zone record without a timestamp")
	}
	v := version{us: ts.UnixMicro(), n: int64(line), kind: 1}
	zk := NodeKey{"zone", key}
	if val == nil {
		b.deleteNode(zk, v)
		return nil
	}
	doc, err := decodeObject(val)
	if err != nil {
		return err
	}
	if x, ok := doc["surge_x100"]; ok && x != nil && !isInteger(x) {
		return dlNonConforming
	}
	if x, ok := doc["name"]; ok && x != nil {
		if _, isStr := x.(string); !isStr {
			return dlNonConforming
		}
	}
	b.upsertNode(zk, pick(doc, map[string]string{"name": "name", "surge_x100": "surge_x100"}), v)
	if c := doc["city"]; c != nil {
		b.upsertEdge("in_city", zk, NodeKey{"city", idText(c)}, map[string]any{}, v)
	}
	return nil
}

func (b *builder) city(line int, r fileRecord, val []byte) error {
	key := keyText(r)
	if key == "" {
		return dlMissingField
	}
	ts, err := time.Parse(time.RFC3339Nano, r.Timestamp)
	if err != nil {
		return fmt.Errorf("city record without a timestamp")
	}
	v := version{us: ts.UnixMicro(), n: int64(line), kind: 1}
	ck := NodeKey{"city", key}
	if val == nil {
		b.deleteNode(ck, v)
		return nil
	}
	doc, err := decodeObject(val)
	if err != nil {
		return err
	}
	b.upsertNode(ck, pick(doc, map[string]string{"country": "country", "population": "population"}), v)
	return nil
}

func (b *builder) requestLog(topic string, val []byte) error {
	if val == nil {
		return dlMalformed
	}
	m, err := decodeObject(val)
	if err != nil {
		return err
	}
	id, ok := m["request_id"].(string)
	if !ok || id == "" {
		if _, present := m["request_id"]; !present {
			return dlMissingField
		}
		return dlWrongType
	}
	var t time.Time
	if topic == TopicRequests {
		s, _ := m["ts"].(string)
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return deadLetter("bad_time")
		}
	} else {
		if !isInteger(m["ts_ms"]) {
			return deadLetter("bad_time")
		}
		t = time.UnixMilli(num(m["ts_ms"]))
	}
	for f, typ := range map[string]string{"rider_id": "integer", "zone_id": "string"} {
		x, present := m[f]
		if !present || x == nil {
			return dlMissingField
		}
		if err := checkType(typ, x); err != nil {
			return err
		}
	}
	us := t.UnixMicro()
	v := version{us: us, s: id, kind: 2}
	rider := NodeKey{"rider", idText(m["rider_id"])}
	zone := NodeKey{"zone", idText(m["zone_id"])}
	et := "requested"
	props := map[string]any{"request_id": id}
	if topic == TopicRequests {
		if x := m["fare_estimate_cents"]; x != nil {
			props["fare_estimate_cents"] = x
		}
	} else {
		et = "viewed_surge"
		if x := m["surge_x100"]; x != nil {
			props["surge_x100"] = x
		}
	}
	b.upsertEdge(et, rider, zone, props, v)
	b.impressions[impression{user: rider, target: zone, edgeType: et, us: us, id: id}] = true
	return nil
}

// ---- the result ----

func (b *builder) result(asOf, now time.Time) *Expected {
	x := &Expected{AsOf: asOf, Now: now, Nodes: map[NodeKey]*Node{}, Records: b.records, DeadLetters: b.dead}
	for k := range b.known {
		x.Known = append(x.Known, k)
	}
	sort.Slice(x.Known, func(i, j int) bool {
		if x.Known[i].Type != x.Known[j].Type {
			return x.Known[i].Type < x.Known[j].Type
		}
		return x.Known[i].ID < x.Known[j].ID
	})
	for k, s := range b.nodes {
		if s.live() {
			x.Nodes[k] = &Node{Key: k, Props: s.up.props, EventTime: time.UnixMicro(s.up.ver.us).UTC()}
		}
	}
	endOK := func(k NodeKey) bool {
		s := b.nodes[k]
		if ImplicitTypes[k.Type] {
			return s == nil || !s.deleted()
		}
		return s != nil && s.live()
	}
	// many2one claims: From node → edge type → the winning upsert.
	type claimKey struct {
		from NodeKey
		typ  string
	}
	claims := map[claimKey]edgeKey{}
	for k, s := range b.edges {
		if !EdgeTypes[k.Type].Many2One || !s.up.valid {
			continue
		}
		ck := claimKey{k.From, k.Type}
		cur, ok := claims[ck]
		if !ok {
			claims[ck] = k
			continue
		}
		cs := b.edges[cur]
		c := s.up.ver.cmp(cs.up.ver)
		if c > 0 || (c == 0 && k.To.ID > cur.To.ID) {
			claims[ck] = k
		}
	}
	for k, s := range b.edges {
		info := EdgeTypes[k.Type]
		if !s.live() {
			continue
		}
		if info.Many2One && claims[claimKey{k.From, k.Type}] != k {
			continue
		}
		et := time.UnixMicro(s.up.ver.us).UTC()
		var exp time.Time
		if info.TTL > 0 {
			exp = et.Add(info.TTL)
			if !exp.After(now) {
				continue
			}
		}
		if !endOK(k.From) || !endOK(k.To) {
			continue
		}
		x.Edges = append(x.Edges, Edge{Type: k.Type, From: k.From, To: k.To, Props: s.up.props, EventTime: et, ExpiresAt: exp})
	}
	sort.Slice(x.Edges, func(i, j int) bool { return x.Edges[i].String() < x.Edges[j].String() })

	// Counts.
	type lk struct {
		user NodeKey
		typ  string
	}
	per := map[lk]map[NodeKey]map[string]int64{}
	for im := range b.impressions {
		l := lk{im.user, im.edgeType}
		if per[l] == nil {
			per[l] = map[NodeKey]map[string]int64{}
		}
		if per[l][im.target] == nil {
			per[l][im.target] = map[string]int64{}
			for _, w := range Windows {
				per[l][im.target][w] = 0
			}
		}
		t := time.UnixMicro(im.us)
		for _, w := range Windows {
			if t.After(asOf.Add(-windowDur[w])) && !t.After(asOf) {
				per[l][im.target][w]++
			}
		}
	}
	never := NodeKey{"zone", "z-never-requested"}
	for l, targets := range per {
		cl := CountLookup{User: l.user, EdgeType: l.typ, Counts: targets}
		for t := range targets {
			cl.Targets = append(cl.Targets, t)
		}
		sort.Slice(cl.Targets, func(i, j int) bool { return cl.Targets[i].ID < cl.Targets[j].ID })
		cl.Targets = append(cl.Targets, never)
		cl.Counts[never] = map[string]int64{}
		for _, w := range Windows {
			cl.Counts[never][w] = 0
		}
		x.Counts = append(x.Counts, cl)
	}
	sort.Slice(x.Counts, func(i, j int) bool {
		if x.Counts[i].User.ID != x.Counts[j].User.ID {
			return x.Counts[i].User.ID < x.Counts[j].User.ID
		}
		return x.Counts[i].EdgeType < x.Counts[j].EdgeType
	})
	return x
}
