// Package ridesgen generates the records of the rides vertical
// (verticals/rides), seeded and adversarial, as files in the format
// `rtgraph produce` reads: one JSON record object per line,
// {"key": …, "value": …, "timestamp": …, "headers": …}, one file per topic
// named <topic>.jsonl.
//
// Besides ordinary traffic the records hold the cases that break naive
// ingestion: several updates of one trip in one transaction (same commit
// time, increasing LSN) redelivered later in reverse order; delete →
// tombstone → re-insert of one key; replays of old events after a delete;
// vehicle ownership transfers in the flattened (ExtractNewRecordState) shape,
// which carries no before image; zone documents that change city, tombstones
// of zones and zones re-created; wrong-typed keys ("twelve" for an integer
// id, a number for a string id, a malformed uuid), events that lost their
// op, values that are not JSON; ids above 2^53 written as JSON numbers; ids
// holding "/", "%", "%2F" and Hangul; request logs that arrive late or twice.
//
// Every record meant to be dead-lettered carries the header
// rtgraph.expect: dead_letter:<class> (the pipeline ignores it; `rtgraph
// vertical check` verifies it on samples).
//
// The package imports only the standard library. It knows nothing of how
// rtgraph maps the records: package ridesoracle computes what the graph must
// be from the records alone.
package ridesgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The topics of the rides vertical.
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

// Topics lists every topic, in the order to publish them.
var Topics = []string{TopicCities, TopicZones, TopicRiders, TopicDrivers, TopicVehicles, TopicTrips, TopicRequests, TopicSurgeViews}

// ExpectHeader is the header naming the dead-letter class a record must get.
const ExpectHeader = "rtgraph.expect"

// Record is one line of a produce file.
type Record struct {
	Key           json.RawMessage   `json:"key"`
	Value         json.RawMessage   `json:"value"`
	ValueEncoding string            `json:"value_encoding,omitempty"`
	Timestamp     string            `json:"timestamp,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
}

// Options configure Generate.
type Options struct {
	Seed int64
	// AsOf is the instant the request logs lead up to: every request log's
	// event time is at or before it, some exactly on window boundaries
	// (AsOf, AsOf−1m, AsOf−5m, AsOf−1h), and CDC and metadata changes happen
	// in the two hours before it. Truncated to the millisecond. Counts are
	// meant to be read as of AsOf.
	AsOf time.Time
	// Small makes a few records per topic (the vertical's samples) instead
	// of a few thousand.
	Small bool
}

// Output is the generated records, per topic, in publishing order.
type Output struct {
	AsOf   time.Time
	Topics map[string][]Record
}

// Count is the total number of records.
func (o *Output) Count() int {
	n := 0
	for _, rs := range o.Topics {
		n += len(rs)
	}
	return n
}

// WriteDir writes one <topic>.jsonl file per topic into dir.
func (o *Output) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, t := range Topics {
		f, err := os.Create(filepath.Join(dir, t+".jsonl"))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		for _, r := range o.Topics[t] {
			b, err := json.Marshal(r)
			if err != nil {
				f.Close()
				return err
			}
			w.Write(b)
			w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Special ids.
const (
	RiderAbove2p53 json.Number = "9007199254740993"     // 2^53 + 1: a float64 would read 2^53
	RiderMaxInt64  json.Number = "9223372036854775807"  // 2^63 - 1
	RiderAbove2p64 json.Number = "18446744073709551617" // 2^64 + 1: no 64-bit integer holds it
	TripAbove2p53  int64       = 9007199254740995
	RiderNeverMade json.Number = "777"  // requested rides, never written by CDC
	TripNoRider    int64       = 990001 // only in an event that is dead-lettered
)

// SpecialDrivers are driver ids that need escaping in a URL path.
var SpecialDrivers = []string{"drv/7", "drv%41", "drv%2F9", "운전자-1"}

// SpecialZones are zone ids that need escaping.
var SpecialZones = []string{"강남/역삼", "z%2Fx", "z%20y"}

// Cities zones are in (implicit nodes).
var Cities = []string{"Seoul", "Busan", "서울", "Old/Town%2F", "Incheon"}

type gen struct {
	r     *rand.Rand
	asOf  time.Time
	small bool
	out   map[string][]Record

	clockMs int64 // CDC commit time cursor (ms)
	lsn     int64
	txID    int64
	mdMs    int64 // metadata Kafka timestamp cursor (ms)

	riders   []json.Number
	drivers  []string
	vehicles []string
	trips    []int64
	zones    []string

	riderRow   map[json.Number]map[string]any
	driverRow  map[string]map[string]any
	vehicleRow map[string]map[string]any
	tripRow    map[int64]map[string]any

	// history of emitted event records per key, for replays
	hist map[string][]Record
	// multi-update transactions of trips (records in commit order)
	txBatches [][]Record
	deleted   map[string]bool // topic|key deleted at least once
	zoneFirst map[string]Record
	zoneCur   map[string]map[string]any
}

// Generate makes the records.
func Generate(o Options) *Output {
	g := &gen{
		r:          rand.New(rand.NewSource(o.Seed)),
		asOf:       o.AsOf.UTC().Truncate(time.Millisecond),
		small:      o.Small,
		out:        map[string][]Record{},
		riderRow:   map[json.Number]map[string]any{},
		driverRow:  map[string]map[string]any{},
		vehicleRow: map[string]map[string]any{},
		tripRow:    map[int64]map[string]any{},
		hist:       map[string][]Record{},
		deleted:    map[string]bool{},
		zoneFirst:  map[string]Record{},
	}
	g.clockMs = g.asOf.Add(-2 * time.Hour).UnixMilli()
	g.mdMs = g.asOf.Add(-2*time.Hour - 10*time.Minute).UnixMilli()
	g.lsn = 30_000_000
	g.txID = 5000
	g.ids()
	g.run()
	return &Output{AsOf: g.asOf, Topics: g.out}
}

func (g *gen) ids() {
	nR, nD, nV, nT, nZ := 150, 40, 60, 250, 20
	if g.small {
		nR, nD, nV, nT, nZ = 4, 3, 3, 4, 3
	}
	for i := 0; i < nR; i++ {
		g.riders = append(g.riders, json.Number(strconv.Itoa(1000+i)))
	}
	g.riders = append(g.riders, RiderAbove2p53, RiderMaxInt64, RiderAbove2p64)
	for i := 0; i < nD; i++ {
		g.drivers = append(g.drivers, fmt.Sprintf("d-%d", 100+i))
	}
	g.drivers = append(g.drivers, SpecialDrivers...)
	for i := 0; i < nV; i++ {
		g.vehicles = append(g.vehicles, g.uuid())
	}
	for i := 0; i < nT; i++ {
		g.trips = append(g.trips, int64(500000+i))
	}
	g.trips = append(g.trips, TripAbove2p53)
	for i := 0; i < nZ; i++ {
		g.zones = append(g.zones, fmt.Sprintf("z-%02d", i))
	}
	g.zones = append(g.zones, SpecialZones...)
}

func (g *gen) uuid() string {
	b := make([]byte, 16)
	g.r.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func rfc(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

func (g *gen) emit(topic string, r Record) { g.out[topic] = append(g.out[topic], r) }

func (g *gen) remember(topic, key string, r Record) {
	g.hist[topic+"|"+key] = append(g.hist[topic+"|"+key], r)
}

// tx starts a transaction: a new commit time and txId.
func (g *gen) tx() (tsMs, tsUs int64) {
	g.clockMs += 20 + g.r.Int63n(400)
	g.txID++
	return g.clockMs, g.clockMs*1000 + g.r.Int63n(1000)
}

func clone(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// dbz is a schemaless Debezium envelope.
func (g *gen) dbz(table, op string, before, after map[string]any, tsMs, tsUs int64, withUs bool) map[string]any {
	g.lsn += 8 + g.r.Int63n(200)
	src := map[string]any{
		"version": "2.7.3.Final", "connector": "postgresql", "name": "rides", "ts_ms": tsMs,
		"snapshot": "false", "db": "rides", "sequence": nil, "schema": "public", "table": table,
		"txId": g.txID, "lsn": g.lsn, "xmin": nil,
	}
	if op == "r" {
		src["snapshot"] = "true"
	}
	if withUs {
		src["ts_us"] = tsUs
	}
	var b, a any
	if before != nil {
		b = before
	}
	if after != nil {
		a = after
	}
	return map[string]any{"before": b, "after": a, "source": src, "op": op, "ts_ms": tsMs + 120, "transaction": nil}
}

func (g *gen) rec(key, value any, tsMs int64) Record {
	r := Record{Key: raw(key), Timestamp: rfc(tsMs + 130)}
	if value == nil {
		r.Value = json.RawMessage("null")
	} else {
		r.Value = raw(value)
	}
	return r
}

// ---- riders (plain Debezium, source.ts_us present) ----

var tiers = []string{"basic", "plus", "premium"}
var names = []string{"Ana", "Bo", "Chen", "Dara", "Eun-ji", "Femi", "Gus", "Hana", "Ivo", "Jae", "Kofi", "Lena", "민준", "서연"}

func (g *gen) riderStep(id json.Number) {
	key := map[string]any{"rider_id": id}
	k := fmt.Sprint(id)
	row := g.riderRow[id]
	ts, us := g.tx()
	switch {
	case row == nil:
		op := "c"
		if g.hist[TopicRiders+"|"+k] == nil && g.r.Intn(4) == 0 {
			op = "r"
		}
		after := map[string]any{"rider_id": id, "name": names[g.r.Intn(len(names))], "tier": tiers[g.r.Intn(3)], "signup_day": time.UnixMilli(ts).UTC().AddDate(0, 0, -g.r.Intn(900)).Format("2006-01-02")}
		r := g.rec(key, g.dbz("riders", op, nil, after, ts, us, true), ts)
		g.emit(TopicRiders, r)
		g.remember(TopicRiders, k, r)
		g.riderRow[id] = after
	case g.r.Intn(6) == 0:
		r := g.rec(key, g.dbz("riders", "d", row, nil, ts, us, true), ts)
		g.emit(TopicRiders, r)
		g.remember(TopicRiders, k, r)
		g.emit(TopicRiders, g.rec(key, nil, ts)) // the tombstone
		g.riderRow[id] = nil
		g.deleted[TopicRiders+"|"+k] = true
	default:
		after := clone(row)
		if g.r.Intn(2) == 0 {
			after["tier"] = tiers[g.r.Intn(3)]
		} else {
			after["name"] = names[g.r.Intn(len(names))]
		}
		r := g.rec(key, g.dbz("riders", "u", row, after, ts, us, true), ts)
		g.emit(TopicRiders, r)
		g.remember(TopicRiders, k, r)
		g.riderRow[id] = after
	}
}

// ---- drivers (plain Debezium, ts_ms only) ----

func (g *gen) driverStep(id string) {
	key := map[string]any{"driver_id": id}
	row := g.driverRow[id]
	ts, us := g.tx()
	switch {
	case row == nil:
		after := map[string]any{"driver_id": id, "name": names[g.r.Intn(len(names))], "rating_x10": int64(30 + g.r.Intn(21)), "active": true}
		r := g.rec(key, g.dbz("drivers", "c", nil, after, ts, us, false), ts)
		g.emit(TopicDrivers, r)
		g.remember(TopicDrivers, id, r)
		g.driverRow[id] = after
	case g.r.Intn(8) == 0:
		r := g.rec(key, g.dbz("drivers", "d", row, nil, ts, us, false), ts)
		g.emit(TopicDrivers, r)
		g.remember(TopicDrivers, id, r)
		g.emit(TopicDrivers, g.rec(key, nil, ts))
		g.driverRow[id] = nil
		g.deleted[TopicDrivers+"|"+id] = true
	default:
		after := clone(row)
		after["rating_x10"] = int64(30 + g.r.Intn(21))
		after["active"] = g.r.Intn(5) != 0
		r := g.rec(key, g.dbz("drivers", "u", row, after, ts, us, false), ts)
		g.emit(TopicDrivers, r)
		g.remember(TopicDrivers, id, r)
		g.driverRow[id] = after
	}
}

// ---- vehicles (flattened by ExtractNewRecordState, rewrite mode) ----

var models = []string{"Ioniq 5", "Sonata", "Prius", "Model 3", "K5"}

func (g *gen) flat(row map[string]any, op string, deleted bool, tsMs int64) map[string]any {
	g.lsn += 8 + g.r.Int63n(200)
	v := clone(row)
	v["__op"] = op
	v["__db"] = "rides"
	v["__schema"] = "public"
	v["__table"] = "vehicles"
	v["__lsn"] = g.lsn
	v["__source_ts_ms"] = tsMs
	v["__ts_ms"] = tsMs + 120
	v["__deleted"] = fmt.Sprint(deleted)
	return v
}

func (g *gen) vehicleStep(id string) {
	key := map[string]any{"vehicle_id": id}
	row := g.vehicleRow[id]
	ts, _ := g.tx()
	switch {
	case row == nil:
		after := map[string]any{"vehicle_id": id, "driver_id": g.drivers[g.r.Intn(len(g.drivers))], "plate": fmt.Sprintf("%02d가%04d", g.r.Intn(100), g.r.Intn(10000)), "model": models[g.r.Intn(len(models))], "seats": int64(4 + g.r.Intn(4)), "owner_since": rfc(ts)}
		if g.r.Intn(10) == 0 {
			after["driver_id"] = nil // unassigned
		}
		r := g.rec(key, g.flat(after, "c", false, ts), ts)
		g.emit(TopicVehicles, r)
		g.remember(TopicVehicles, id, r)
		g.vehicleRow[id] = after
	case g.r.Intn(10) == 0:
		r := g.rec(key, g.flat(row, "d", true, ts), ts)
		g.emit(TopicVehicles, r)
		g.remember(TopicVehicles, id, r)
		g.emit(TopicVehicles, g.rec(key, nil, ts))
		g.vehicleRow[id] = nil
		g.deleted[TopicVehicles+"|"+id] = true
	default:
		after := clone(row)
		if g.r.Intn(3) != 0 { // ownership transfer: the row names another driver, no before image
			after["driver_id"] = g.drivers[g.r.Intn(len(g.drivers))]
			after["owner_since"] = rfc(ts)
		} else {
			after["model"] = models[g.r.Intn(len(models))]
		}
		r := g.rec(key, g.flat(after, "u", false, ts), ts)
		g.emit(TopicVehicles, r)
		g.remember(TopicVehicles, id, r)
		g.vehicleRow[id] = after
	}
}

// ---- trips (plain Debezium; several updates in one transaction) ----

func (g *gen) tripStep(id int64) {
	key := map[string]any{"trip_id": id}
	k := fmt.Sprint(id)
	row := g.tripRow[id]
	ts, us := g.tx()
	switch {
	case row == nil:
		after := map[string]any{"trip_id": id, "rider_id": g.riders[g.r.Intn(len(g.riders))], "driver_id": nil, "status": "requested", "fare_cents": int64(500 + g.r.Intn(5000)), "requested_at": rfc(ts)}
		r := g.rec(key, g.dbz("trips", "c", nil, after, ts, us, false), ts)
		g.emit(TopicTrips, r)
		g.remember(TopicTrips, k, r)
		g.tripRow[id] = after
	case g.r.Intn(9) == 0:
		r := g.rec(key, g.dbz("trips", "d", row, nil, ts, us, false), ts)
		g.emit(TopicTrips, r)
		g.remember(TopicTrips, k, r)
		g.emit(TopicTrips, g.rec(key, nil, ts))
		g.tripRow[id] = nil
		g.deleted[TopicTrips+"|"+k] = true
	case row["status"] == "requested" || g.r.Intn(3) == 0:
		// One transaction: accept (assign a driver), start, adjust the
		// fare: same commit time, increasing LSN.
		var batch []Record
		cur := row
		steps := []string{"accepted", "started", "started"}
		if row["status"] != "requested" {
			steps = []string{"reassigned", "started"}
		}
		for _, st := range steps {
			after := clone(cur)
			switch st {
			case "accepted", "reassigned":
				after["driver_id"] = g.drivers[g.r.Intn(len(g.drivers))]
				after["status"] = "accepted"
			case "started":
				after["status"] = "started"
				after["fare_cents"] = int64(500 + g.r.Intn(5000))
			}
			r := g.rec(key, g.dbz("trips", "u", cur, after, ts, us, false), ts)
			g.emit(TopicTrips, r)
			g.remember(TopicTrips, k, r)
			batch = append(batch, r)
			cur = after
		}
		g.txBatches = append(g.txBatches, batch)
		g.tripRow[id] = cur
	default:
		after := clone(row)
		if row["status"] == "started" {
			after["status"] = "completed"
		} else {
			after["status"] = "cancelled"
		}
		r := g.rec(key, g.dbz("trips", "u", row, after, ts, us, false), ts)
		g.emit(TopicTrips, r)
		g.remember(TopicTrips, k, r)
		g.tripRow[id] = after
	}
}

// ---- zones (compacted metadata topic) ----

func (g *gen) zoneDoc(id string) map[string]any {
	return map[string]any{"zone_id": id, "name": "Zone " + id, "city": Cities[g.r.Intn(len(Cities))], "surge_x100": int64(100 + 10*g.r.Intn(20))}
}

func (g *gen) zoneRec(id string, doc map[string]any, sameTime bool) {
	if !sameTime {
		g.mdMs += 1000 + g.r.Int63n(5000)
	}
	r := Record{Key: raw(id), Timestamp: rfc(g.mdMs)}
	if doc == nil {
		r.Value = json.RawMessage("null")
	} else {
		r.Value = raw(doc)
	}
	if _, ok := g.zoneFirst[id]; !ok {
		g.zoneFirst[id] = r
	}
	g.emit(TopicZones, r)
}

func (g *gen) zoneTopic() {
	cur := map[string]map[string]any{}
	for _, z := range g.zones {
		d := g.zoneDoc(z)
		g.zoneRec(z, d, false)
		cur[z] = d
	}
	n := 60
	if g.small {
		n = 3
	}
	for i := 0; i < n; i++ {
		z := g.zones[g.r.Intn(len(g.zones))]
		switch {
		case cur[z] == nil: // re-created, maybe in another city
			d := g.zoneDoc(z)
			g.zoneRec(z, d, false)
			cur[z] = d
		case g.r.Intn(5) == 0: // tombstone
			g.zoneRec(z, nil, false)
			cur[z] = nil
		case g.r.Intn(2) == 0: // moves to another city
			d := clone(cur[z])
			d["city"] = Cities[g.r.Intn(len(Cities))]
			g.zoneRec(z, d, false)
			cur[z] = d
		default:
			d := clone(cur[z])
			d["surge_x100"] = int64(100 + 10*g.r.Intn(20))
			if g.r.Intn(4) == 0 {
				delete(d, "city") // no city: the old in_city edge stays
			}
			g.zoneRec(z, d, false)
			cur[z] = d
		}
	}
	// Two documents of one zone with the same Kafka timestamp: the offset
	// decides (the second wins).
	z := g.zones[0]
	d1 := g.zoneDoc(z)
	d1["name"] = "Same-time first"
	d1["city"] = "Busan"
	g.zoneRec(z, d1, false)
	d2 := clone(d1)
	d2["name"] = "Same-time second"
	d2["city"] = "Incheon"
	g.zoneRec(z, d2, true)
	// A special zone deleted for good, then its first document replayed
	// (an older timestamp at a later offset: it must stay deleted).
	last := g.zones[len(g.zones)-1]
	g.zoneRec(last, nil, false)
	cur[last] = nil
	g.emit(TopicZones, g.zoneFirst[last])
	cur[z] = d2
	g.zoneCur = cur
	g.cityTopic()
	// Documents that must change nothing: one of a live zone whose surge is
	// not an integer (non_conforming), one that is not an object
	// (schema_violation), one that is not JSON (malformed_json).
	var live string
	for _, id := range g.zones {
		if cur[id] != nil {
			live = id
		}
	}
	bad := clone(cur[live])
	bad["surge_x100"] = "high"
	bad["name"] = "must not be written"
	g.mdMs += 1000
	for _, r := range []Record{
		{Key: raw(live), Value: raw(bad), Headers: map[string]string{ExpectHeader: "dead_letter:non_conforming"}},
		{Key: raw(live), Value: json.RawMessage(`["not","an","object"]`), Headers: map[string]string{ExpectHeader: "dead_letter:schema_violation"}},
		{Key: raw(live), Value: raw(`{"name":"trunc`), ValueEncoding: "utf8", Headers: map[string]string{ExpectHeader: "dead_letter:malformed_json"}},
	} {
		r.Timestamp = rfc(g.mdMs)
		g.emit(TopicZones, r)
	}
}

// ---- cities (compacted metadata topic; the node type is implicit) ----

// City fates: written and kept, written then deleted (its in_city edges
// hide), deleted then written again (they show again), deleted without
// ever being written, never written at all (the last city).
func (g *gen) cityTopic() {
	doc := func(c string) map[string]any {
		return map[string]any{"name": c, "country": "KR", "population": int64(100000 + g.r.Intn(9000000))}
	}
	put := func(c string, d map[string]any) {
		g.mdMs += 500 + g.r.Int63n(2000)
		r := Record{Key: raw(c), Timestamp: rfc(g.mdMs)}
		if d == nil {
			r.Value = json.RawMessage("null")
		} else {
			r.Value = raw(d)
		}
		g.emit(TopicCities, r)
	}
	kept, gone, back, ghost := Cities[0], Cities[1], Cities[2], Cities[3]
	put(kept, doc(kept))
	put(gone, doc(gone))
	put(back, doc(back))
	put(kept, doc(kept)) // a changed document
	put(gone, nil)
	put(back, nil)
	put(ghost, nil)
	put(back, doc(back))
}

// ---- request logs ----

type reqLog struct {
	topic string
	rec   Record
}

func (g *gen) requestLogs() {
	asOf := g.asOf
	nReq, nSurge := 700, 500
	if g.small {
		nReq, nSurge = 4, 3
	}
	riderPool := append(append([]json.Number{}, g.riders...), RiderNeverMade)
	var reqs, surges []Record
	var dups []reqLog
	mkReq := func(n int, t time.Time) Record {
		v := map[string]any{"request_id": fmt.Sprintf("rq-%05d", n), "ts": t.UTC().Format(time.RFC3339Nano),
			"rider_id": riderPool[g.r.Intn(len(riderPool))], "zone_id": g.zones[g.r.Intn(len(g.zones))],
			"fare_estimate_cents": int64(700 + g.r.Intn(4000)), "client": "ios"}
		return Record{Key: json.RawMessage("null"), Value: raw(v), Timestamp: rfc(t.UnixMilli() + 40)}
	}
	mkSurge := func(n int, t time.Time) Record {
		v := map[string]any{"request_id": fmt.Sprintf("sv-%05d", n), "ts_ms": t.UnixMilli(),
			"rider_id": riderPool[g.r.Intn(len(riderPool))], "zone_id": g.zones[g.r.Intn(len(g.zones))],
			"surge_x100": int64(100 + 10*g.r.Intn(20))}
		return Record{Key: json.RawMessage("null"), Value: raw(v), Timestamp: rfc(t.UnixMilli() + 40)}
	}
	// Ride requests: in the last 3 hours (µs precision), boundaries
	// exactly, and late ones (days old) published last.
	boundaries := []time.Duration{0, time.Minute, 5 * time.Minute, time.Hour, 24 * time.Hour}
	for i := 0; i < nReq; i++ {
		var t time.Time
		switch {
		case i < len(boundaries):
			t = asOf.Add(-boundaries[i])
		default:
			t = asOf.Add(-time.Duration(g.r.Int63n(int64(3 * time.Hour)))).Truncate(time.Microsecond)
		}
		r := mkReq(i, t)
		reqs = append(reqs, r)
		if g.r.Intn(15) == 0 {
			dups = append(dups, reqLog{TopicRequests, r})
		}
	}
	late := []time.Duration{2 * 24 * time.Hour, 6 * 24 * time.Hour, 25 * time.Hour, 90 * time.Minute}
	for j, d := range late {
		r := mkReq(nReq+j, asOf.Add(-d))
		dups = append(dups, reqLog{TopicRequests, r}) // published late, after everything
	}
	// Surge views: the last 45 minutes (alive, ttl 1h), and older ones
	// whose edge has expired (but which the 1d and 7d windows count).
	sb := []time.Duration{0, time.Minute, 5 * time.Minute, time.Hour}
	for i := 0; i < nSurge; i++ {
		var t time.Time
		switch {
		case i < len(sb):
			t = asOf.Add(-sb[i])
		case g.r.Intn(5) == 0:
			t = asOf.Add(-65*time.Minute - time.Duration(g.r.Int63n(int64(2*time.Hour)))).Truncate(time.Millisecond)
		default:
			t = asOf.Add(-time.Duration(g.r.Int63n(int64(45 * time.Minute)))).Truncate(time.Millisecond)
		}
		r := mkSurge(i, t)
		surges = append(surges, r)
		if g.r.Intn(15) == 0 {
			dups = append(dups, reqLog{TopicSurgeViews, r})
		}
	}
	g.r.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	g.r.Shuffle(len(surges), func(i, j int) { surges[i], surges[j] = surges[j], surges[i] })
	g.out[TopicRequests] = append(g.out[TopicRequests], reqs...)
	g.out[TopicSurgeViews] = append(g.out[TopicSurgeViews], surges...)
	// The same request id and time twice with other properties (equal
	// versions: the greater canonical JSON of the properties wins, here
	// fare 999 over 1000), and the same request id at two times (two
	// impressions). Between a rider and a zone that exist.
	var liveRider json.Number
	for _, id := range g.riders {
		if g.riderRow[id] != nil {
			liveRider = id
			break
		}
	}
	var liveZone string
	for _, z := range g.zones {
		if g.zoneCur[z] != nil {
			liveZone = z
			break
		}
	}
	if liveRider != "" && liveZone != "" {
		t := asOf.Add(-3 * time.Minute)
		for _, fare := range []int64{1000, 999} {
			v := map[string]any{"request_id": "rq-tie", "ts": t.Format(time.RFC3339Nano), "rider_id": liveRider, "zone_id": liveZone, "fare_estimate_cents": fare}
			g.emit(TopicRequests, Record{Key: json.RawMessage("null"), Value: raw(v), Timestamp: rfc(t.UnixMilli() + 40)})
		}
		for _, d := range []time.Duration{2 * time.Minute, 30 * time.Minute} {
			t := asOf.Add(-d)
			v := map[string]any{"request_id": "sv-twice", "ts_ms": t.UnixMilli(), "rider_id": liveRider, "zone_id": liveZone, "surge_x100": int64(d / time.Minute)}
			g.emit(TopicSurgeViews, Record{Key: json.RawMessage("null"), Value: raw(v), Timestamp: rfc(t.UnixMilli() + 40)})
		}
	}
	// Dead letters.
	bad := func(topic string, v map[string]any, class string) {
		r := Record{Key: json.RawMessage("null"), Value: raw(v), Timestamp: rfc(asOf.UnixMilli()), Headers: map[string]string{ExpectHeader: "dead_letter:" + class}}
		g.emit(topic, r)
	}
	bad(TopicRequests, map[string]any{"request_id": "rq-bad-1", "ts": asOf.Add(-time.Minute).Format(time.RFC3339Nano), "rider_id": "twelve", "zone_id": g.zones[1], "fare_estimate_cents": 900}, "wrong_type")
	bad(TopicRequests, map[string]any{"request_id": 4242, "ts": asOf.Add(-time.Minute).Format(time.RFC3339Nano), "rider_id": g.riders[0], "zone_id": g.zones[1], "fare_estimate_cents": 900}, "wrong_type")
	bad(TopicSurgeViews, map[string]any{"request_id": "sv-bad-1", "ts_ms": asOf.Add(-time.Minute).UnixMilli(), "rider_id": g.riders[1], "zone_id": 17, "surge_x100": 120}, "wrong_type")
	g.emit(TopicSurgeViews, Record{Key: json.RawMessage("null"), Value: raw(`{"request_id":"sv-bad-2","ts_ms":`), ValueEncoding: "utf8", Timestamp: rfc(asOf.UnixMilli()), Headers: map[string]string{ExpectHeader: "dead_letter:malformed_json"}})
	// Late and duplicate deliveries, last.
	for _, d := range dups {
		g.emit(d.topic, d.rec)
	}
}

// ---- the run ----

func (g *gen) run() {
	// Metadata first, then the CDC timeline: steps over the four tables
	// interleaved as a database's commits are.
	g.zoneTopic()
	steps := 2600
	if g.small {
		steps = 0
		for _, id := range g.riders {
			g.riderStep(id)
		}
		for _, id := range g.drivers {
			g.driverStep(id)
		}
		for _, id := range g.vehicles {
			g.vehicleStep(id)
		}
		for _, id := range g.trips {
			g.tripStep(id)
		}
		g.riderStep(g.riders[0])
		g.vehicleStep(g.vehicles[0])
		g.tripStep(g.trips[0])
		g.tripStep(g.trips[1])
	} else {
		// Everything exists early on.
		for _, id := range g.riders {
			g.riderStep(id)
		}
		for _, id := range g.drivers {
			g.driverStep(id)
		}
		for _, id := range g.vehicles {
			g.vehicleStep(id)
		}
	}
	for i := 0; i < steps; i++ {
		switch x := g.r.Intn(100); {
		case x < 22:
			g.riderStep(g.riders[g.r.Intn(len(g.riders))])
		case x < 34:
			g.driverStep(g.drivers[g.r.Intn(len(g.drivers))])
		case x < 52:
			g.vehicleStep(g.vehicles[g.r.Intn(len(g.vehicles))])
		default:
			g.tripStep(g.trips[g.r.Intn(len(g.trips))])
		}
	}
	g.adversarialCDC()
	g.requestLogs()
}

func (g *gen) adversarialCDC() {
	// Delete → tombstone → re-insert of one key, certainly (the first rider).
	id := g.riders[0]
	if g.riderRow[id] == nil {
		g.riderStep(id)
	}
	for g.riderRow[id] != nil {
		g.riderStep(id)
	}
	g.riderStep(id) // re-insert

	// Two updates of one rider in one millisecond whose source.ts_us order
	// them against their LSNs: the event time (ts_us) decides first.
	id = g.riders[3]
	if g.riderRow[id] == nil {
		g.riderStep(id)
	}
	ts, _ := g.tx()
	key := map[string]any{"rider_id": id}
	a := clone(g.riderRow[id])
	a["name"] = "TsUsWins"
	b := clone(a)
	b["name"] = "LsnWins"
	ra := g.rec(key, g.dbz("riders", "u", g.riderRow[id], a, ts, ts*1000+900, true), ts)
	rb := g.rec(key, g.dbz("riders", "u", a, b, ts, ts*1000+100, true), ts)
	g.emit(TopicRiders, ra)
	g.emit(TopicRiders, rb)
	g.riderRow[id] = a

	// An update and a delete of one rider with the same version (same
	// commit time and LSN, an upstream bug): the delete wins.
	id = g.riders[4]
	if g.riderRow[id] == nil {
		g.riderStep(id)
	}
	ts, us := g.tx()
	key = map[string]any{"rider_id": id}
	u := clone(g.riderRow[id])
	u["tier"] = "premium"
	uv := g.dbz("riders", "u", g.riderRow[id], u, ts, us, true)
	dv := g.dbz("riders", "d", u, nil, ts, us, true)
	dv["source"].(map[string]any)["lsn"] = uv["source"].(map[string]any)["lsn"]
	g.emit(TopicRiders, g.rec(key, dv, ts))
	g.emit(TopicRiders, g.rec(key, uv, ts))
	g.emit(TopicRiders, g.rec(key, nil, ts))
	g.riderRow[id] = nil

	// Two updates of one rider with the same version and other properties
	// (an upstream that reuses a position): the greater canonical JSON of
	// the properties wins (name "Tie-Beta"), whatever the arrival order.
	id = g.riders[5]
	if g.riderRow[id] == nil {
		g.riderStep(id)
	}
	ts, us = g.tx()
	key = map[string]any{"rider_id": id}
	beta := clone(g.riderRow[id])
	beta["name"] = "Tie-Beta"
	alpha := clone(g.riderRow[id])
	alpha["name"] = "Tie-Alpha"
	bv := g.dbz("riders", "u", g.riderRow[id], beta, ts, us, true)
	av := g.dbz("riders", "u", g.riderRow[id], alpha, ts, us, true)
	av["source"].(map[string]any)["lsn"] = bv["source"].(map[string]any)["lsn"]
	g.emit(TopicRiders, g.rec(key, bv, ts))
	g.emit(TopicRiders, g.rec(key, av, ts))
	g.riderRow[id] = beta

	// Two rows of one vehicle with the same version naming two drivers:
	// the claim of the greater driver id wins, whatever the arrival order.
	var live []string
	for _, d := range g.drivers {
		if g.driverRow[d] != nil && len(live) < 2 {
			live = append(live, d)
		}
	}
	if v := g.vehicles[1]; len(live) == 2 {
		if g.vehicleRow[v] == nil {
			g.vehicleStep(v)
		}
		ts, _ = g.tx()
		lo, hi := clone(g.vehicleRow[v]), clone(g.vehicleRow[v])
		lo["driver_id"], hi["driver_id"] = min(live[0], live[1]), max(live[0], live[1])
		lo["owner_since"], hi["owner_since"] = rfc(ts), rfc(ts)
		hv := g.flat(hi, "u", false, ts)
		lv := g.flat(lo, "u", false, ts)
		lv["__lsn"] = hv["__lsn"]
		g.emit(TopicVehicles, g.rec(map[string]any{"vehicle_id": v}, hv, ts))
		g.emit(TopicVehicles, g.rec(map[string]any{"vehicle_id": v}, lv, ts))
		g.vehicleRow[v] = hi
	}

	// Wrong-typed keys, events that lost their op, values that are not JSON.
	ts, us = g.tx()
	twelve := g.rec(map[string]any{"rider_id": "twelve"}, g.dbz("riders", "c", nil, map[string]any{"rider_id": "twelve", "name": "Bad", "tier": "basic", "signup_day": "2026-01-01"}, ts, us, true), ts)
	twelve.Headers = map[string]string{ExpectHeader: "dead_letter:wrong_type"}
	g.emit(TopicRiders, twelve)
	noOp := g.dbz("riders", "c", nil, map[string]any{"rider_id": int64(4040), "name": "NoOp", "tier": "basic", "signup_day": "2026-01-01"}, ts, us, true)
	delete(noOp, "op")
	r := g.rec(map[string]any{"rider_id": 4040}, noOp, ts)
	r.Headers = map[string]string{ExpectHeader: "dead_letter:missing_field"}
	g.emit(TopicRiders, r)
	g.emit(TopicRiders, Record{Key: raw(map[string]any{"rider_id": 4041}), Value: raw(`{"before":null,"after":{"rider_id":4041,"name":"Trunc`), ValueEncoding: "utf8", Timestamp: rfc(ts), Headers: map[string]string{ExpectHeader: "dead_letter:malformed_json"}})
	dnum := g.rec(map[string]any{"driver_id": 12}, g.dbz("drivers", "c", nil, map[string]any{"driver_id": 12, "name": "Num", "rating_x10": 40, "active": true}, ts, us, false), ts)
	dnum.Headers = map[string]string{ExpectHeader: "dead_letter:wrong_type"}
	g.emit(TopicDrivers, dnum)
	vbad := g.rec(map[string]any{"vehicle_id": "not-a-uuid"}, g.flat(map[string]any{"vehicle_id": "not-a-uuid", "driver_id": g.drivers[0], "plate": "x", "model": "x", "seats": 4, "owner_since": rfc(ts)}, "c", false, ts), ts)
	vbad.Headers = map[string]string{ExpectHeader: "dead_letter:wrong_type"}
	g.emit(TopicVehicles, vbad)
	tbad := g.rec(map[string]any{"trip_id": "twelve"}, g.dbz("trips", "c", nil, map[string]any{"trip_id": "twelve", "rider_id": g.riders[1], "status": "requested", "fare_cents": 100, "requested_at": rfc(ts)}, ts, us, false), ts)
	tbad.Headers = map[string]string{ExpectHeader: "dead_letter:wrong_type"}
	g.emit(TopicTrips, tbad)
	// A trip without a rider: the booked_by edge has no id, so the whole
	// event is non_conforming and the trip is not written.
	tnull := g.rec(map[string]any{"trip_id": TripNoRider}, g.dbz("trips", "c", nil, map[string]any{"trip_id": TripNoRider, "rider_id": nil, "driver_id": nil, "status": "requested", "fare_cents": 100, "requested_at": rfc(ts)}, ts, us, false), ts)
	tnull.Headers = map[string]string{ExpectHeader: "dead_letter:non_conforming"}
	g.emit(TopicTrips, tnull)
	// A TRUNCATE: no rule maps it (the graph has no "delete every trip").
	trunc := g.dbz("trips", "t", nil, nil, ts, us, false)
	g.emit(TopicTrips, Record{Key: json.RawMessage("null"), Value: raw(trunc), Timestamp: rfc(ts), Headers: map[string]string{ExpectHeader: "dead_letter:unknown_entity"}})

	// Ownership transfer without a before image, then the previous owner's
	// row replayed (older version: it must not take the vehicle back).
	v := g.vehicles[0]
	if g.vehicleRow[v] == nil {
		g.vehicleStep(v)
	}
	old := g.hist[TopicVehicles+"|"+v]
	row := clone(g.vehicleRow[v])
	ts, _ = g.tx()
	row["driver_id"] = SpecialDrivers[0]
	row["owner_since"] = rfc(ts)
	tr := g.rec(map[string]any{"vehicle_id": v}, g.flat(row, "u", false, ts), ts)
	g.emit(TopicVehicles, tr)
	g.vehicleRow[v] = row
	for _, o := range old {
		g.emit(TopicVehicles, o)
	}

	// Multi-update transactions redelivered in reverse order.
	for _, b := range g.txBatches {
		if g.r.Intn(3) == 0 || len(g.txBatches) < 4 {
			for i := len(b) - 1; i >= 0; i-- {
				g.emit(TopicTrips, b[i])
			}
		}
	}
	// Replays of old events of keys deleted at least once (some re-inserted).
	var keys []string
	for k := range g.deleted {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		hs := g.hist[k]
		topic := k[:strings.IndexByte(k, '|')]
		for _, h := range hs {
			if g.r.Intn(2) == 0 {
				g.emit(topic, h)
			}
		}
	}
	// Random redeliveries of anything.
	for _, t := range []string{TopicRiders, TopicDrivers, TopicVehicles, TopicTrips} {
		rs := g.out[t]
		n := len(rs) / 20
		for i := 0; i < n; i++ {
			g.emit(t, rs[g.r.Intn(len(rs))])
		}
	}
}
