package demogen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/normalize"
	"github.com/rtgraph/rtgraph/schemas/demo"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		field  string // empty: valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"rate 0", func(c *Config) { c.Rate = 0 }, ""},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "demogen.rate"},
		{"huge rate", func(c *Config) { c.Rate = 2e6 }, "demogen.rate"},
		{"no checkpoint interval", func(c *Config) { c.CheckpointInterval = 0 }, "demogen.checkpoint_interval"},
		{"no accounts", func(c *Config) { c.Accounts = 0 }, "demogen.accounts"},
		{"too many accounts", func(c *Config) { c.Accounts = maxAccounts + 1 }, "demogen.accounts"},
		{"negative anonymous users", func(c *Config) { c.AnonymousUsers = -1 }, "demogen.anonymous_users"},
		{"no titles", func(c *Config) { c.Titles = 0 }, "demogen.titles"},
		{"no campaigns", func(c *Config) { c.Campaigns = 0 }, "demogen.campaigns"},
		{"malformed share too high", func(c *Config) { c.MalformedShare = 0.6 }, "demogen.malformed_share"},
		{"no clock", func(c *Config) { c.Clock = nil }, "demogen.clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig naming %s", err, tt.field)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	bad := testConfig(time.Now)
	bad.Accounts = 0
	if _, err := New(bad, &capture{}, quietLog(), prometheus.NewRegistry()); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("invalid config: %v", err)
	}
	if _, err := New(testConfig(time.Now), &capture{}, quietLog(), nil); err == nil {
		t.Fatal("New accepted a nil registerer")
	}
	reg := prometheus.NewRegistry()
	newGen(t, testConfig(time.Now), &capture{})
	if _, err := New(testConfig(time.Now), &capture{}, quietLog(), reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(testConfig(time.Now), &capture{}, quietLog(), reg); err == nil {
		t.Fatal("a second generator registered the same metrics on one registry")
	}
}

func TestTopicsAreTheVertical(t *testing.T) {
	v, err := demo.Load()
	if err != nil {
		t.Fatal(err)
	}
	var topics, meta []string
	for _, tp := range v.Topics {
		topics = append(topics, tp.Topic)
	}
	for _, c := range v.Enrich.Caches {
		meta = append(meta, c.Topic)
	}
	if !slices.Equal(EventTopics(), topics) {
		t.Fatalf("EventTopics = %v, vertical.yaml has %v", EventTopics(), topics)
	}
	if !slices.Equal(MetadataTopics(), meta) {
		t.Fatalf("MetadataTopics = %v, vertical.yaml has %v", MetadataTopics(), meta)
	}
}

func TestDecimalBase64(t *testing.T) {
	tests := []struct {
		cents int64
		want  string
	}{
		{1349, "BUU="}, {799, "Ax8="}, {1999, "B88="}, // the subscriptions sample
		{0, "AA=="}, {127, "fw=="}, {128, "AIA="}, {-1, "/w=="}, {-129, "/38="}, {1_039_870, "D93+"},
	}
	for _, tt := range tests {
		if got := decimalBase64(tt.cents); got != tt.want {
			t.Errorf("decimalBase64(%d) = %s, want %s", tt.cents, got, tt.want)
		}
	}
}

// TestRecordsDecode decodes everything a generator makes with the demo
// vertical's own decoders: well-formed records decode to valid envelopes,
// malformed ones fail with the class they were made for, metadata decodes
// as enrichment documents.
func TestRecordsDecode(t *testing.T) {
	clock := newClock(testStart, 3*time.Millisecond)
	cap := &capture{}
	g := newGen(t, testConfig(clock.Now), cap)
	if err := g.SeedMetadata(t.Context()); err != nil {
		t.Fatal(err)
	}
	var recs []record
	for _, m := range cap.records() {
		recs = append(recs, fromSarama(t, m))
	}
	const n = 15000
	recs = append(recs, steps(t, g, n)...)

	decs := decoders(t)
	kinds := map[string]int{}
	classes := map[normalize.ErrorClass]int{}
	topics := map[string]int{}
	malformed := 0
	for i, r := range recs {
		kinds[r.kind]++
		topics[r.topic]++
		if r.topic == TopicTitles || r.topic == TopicCampaigns {
			if _, err := enrich.DecodeDocument(r.value, 0); err != nil {
				t.Fatalf("record %d (%s %s): %v", i, r.topic, r.key, err)
			}
			continue
		}
		envs, err := decs[r.topic].Decode(message(r, int64(i)))
		if r.kind == kindMalformed {
			malformed++
			if got := normalize.ClassOf(err); got != r.class {
				t.Fatalf("malformed record %d on %s decoded with class %q (%v), want %q:\n%s", i, r.topic, got, err, r.class, r.value)
			}
			classes[r.class]++
			continue
		}
		if err != nil {
			t.Fatalf("record %d on %s: %v\nkey %s\nvalue %s", i, r.topic, err, r.key, r.value)
		}
		for _, e := range envs {
			if err := e.Validate(); err != nil {
				t.Fatalf("record %d on %s: %v", i, r.topic, err)
			}
			if r.kind == kindTombstone && e.Op != normalize.OpTombstone {
				t.Fatalf("tombstone %d on %s decoded as %s", i, r.topic, e.Op)
			}
		}
	}
	for _, k := range []string{kindSnapshot, kindInsert, kindUpdate, kindDelete, kindTombstone, kindRequest, kindImpression, kindMetadata, kindMalformed} {
		if kinds[k] == 0 {
			t.Errorf("no %s record in %d steps (kinds %v)", k, n, kinds)
		}
	}
	for _, c := range []normalize.ErrorClass{normalize.ClassMalformedJSON, normalize.ClassMissingField, normalize.ClassBadTime, normalize.ClassSchemaViolation} {
		if classes[c] == 0 {
			t.Errorf("no malformed record of class %s (classes %v)", c, classes)
		}
	}
	for _, tp := range append(EventTopics(), MetadataTopics()...) {
		if topics[tp] == 0 {
			t.Errorf("nothing published to %s", tp)
		}
	}
	// About 1%: 15000 steps give 150 expected; the bounds are far outside
	// any plausible deviation of a fixed seed.
	if share := float64(malformed) / float64(n); share < 0.005 || share > 0.02 {
		t.Errorf("malformed share %.4f, want about 0.01", share)
	}
}

// history replays decoded CDC events and checks that they describe a
// consistent database: updates and deletes touch rows that exist, their
// before image is the row as last published, and references point at rows
// that exist when they are written.
type history struct {
	t    *testing.T
	decs map[string]normalize.Decoder
	rows map[string]map[string]map[string]any // topic → key → after image
	ids  map[string][]byte                    // envelope id → value
}

func newHistory(t *testing.T) *history {
	return &history{t: t, decs: decoders(t), rows: map[string]map[string]map[string]any{}, ids: map[string][]byte{}}
}

func (h *history) exists(topic, key string) bool {
	_, ok := h.rows[topic][key]
	return ok
}

func (h *history) apply(recs []record) {
	t := h.t
	t.Helper()
	for i, r := range recs {
		if r.kind == kindMalformed || r.topic == TopicTitles || r.topic == TopicCampaigns {
			continue
		}
		envs, err := h.decs[r.topic].Decode(message(r, int64(i)))
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		for _, e := range envs {
			if prev, ok := h.ids[e.ID]; ok && !bytes.Equal(prev, r.value) {
				t.Fatalf("event id %s published with two contents:\n%s\n%s", e.ID, prev, r.value)
			}
			h.ids[e.ID] = r.value
			h.check(i, r, e)
		}
	}
}

func (h *history) check(i int, r record, e normalize.Envelope) {
	t := h.t
	t.Helper()
	rows := h.rows[r.topic]
	if rows == nil {
		rows = map[string]map[string]any{}
		h.rows[r.topic] = rows
	}
	prev, existed := rows[e.Key]
	switch e.Op {
	case normalize.OpCreate, normalize.OpRead:
		if e.Kind == normalize.KindRequest {
			h.checkRequest(i, r, e)
			return
		}
		if existed {
			t.Fatalf("record %d: %s %s inserted twice", i, r.topic, e.Key)
		}
		h.checkReferences(i, r, e.After)
		rows[e.Key] = e.After
	case normalize.OpUpdate, normalize.OpUpsert:
		if !existed {
			t.Fatalf("record %d: update of %s %s, which does not exist", i, r.topic, e.Key)
		}
		if e.Before != nil && !reflect.DeepEqual(e.Before, prev) {
			t.Fatalf("record %d: before image of %s %s is\n%v\nbut the row was\n%v", i, r.topic, e.Key, e.Before, prev)
		}
		h.checkReferences(i, r, e.After)
		rows[e.Key] = e.After
	case normalize.OpDelete:
		if !existed {
			t.Fatalf("record %d: delete of %s %s, which does not exist", i, r.topic, e.Key)
		}
		img := e.Before
		if img == nil {
			img = e.Attributes
		}
		if r.topic == TopicDevices {
			// The flattened delete carries the row plus its metadata fields.
			img = e.Attributes
		}
		if r.topic != TopicDevices && !reflect.DeepEqual(img, prev) {
			t.Fatalf("record %d: delete image of %s %s is\n%v\nbut the row was\n%v", i, r.topic, e.Key, img, prev)
		}
		delete(rows, e.Key)
	case normalize.OpTombstone:
		if existed {
			t.Fatalf("record %d: tombstone of %s %s, which still exists", i, r.topic, e.Key)
		}
	default:
		t.Fatalf("record %d: op %s", i, e.Op)
	}
}

func idText(v any) string { return fmt.Sprint(v) }

func (h *history) checkReferences(i int, r record, after map[string]any) {
	t := h.t
	t.Helper()
	switch r.topic {
	case TopicProfiles:
		if a := idText(after["account_id"]); !h.exists(TopicAccounts, a) {
			t.Fatalf("record %d: profile %v of account %s, which does not exist", i, after["profile_id"], a)
		}
	case TopicDevices:
		if p, ok := after["profile_id"]; ok && p != nil && !h.exists(TopicProfiles, idText(p)) {
			t.Fatalf("record %d: device %v of profile %v, which does not exist", i, after["device_id"], p)
		}
	case TopicSubscriptions:
		if a := idText(after["account_id"]); !h.exists(TopicAccounts, a) {
			t.Fatalf("record %d: subscription %v of account %s, which does not exist", i, after["subscription_id"], a)
		}
	}
}

func (h *history) checkRequest(i int, r record, e normalize.Envelope) {
	t := h.t
	t.Helper()
	a := e.Attributes
	switch r.topic {
	case TopicLogin:
		if !h.exists(TopicAccounts, idText(a["account_id"])) || !h.exists(TopicDevices, idText(a["device_id"])) {
			t.Fatalf("record %d: login of account %v on device %v: one does not exist", i, a["account_id"], a["device_id"])
		}
	case TopicTitlePage, TopicPlayback:
		if !h.exists(TopicProfiles, idText(a["profile_id"])) {
			t.Fatalf("record %d: %s by profile %v, which does not exist", i, r.topic, a["profile_id"])
		}
	}
}

// TestRowsAreConsistent replays a long sequence and checks it as a database
// would see it.
func TestRowsAreConsistent(t *testing.T) {
	g := newGen(t, testConfig(newClock(testStart, time.Millisecond).Now), &capture{})
	h := newHistory(t)
	h.apply(steps(t, g, 15000))
	// The tables hover around their targets instead of growing or emptying.
	if n := g.st.Accounts.len(); n < 20 || n > 80 {
		t.Errorf("accounts: %d rows, target 40", n)
	}
	if n := g.st.Devices.len(); n < 40 || n > 240 {
		t.Errorf("devices: %d rows, target 120", n)
	}
}

// TestImpressionsJoinTheCampaigns: every impression names a published
// campaign and one of its creatives (the mapping dead-letters an impression
// whose campaign the cache lacks), and users repeat, so caps have counts.
func TestImpressionsJoinTheCampaigns(t *testing.T) {
	cap := &capture{}
	g := newGen(t, testConfig(newClock(testStart, time.Millisecond).Now), cap)
	if err := g.SeedMetadata(t.Context()); err != nil {
		t.Fatal(err)
	}
	creatives := map[string]map[string]bool{}
	recs := steps(t, g, 8000)
	for _, m := range cap.records() {
		recs = append([]record{fromSarama(t, m)}, recs...)
	}
	for _, r := range recs {
		if r.topic != TopicCampaigns {
			continue
		}
		var doc campaignDoc
		if err := json.Unmarshal(r.value, &doc); err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		for id := range doc.Creatives {
			set[id] = true
		}
		if prev, ok := creatives[doc.CampaignID]; ok && !reflect.DeepEqual(prev, set) {
			t.Fatalf("campaign %s changed its creatives across revisions", doc.CampaignID)
		}
		creatives[doc.CampaignID] = set
	}
	perUser := map[string]int{}
	for _, r := range recs {
		if r.topic != TopicAds || r.kind != kindImpression {
			continue
		}
		var imp adImpression
		if err := json.Unmarshal(r.value, &imp); err != nil {
			t.Fatal(err)
		}
		if !creatives[imp.CampaignID][imp.CreativeID] {
			t.Fatalf("impression %s of campaign %s creative %s, which was not published", imp.RequestID, imp.CampaignID, imp.CreativeID)
		}
		perUser[imp.User.ID]++
	}
	most := 0
	for _, n := range perUser {
		most = max(most, n)
	}
	if len(perUser) < 10 || most < 20 {
		t.Fatalf("impressions spread over %d users, at most %d per user: caps would see nothing", len(perUser), most)
	}
}

func TestDeterministic(t *testing.T) {
	run := func(seed uint64) []record {
		cfg := testConfig(newClock(testStart, time.Millisecond).Now)
		cfg.Seed = seed
		return steps(t, newGen(t, cfg, &capture{}), 3000)
	}
	a, b, c := run(7), run(7), run(8)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two generators with one seed and one clock made different records")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("two seeds made the same records")
	}
}

// TestRestartContinues: a generator restarted from its state file carries
// on the same tables (its changes are consistent with what the first one
// published), publishes no metadata again and never reuses an event id
// with other content.
func TestRestartContinues(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "demogen.json")
	cfg := testConfig(newClock(testStart, time.Millisecond).Now)
	cfg.StateFile = stateFile
	cap1 := &capture{}
	g1 := newGen(t, cfg, cap1)
	if err := g1.SeedMetadata(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := steps(t, g1, 5000)
	if err := g1.checkpoint(); err != nil {
		t.Fatal(err)
	}
	// What the first generator would have published next, had it not
	// stopped: the second must make the same rows, under other ids.
	wouldBe := steps(t, g1, 3000)

	// The restart happens later on the clock.
	cfg.Clock = newClock(testStart.Add(time.Hour), time.Millisecond).Now
	cap2 := &capture{}
	g2 := newGen(t, cfg, cap2)
	if err := g2.SeedMetadata(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(cap2.records()); n != 0 {
		t.Fatalf("the restarted generator published %d metadata records again", n)
	}
	second := steps(t, g2, 3000)

	h := newHistory(t)
	h.apply(first)
	h.apply(second)

	if len(second) != len(wouldBe) {
		t.Fatalf("the restart made %d records, the first generator would have made %d", len(second), len(wouldBe))
	}
	for i := range second {
		a, b := second[i], wouldBe[i]
		if a.topic != b.topic || a.kind != b.kind || !bytes.Equal(a.key, b.key) {
			t.Fatalf("record %d after the restart is %s %s %s, would have been %s %s %s", i, a.topic, a.kind, a.key, b.topic, b.kind, b.key)
		}
		if !a.at.After(first[len(first)-1].at) {
			t.Fatalf("record %d after the restart is timed %v, before the last record of the first run", i, a.at)
		}
	}
	requestIDs := func(recs []record) map[string]bool {
		out := map[string]bool{}
		for _, r := range recs {
			if r.kind == kindRequest || r.kind == kindImpression {
				var v struct {
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal(r.value, &v); err != nil {
					t.Fatal(err)
				}
				out[v.RequestID] = true
			}
		}
		return out
	}
	before := requestIDs(first)
	for id := range requestIDs(second) {
		if before[id] {
			t.Fatalf("request id %s used by both runs", id)
		}
	}
}

func TestStateFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path string
	}{
		{"not json", write("garbage.json", "{not json")},
		{"other version", write("v9.json", `{"version":9}`)},
		{"incomplete", write("partial.json", `{"version":1,"seed":1}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(time.Now)
			cfg.StateFile = tt.path
			if _, err := New(cfg, &capture{}, quietLog(), prometheus.NewRegistry()); !errors.Is(err, ErrState) {
				t.Fatalf("New = %v, want ErrState", err)
			}
		})
	}
}

func TestRateZeroPublishesNothing(t *testing.T) {
	cfg := testConfig(time.Now)
	cfg.Rate = 0
	cfg.StateFile = filepath.Join(t.TempDir(), "state.json")
	cap := &capture{}
	g := newGen(t, cfg, cap)
	if err := g.SeedMetadata(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(cap.records()); n != 0 || cap.attempts != 0 {
		t.Fatalf("rate 0 published %d records in %d attempts", n, cap.attempts)
	}
	if _, err := os.Stat(cfg.StateFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("rate 0 wrote its state file (%v)", err)
	}
}

// runUntil runs g until it has had want records acknowledged, then stops it.
func runUntil(t *testing.T, g *Generator, want uint64) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	deadline := time.After(60 * time.Second)
	for g.Stats().Records < want {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("Run returned early: %v", err)
		case <-deadline:
			cancel()
			t.Fatalf("only %d of %d records published", g.Stats().Records, want)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
}

func TestRunRetriesFailedRecords(t *testing.T) {
	cfg := testConfig(time.Now)
	cfg.Rate = 5000
	// The second attempt (the first burst) fails its odd messages once.
	cap := &capture{fail: func(attempt int, msgs []*sarama.ProducerMessage) sarama.ProducerErrors {
		if attempt != 2 {
			return nil
		}
		var errs sarama.ProducerErrors
		for i, m := range msgs {
			if i%2 == 1 {
				errs = append(errs, &sarama.ProducerError{Msg: m, Err: sarama.ErrNotLeaderForPartition})
			}
		}
		return errs
	}}
	g := newGen(t, cfg, cap)
	runUntil(t, g, 1000)
	s := g.Stats()
	if s.SendFailures != 1 {
		t.Fatalf("SendFailures = %d, want 1", s.SendFailures)
	}
	got := cap.records()
	if uint64(len(got)) != s.Records {
		t.Fatalf("producer acknowledged %d records, Stats counts %d", len(got), s.Records)
	}
	var sum uint64
	for _, n := range s.ByKind {
		sum += n
	}
	if sum != s.Records || s.ByKind[kindMalformed] != s.Malformed || s.ByKind[kindMetadata] < uint64(cfg.Titles+cfg.Campaigns) {
		t.Fatalf("inconsistent stats: %+v", s)
	}
	// Every generated record arrived once, whatever the order of retries.
	seen := map[string]int{}
	for _, m := range got {
		r := fromSarama(t, m)
		seen[r.topic+"\x00"+string(r.key)+"\x00"+string(r.value)+"\x00"+r.at.String()]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("record %q acknowledged %d times", k, n)
		}
	}
}

// TestStopWithUnacknowledgedKeepsOldState: a stop while a publish is
// failing does not save a state that claims the failed records went out.
func TestStopWithUnacknowledgedKeepsOldState(t *testing.T) {
	cfg := testConfig(time.Now)
	cfg.Rate = 5000
	cfg.StateFile = filepath.Join(t.TempDir(), "state.json")
	cfg.CheckpointInterval = time.Nanosecond // a checkpoint after every acknowledged burst
	failing := make(chan struct{})
	cap := &capture{fail: func(attempt int, msgs []*sarama.ProducerMessage) sarama.ProducerErrors {
		if attempt < 3 {
			return nil
		}
		if attempt == 3 {
			close(failing)
		}
		var errs sarama.ProducerErrors
		for _, m := range msgs {
			errs = append(errs, &sarama.ProducerError{Msg: m, Err: sarama.ErrOutOfBrokers})
		}
		return errs
	}}
	g := newGen(t, cfg, cap)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	<-failing
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	saved, err := loadState(cfg.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for _, m := range cap.records() {
		last = m.Timestamp
	}
	if got := usTime(saved.LastEventUS); !got.Equal(last) {
		t.Fatalf("saved state ends at %v, the last acknowledged record at %v", got, last)
	}
}
