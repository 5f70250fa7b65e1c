package demogen

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/ingest"
	"github.com/rtgraph/rtgraph/internal/broker"
)

// readTopics reads every record of the topics from the oldest offset to the
// high watermark.
func readTopics(t *testing.T, k ingest.KafkaConfig, topics []string) map[string][]*sarama.ConsumerMessage {
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
	out := map[string][]*sarama.ConsumerMessage{}
	for _, topic := range topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			t.Fatal(err)
		}
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
				out[topic] = append(out[topic], m)
				if m.Offset == hw-1 {
					break
				}
			}
			pc.AsyncClose()
			for range pc.Messages() {
			}
		}
	}
	return out
}

// TestRunAgainstBrokerAndRestart runs the generator against the embedded
// broker through the real producer, stops it, starts a new generator and a
// new broker on the same directories, and checks what is on the topics:
// exactly what Stats counted, the metadata once, no request id twice, and
// the records of both runs consistent as one history.
func TestRunAgainstBrokerAndRestart(t *testing.T) {
	dir := t.TempDir()
	bcfg := broker.DefaultConfig()
	bcfg.Addr = "127.0.0.1:0"
	bcfg.Dir = filepath.Join(dir, "kafka")
	bcfg.Topics = append(EventTopics(), "rtgraph.dlq")
	bcfg.CompactedTopics = MetadataTopics()
	all := append(EventTopics(), MetadataTopics()...)

	cfg := testConfig(nil)
	cfg.Clock = DefaultConfig().Clock
	cfg.Rate = 4000
	cfg.StateFile = filepath.Join(dir, "demogen.json")

	var total Stats
	runOnce := func(want uint64) {
		b, err := broker.Start(t.Context(), bcfg, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		k := ingest.DefaultKafkaConfig()
		k.Brokers = b.Addrs()
		p, err := NewProducer(k)
		if err != nil {
			t.Fatal(err)
		}
		g, err := New(cfg, p, quietLog(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		runUntil(t, g, want)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		s := g.Stats()
		total.Records += s.Records
		total.ByKind = mergeCounts(total.ByKind, s.ByKind)
		total.ByTopic = mergeCounts(total.ByTopic, s.ByTopic)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	runOnce(800)
	runOnce(800)

	b, err := broker.Start(t.Context(), bcfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	k := ingest.DefaultKafkaConfig()
	k.Brokers = b.Addrs()
	got := readTopics(t, k, all)
	for _, topic := range all {
		if uint64(len(got[topic])) != total.ByTopic[topic] {
			t.Errorf("%s holds %d records, the generators counted %d", topic, len(got[topic]), total.ByTopic[topic])
		}
	}
	if n := total.ByTopic[TopicTitles]; n < uint64(cfg.Titles) || n > uint64(2*cfg.Titles) {
		t.Errorf("%d title documents: the catalogue of %d was published more than once", n, cfg.Titles)
	}
	ids := map[string]bool{}
	for _, topic := range []string{TopicLogin, TopicTitlePage, TopicPlayback, TopicAds} {
		for _, m := range got[topic] {
			var v struct {
				RequestID string `json:"request_id"`
			}
			if json.Unmarshal(m.Value, &v) != nil || v.RequestID == "" {
				continue // a malformed one
			}
			if ids[v.RequestID] {
				t.Fatalf("request id %s published twice", v.RequestID)
			}
			ids[v.RequestID] = true
		}
	}
	if len(ids) == 0 {
		t.Fatal("no request logs published")
	}
}

func mergeCounts(into, from map[string]uint64) map[string]uint64 {
	if into == nil {
		into = map[string]uint64{}
	}
	for k, v := range from {
		into[k] += v
	}
	return into
}
