package enrich

import (
	"testing"

	"github.com/IBM/sarama"
)

func batch(first int64, n int, opts ...func(*sarama.RecordBatch)) *sarama.Records {
	b := &sarama.RecordBatch{FirstOffset: first, LastOffsetDelta: int32(n - 1)}
	for i := range n {
		b.Records = append(b.Records, &sarama.Record{OffsetDelta: int64(i)})
	}
	for _, o := range opts {
		o(b)
	}
	return &sarama.Records{RecordBatch: b}
}

func control(pid int64) func(*sarama.RecordBatch) {
	return func(b *sarama.RecordBatch) { b.Control, b.ProducerID, b.IsTransactional = true, pid, true }
}

func txn(pid int64) func(*sarama.RecordBatch) {
	return func(b *sarama.RecordBatch) { b.ProducerID, b.IsTransactional = pid, true }
}

// TestDeliverableBelow covers what the load probe counts as a record still
// to be delivered below the start watermark.
func TestDeliverableBelow(t *testing.T) {
	tests := []struct {
		name     string
		block    *sarama.FetchResponseBlock
		from, hw int64
		pending  bool
		last     int64
	}{
		{"nothing fetched", &sarama.FetchResponseBlock{}, 5, 10, false, 4},
		{"only a commit marker", &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{batch(9, 1, control(7))}}, 9, 10, false, 9},
		{"data before the watermark", &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{batch(5, 3)}}, 5, 10, true, 4},
		{"data only at or past the watermark", &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{batch(3, 2), batch(10, 2)}}, 5, 10, false, 11},
		{"aborted transaction then its marker", &sarama.FetchResponseBlock{
			AbortedTransactions: []*sarama.AbortedTransaction{{ProducerID: 7, FirstOffset: 5}},
			RecordsSet:          []*sarama.Records{batch(5, 2, txn(7)), batch(7, 1, control(7))},
		}, 5, 8, false, 7},
		{"committed transaction is data", &sarama.FetchResponseBlock{
			RecordsSet: []*sarama.Records{batch(5, 2, txn(7)), batch(7, 1, control(7))},
		}, 5, 8, true, 4},
		{"later transaction of an aborting producer is data", &sarama.FetchResponseBlock{
			AbortedTransactions: []*sarama.AbortedTransaction{{ProducerID: 7, FirstOffset: 5}},
			RecordsSet:          []*sarama.Records{batch(5, 1, txn(7)), batch(6, 1, control(7)), batch(7, 1, txn(7))},
		}, 5, 9, true, 6},
		{"partial trailing batch", &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{batch(5, 1, control(1)), {RecordBatch: &sarama.RecordBatch{FirstOffset: 6, PartialTrailingRecord: true}}}}, 5, 10, true, 5},
		{"legacy message set", &sarama.FetchResponseBlock{RecordsSet: []*sarama.Records{{MsgSet: &sarama.MessageSet{Messages: []*sarama.MessageBlock{{Offset: 6}}}}}}, 5, 10, true, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pending, last := deliverableBelow(tt.block, tt.from, tt.hw)
			if pending != tt.pending || last != tt.last {
				t.Errorf("got pending %v last %d; want %v %d", pending, last, tt.pending, tt.last)
			}
		})
	}
}
