package ingest

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/IBM/sarama"
	"pgregory.net/rapid"
)

// session feeds recs[start:end] to a fresh worker of partition 0 starting
// at offset start, then ends the partition: revoked (flush and mark) or
// lost (nothing more marked). It returns the offset marked last.
func (h *harness) session(recs []testRecord, start, end int, lost bool) int64 {
	sctx, lose := context.WithCancelCause(context.Background())
	defer lose(nil)
	sess := newFakeSession(sctx)
	claim := newFakeClaim(testTopicName, 0, int64(start), end-start+1)
	claim.hwm.Store(int64(len(recs)))
	for i := start; i < end; i++ {
		claim.ch <- record(testTopicName, 0, int64(i), recs[i].key, recs[i].value)
	}
	done := h.consume(sess, claim)
	if lost {
		lose(sarama.ErrIllegalGeneration)
	} else {
		close(claim.ch)
	}
	<-done
	return sess.markedOffset(0)
}

// TestPropertyRedeliveryGivesSameState: whatever the batch size, however
// often the partition is lost or revoked midway, and from whichever earlier
// offset Kafka redelivers, the store ends in the state of one clean pass,
// and every bad record is in the dead-letter topic.
func TestPropertyRedeliveryGivesSameState(t *testing.T) {
	const users, items = 4, 5
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 120).Draw(t, "records")
		seed := rapid.Uint64().Draw(t, "seed")
		recs := mixedRecords(rand.New(rand.NewPCG(seed, 1)), n, users, items, base)
		want := referenceState(t, recs, users, items)
		count := rapid.IntRange(1, 20).Draw(t, "batch count")
		h := newHarness(t, func(o *Options) { o.Config.Batch.Count = count })
		defer h.close()

		committed := 0
		for s := range rapid.IntRange(0, 5).Draw(t, "interrupted sessions") {
			start := rapid.IntRange(0, committed).Draw(t, "start")
			end := rapid.IntRange(start, n).Draw(t, "end")
			lost := rapid.Bool().Draw(t, "lost")
			marked := int(h.session(recs, start, end, lost))
			if !lost && end > start && marked != end {
				t.Fatalf("session %d: revoked after offset %d but marked %d", s, end, marked)
			}
			if (!lost || rapid.Bool().Draw(t, "commit before loss")) && marked > committed {
				committed = marked
			}
		}
		start := rapid.IntRange(0, committed).Draw(t, "final start")
		if marked := h.session(recs, start, n, false); start < n && marked != int64(n) {
			t.Fatalf("final session marked %d, want %d", marked, n)
		}
		if got := dumpState(t, h.store, names("u", users), names("i", items)); got != want {
			t.Fatalf("state after redeliveries differs from one pass:\n got:\n%s\nwant:\n%s", got, want)
		}
		dead := map[string]bool{}
		for _, m := range h.dlq.messages() {
			dead[header(m, HeaderOffset)] = true
		}
		for i, r := range recs {
			if r.bad && !dead[strconv.Itoa(i)] {
				t.Fatalf("bad record %d (%s) is not in the dead-letter topic", i, r.value)
			}
			if !r.bad && dead[strconv.Itoa(i)] {
				t.Fatalf("good record %d (%s) was dead-lettered", i, r.value)
			}
		}
	})
}

// TestPropertyTwicePassIsIdempotent: processing the same records twice
// leaves the state of one pass.
func TestPropertyTwicePassIsIdempotent(t *testing.T) {
	const users, items = 3, 3
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 80).Draw(t, "records")
		recs := mixedRecords(rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 2)), n, users, items, base)
		want := referenceState(t, recs, users, items)
		h := newHarness(t, func(o *Options) { o.Config.Batch.Count = rapid.IntRange(1, 30).Draw(t, "batch count") })
		defer h.close()
		h.session(recs, 0, n, false)
		once := dumpState(t, h.store, names("u", users), names("i", items))
		h.session(recs, 0, n, false)
		twice := dumpState(t, h.store, names("u", users), names("i", items))
		if once != want || twice != want {
			t.Fatalf("one pass:\n%s\ntwo passes:\n%s\nreference:\n%s", once, twice, want)
		}
	})
}
