package produce

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/rtgraph/rtgraph/ingest"
	"github.com/rtgraph/rtgraph/internal/testenv"
	"github.com/rtgraph/rtgraph/schemas/demo"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sarama's metrics registry starts one meter ticker shared by all clients, for good.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rec is a Record in comparable form.
type rec struct {
	line           int
	key, value, ts string
	headers        string
}

func scanAll(path string, f Format) ([]rec, error) {
	var out []rec
	err := scanFile(path, f, func(r Record) error {
		x := rec{line: r.Line, key: string(r.Key), value: string(r.Value)}
		if r.Key == nil {
			x.key = "<nil>"
		}
		if r.Value == nil {
			x.value = "<nil>"
		}
		if !r.Timestamp.IsZero() {
			x.ts = r.Timestamp.UTC().Format(time.RFC3339Nano)
		}
		if len(r.Headers) > 0 {
			hs := map[string]string{}
			for _, h := range r.Headers {
				hs[string(h.Key)] = string(h.Value)
			}
			x.headers = fmt.Sprint(hs)
		}
		out = append(out, x)
		return nil
	})
	return out, err
}

func TestScan(t *testing.T) {
	tests := []struct {
		name    string
		format  Format
		content string
		want    []rec
	}{
		{"jsonl values", FormatAuto, "{\"a\":1}\n\n  {\"b\": [1, 2]}  \n\"text\"\n",
			[]rec{{line: 1, key: "<nil>", value: `{"a":1}`}, {line: 3, key: "<nil>", value: `{"b":[1,2]}`}, {line: 4, key: "<nil>", value: `"text"`}}},
		{"jsonl records", FormatAuto,
			`{"key":"t-1","value":{"name":"x"},"timestamp":"2026-11-25T08:00:00.5Z"}` + "\n" +
				`{"key":{"id":7},"value":null}` + "\n" +
				`{"key":null,"value":{"n":1},"headers":{"h":"v"}}` + "\n" +
				`{"value":3}` + "\n",
			[]rec{
				{line: 1, key: "t-1", value: `{"name":"x"}`, ts: "2026-11-25T08:00:00.5Z"},
				{line: 2, key: `{"id":7}`, value: "<nil>"},
				{line: 3, key: "<nil>", value: `{"n":1}`, headers: "map[h:v]"},
				{line: 4, key: "<nil>", value: "3"},
			}},
		{"auto: other keys make a value", FormatAuto, `{"value":1,"op":"c"}` + "\n",
			[]rec{{line: 1, key: "<nil>", value: `{"value":1,"op":"c"}`}}},
		{"values forces values", FormatValues, `{"key":"k","value":1}` + "\n",
			[]rec{{line: 1, key: "<nil>", value: `{"key":"k","value":1}`}}},
		{"array pretty-printed", FormatAuto, "\n [\n  {\"key\": \"a\",\n   \"value\": {\"x\": 1}},\n\n  {\"y\": 2}, 3\n]\n",
			[]rec{{line: 3, key: "a", value: `{"x":1}`}, {line: 6, key: "<nil>", value: `{"y":2}`}, {line: 6, key: "<nil>", value: "3"}}},
		{"empty array", FormatAuto, "[]", nil},
		{"empty file", FormatAuto, "", nil},
		{"lines sends text as is", FormatLines, "{\"truncated\":\n[not json\n\n  {\"ok\":1}\n",
			[]rec{{line: 1, key: "<nil>", value: `{"truncated":`}, {line: 2, key: "<nil>", value: `[not json`}, {line: 4, key: "<nil>", value: `{"ok":1}`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanAll(writeFile(t, tt.content), tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("records:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestScanErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name     string
		format   Format
		content  string
		line     int
		contains string
	}{
		{"bad json", FormatAuto, "{\"a\":1}\n{\"a\":2}\n{\"a\":\n", 3, "not JSON"},
		{"null value without key", FormatAuto, "{\"a\":1}\nnull\n", 2, "needs a key"},
		{"tombstone without key", FormatAuto, `{"value":null}` + "\n", 1, "needs a key"},
		{"records: not an object", FormatRecords, `{"key":"k","value":1}` + "\n[1]\n", 2, "not a record object"},
		{"records: unknown field", FormatRecords, `{"key":"k","value":1,"shard":3}` + "\n", 1, `unknown field "shard"`},
		{"records: no value", FormatRecords, `{"key":"k"}` + "\n", 1, `without "value"`},
		{"bad timestamp", FormatAuto, "\n" + `{"key":"k","value":1,"timestamp":"yesterday"}` + "\n", 2, "timestamp"},
		{"numeric timestamp", FormatAuto, `{"key":"k","value":1,"timestamp":17}` + "\n", 1, "timestamp"},
		{"headers not strings", FormatAuto, `{"value":1,"headers":{"h":1}}` + "\n", 1, "headers"},
		{"array element", FormatAuto, "[\n {\"a\":1},\n {\"key\":\"k\",\n  \"value\":null, \"timestamp\":\"no\"}\n]", 3, "timestamp"},
		{"array syntax", FormatAuto, "[\n {\"a\":1},\n {\"a\":\n]", 3, ""},
		{"data after array", FormatAuto, "[1]\n[2]\n", 2, "after the array"},
		{"unterminated array", FormatAuto, "[1,\n2\n", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			_, err := scanAll(path, tt.format)
			var le *LineError
			if !errors.As(err, &le) || !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error = %v, want a *LineError", err)
			}
			if le.Line != tt.line || le.File != path {
				t.Fatalf("error names %s:%d, want %s:%d (%v)", le.File, le.Line, path, tt.line, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%s:%d: ", path, tt.line)) || !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("error %q does not say %s:%d and %q", err, path, tt.line, tt.contains)
			}
		})
	}
}

func TestScanLineTooLong(t *testing.T) {
	long := `{"v":"` + strings.Repeat("x", MaxLineBytes) + `"}`
	_, err := scanAll(writeFile(t, "{\"a\":1}\n"+long+"\n"), FormatAuto)
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("error = %v, want line 2 longer than the limit", err)
	}
}

func TestScanBadInput(t *testing.T) {
	if _, err := scanAll(writeFile(t, "{}"), "csv"); !errors.Is(err, ErrBadFormat) {
		t.Fatalf("format csv: %v, want ErrBadFormat", err)
	}
	if _, err := scanAll(filepath.Join(t.TempDir(), "missing.jsonl"), FormatAuto); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want os.ErrNotExist", err)
	}
}

// failingSender acknowledges every message except those on failLines.
type failingSender struct {
	failLines map[int]bool
	sent      []int
}

func (f *failingSender) SendMessages(msgs []*sarama.ProducerMessage) error {
	var errs sarama.ProducerErrors
	for _, m := range msgs {
		if f.failLines[m.Metadata.(routing).line] {
			errs = append(errs, &sarama.ProducerError{Msg: m, Err: sarama.ErrMessageSizeTooLarge})
			continue
		}
		f.sent = append(f.sent, m.Metadata.(routing).line)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func TestSendFailureCountsAcknowledgedPrefix(t *testing.T) {
	var lines []string
	for i := range 1200 { // three batches: the failure is in the third
		lines = append(lines, fmt.Sprintf(`{"n":%d}`, i))
	}
	path := writeFile(t, strings.Join(lines, "\n"))
	s := &failingSender{failLines: map[int]bool{1003: true, 1100: true}}
	n, err := send(t.Context(), s, "t", path, FormatAuto)
	if !errors.Is(err, ErrSend) || !strings.Contains(err.Error(), fmt.Sprintf("%s:1003: ", path)) {
		t.Fatalf("send error = %v, want ErrSend naming line 1003", err)
	}
	if n != 1002 {
		t.Fatalf("sent = %d, want 1002 (the records before line 1003)", n)
	}
}

func TestSendHonoursCancel(t *testing.T) {
	path := writeFile(t, "1\n2\n")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := &failingSender{}
	if n, err := send(ctx, s, "t", path, FormatAuto); !errors.Is(err, context.Canceled) || n != 0 || len(s.sent) != 0 {
		t.Fatalf("send after cancel = %d, %v (sent %v), want 0, context.Canceled", n, err, s.sent)
	}
}

func newKfake(t *testing.T, topics ...string) ingest.KafkaConfig {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	k := ingest.DefaultKafkaConfig()
	k.Brokers = c.ListenAddrs()
	return k
}

// consumed is one record read back.
type consumed struct {
	key, value string
	tombstone  bool
	nilKey     bool
	ts         time.Time
	headers    []*sarama.RecordHeader
}

// readTopic reads every record of topic, partition by partition.
func readTopic(t *testing.T, k ingest.KafkaConfig, topic string) map[int32][]consumed {
	t.Helper()
	sc, err := k.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(k.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32][]consumed{}
	for _, p := range parts {
		hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hw == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			out[p] = append(out[p], consumed{key: string(m.Key), value: string(m.Value), tombstone: m.Value == nil,
				nilKey: m.Key == nil, ts: m.Timestamp, headers: m.Headers})
			if m.Offset == hw-1 {
				break
			}
		}
		pc.AsyncClose()
		for range pc.Messages() {
		}
	}
	return out
}

// TestFileSendsSamples publishes a samples file and reads back every line:
// keys, values, tombstones and timestamps as demo.Samples reads them, and
// every key's records in file order on one partition.
func TestFileSendsSamples(t *testing.T) {
	const topic = "streaming.public.accounts"
	k := newKfake(t, topic)
	path := filepath.Join("..", "..", "verticals", "streaming", "samples", topic+".jsonl")
	n, err := File(t.Context(), k, topic, path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := demo.Samples(topic)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("File sent %d records, the file has %d", n, len(want))
	}
	byKey := map[string][]consumed{}
	total := 0
	for _, recs := range readTopic(t, k, topic) {
		for _, r := range recs {
			byKey[r.key] = append(byKey[r.key], r)
			total++
		}
	}
	if total != len(want) {
		t.Fatalf("topic holds %d records, want %d", total, len(want))
	}
	next := map[string]int{}
	for i, w := range want {
		got := byKey[string(w.Key)]
		j := next[string(w.Key)]
		if j >= len(got) {
			t.Fatalf("sample %d (key %s) not on the topic", i+1, w.Key)
		}
		next[string(w.Key)]++
		g := got[j]
		if g.value != string(w.Value) || g.tombstone != (w.Value == nil) || !g.ts.Equal(w.Timestamp) {
			t.Fatalf("sample %d (key %s): got value %q tombstone %v at %v, want %q at %v",
				i+1, w.Key, g.value, g.tombstone, g.ts, w.Value, w.Timestamp)
		}
	}
}

func TestFileBadLineSendsNothing(t *testing.T) {
	const topic = "events"
	k := newKfake(t, topic)
	path := writeFile(t, "{\"a\":1}\n{\"a\":2}\n{\"a\":3\n{\"a\":4}\n")
	n, err := File(t.Context(), k, topic, path)
	var le *LineError
	if !errors.As(err, &le) || le.Line != 3 {
		t.Fatalf("File = %d, %v; want a *LineError on line 3", n, err)
	}
	if n != 0 {
		t.Fatalf("File reported %d sent for a bad file", n)
	}
	if got := readTopic(t, k, topic); len(got) != 0 {
		t.Fatalf("a bad file published %v", got)
	}
}

func TestFileLinesFormatSendsMalformed(t *testing.T) {
	const topic = "events"
	k := newKfake(t, topic)
	path := writeFile(t, "{\"request_id\":\n{\"ok\":true}\n")
	n, err := FileWith(t.Context(), k, topic, path, Options{Format: FormatLines})
	if err != nil || n != 2 {
		t.Fatalf("FileWith lines = %d, %v; want 2, nil", n, err)
	}
	var values []string
	for _, recs := range readTopic(t, k, topic) {
		for _, r := range recs {
			values = append(values, r.value)
		}
	}
	slices.Sort(values)
	if want := []string{`{"ok":true}`, `{"request_id":`}; !slices.Equal(values, want) {
		t.Fatalf("values = %q, want %q", values, want)
	}
}

func TestFileRefusesBadArguments(t *testing.T) {
	k := ingest.DefaultKafkaConfig()
	path := writeFile(t, "{}\n")
	if _, err := File(t.Context(), k, "", path); !errors.Is(err, ErrSend) {
		t.Fatalf("no topic: %v, want ErrSend", err)
	}
	bad := k
	bad.Brokers = nil
	if _, err := File(t.Context(), bad, "t", path); err == nil || !strings.Contains(err.Error(), "kafka.brokers") {
		t.Fatalf("no brokers: %v, want the kafka.brokers error", err)
	}
}

// TestFileRealKafka publishes a samples file to the real broker.
func TestFileRealKafka(t *testing.T) {
	k := ingest.DefaultKafkaConfig()
	k.Brokers = []string{testenv.Kafka(t)}
	sc, err := k.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin(k.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topic := fmt.Sprintf("rtgraph-produce-test-%d", time.Now().UnixNano())
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.DeleteTopic(topic) })

	path := filepath.Join("..", "..", "verticals", "streaming", "samples", "streaming.public.profiles.jsonl")
	want, err := demo.Samples("streaming.public.profiles")
	if err != nil {
		t.Fatal(err)
	}
	n, err := File(t.Context(), k, topic, path)
	if err != nil || n != len(want) {
		t.Fatalf("File = %d, %v; want %d, nil", n, err, len(want))
	}
	var got, wantValues []string
	for _, recs := range readTopic(t, k, topic) {
		for _, r := range recs {
			got = append(got, r.key+" "+r.value)
		}
	}
	for _, w := range want {
		wantValues = append(wantValues, string(w.Key)+" "+string(w.Value))
	}
	slices.Sort(got)
	slices.Sort(wantValues)
	if !slices.Equal(got, wantValues) {
		t.Fatalf("records on %s:\n got %q\nwant %q", topic, got, wantValues)
	}
}

// TestFileByteExact publishes records that are not JSON, binary, keyless,
// tombstones, with repeated and binary headers, to chosen partitions, into
// a topic it creates with a config, and reads every byte back.
func TestFileByteExact(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := ingest.DefaultKafkaConfig()
	k.Brokers = c.ListenAddrs()
	big := strings.Repeat("x", 3<<20)
	lines := []string{
		`{"key":"k1","value":"{\"id\":1,\"trunc","value_encoding":"utf8","partition":2}`,
		`{"key":null,"value":"3q2+7wABAg==","value_encoding":"base64","partition":2}`,
		`{"key":"AAEC/w==","key_encoding":"base64","value":{"a":1},"partition":2,"headers":[{"key":"h","value":"1"},{"key":"h","value":"2"},{"key":"n","value":null}]}`,
		`{"key":"k2","value":null,"partition":2,"headers":{"bin":"AP8="},"headers_encoding":"base64"}`,
		`{"key":"k3","value":"","value_encoding":"utf8","partition":2}`,
		`{"key":"big","value":"` + big + `","value_encoding":"utf8","partition":2}`,
		`{"key":"ünï/%2F#","value":1,"partition_key":"p"}`,
	}
	path := writeFile(t, strings.Join(lines, "\n"))
	opts := Options{MaxMessageBytes: 4 << 20, Create: &TopicSpec{Partitions: 3, Configs: map[string]string{"max.message.bytes": "5242880"}}}

	tight := opts
	tight.MaxMessageBytes = 1 << 20
	if _, err := FileWith(t.Context(), k, "exact", path, tight); !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), ":6: record of") {
		t.Fatalf("a record over --max-message-bytes: %v, want a LineError for line 6", err)
	}
	n, err := FileWith(t.Context(), k, "exact", path, opts)
	if err != nil || n != len(lines) {
		t.Fatalf("FileWith = %d, %v", n, err)
	}
	admin, err := sarama.NewClusterAdmin(k.Brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	rs, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: "exact", ConfigNames: []string{"max.message.bytes"}}},
		sarama.DescribeConfigsOptions{})
	if err != nil || len(rs) != 1 || len(rs[0].Configs) != 1 || rs[0].Configs[0].Value != "5242880" {
		t.Fatalf("topic config = %+v, %v", rs, err)
	}
	got := readTopic(t, k, "exact")
	var p2 []consumed
	for _, r := range got[2] {
		if r.key != "ünï/%2F#" {
			p2 = append(p2, r)
		}
	}
	if len(p2) != 6 {
		t.Fatalf("partition 2 holds %d records, want 6", len(p2))
	}
	if p2[0].value != `{"id":1,"trunc` || p2[0].key != "k1" {
		t.Errorf("utf8 value = %q", p2[0].value)
	}
	if p2[1].value != "\xde\xad\xbe\xef\x00\x01\x02" || !p2[1].nilKey {
		t.Errorf("base64 value = %q, nil key %v", p2[1].value, p2[1].nilKey)
	}
	if p2[2].key != "\x00\x01\x02\xff" || p2[2].value != `{"a":1}` || len(p2[2].headers) != 3 ||
		string(p2[2].headers[0].Value) != "1" || string(p2[2].headers[1].Value) != "2" || p2[2].headers[2].Value != nil {
		t.Errorf("record 3 = key %q value %q headers %v", p2[2].key, p2[2].value, p2[2].headers)
	}
	if !p2[3].tombstone || len(p2[3].headers) != 1 || string(p2[3].headers[0].Value) != "\x00\xff" {
		t.Errorf("tombstone = %+v", p2[3])
	}
	if p2[4].tombstone || p2[4].value != "" {
		t.Errorf("empty value = %+v", p2[4])
	}
	if p2[5].value != big {
		t.Errorf("3 MiB value: %d bytes back", len(p2[5].value))
	}
	want, _ := newRecordPartitioner("exact").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder("p")}, 3)
	if len(got[want]) == 0 || got[want][len(got[want])-1].key != "ünï/%2F#" {
		t.Errorf("partition_key p: record not on partition %d: %v", want, got)
	}
}
