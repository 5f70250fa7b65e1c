package demogen

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	records      *prometheus.CounterVec
	malformed    *prometheus.CounterVec
	sendFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, errors.New("demogen: no metrics registerer")
	}
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_demogen_records_total",
			Help: "Records the demo generator published and the broker acknowledged, by topic and kind (snapshot, insert, update, delete, tombstone, request, impression, metadata, malformed).",
		}, []string{"topic", "kind"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_demogen_malformed_total",
			Help: "Malformed records the demo generator published on purpose, by the decode error class they must get.",
		}, []string{"class"}),
		sendFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_demogen_send_failures_total",
			Help: "Publish attempts of the demo generator that failed (each is retried).",
		}),
	}
	for _, c := range []prometheus.Collector{m.records, m.malformed, m.sendFailures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
