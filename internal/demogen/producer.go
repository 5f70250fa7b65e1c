package demogen

import (
	"fmt"

	"github.com/IBM/sarama"

	"github.com/rtgraph/rtgraph/ingest"
	"github.com/rtgraph/rtgraph/internal/produce"
)

// NewProducer returns the producer the generator is meant to publish
// through: idempotent, acknowledged by all in-sync replicas, partitioned
// like the Java client (so a row's changes share a partition as they would
// from Debezium), speaking k's protocol version (at least 4.0). The caller
// closes it after Run has returned.
func NewProducer(k ingest.KafkaConfig) (sarama.SyncProducer, error) {
	sc, err := produce.ProducerConfig(k)
	if err != nil {
		return nil, err
	}
	p, err := sarama.NewSyncProducer(k.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("demogen: connect to %v: %w", k.Brokers, err)
	}
	return p, nil
}
