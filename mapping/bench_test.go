package mapping_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
	"github.com/rtgraph/rtgraph/schemas/demo"
)

// BenchmarkDecodeMap measures the whole per-event path the pipeline runs
// before writing: decode a Kafka record into envelopes (normalize), then map
// each envelope into checked mutations. One sub-benchmark per demo topic
// cycles through that topic's sample records; "all" cycles through every
// sample of every event topic, and "all-decode-only" does the decoding of
// "all" alone, for attribution. An op is one record. Throughput is reported
// by wall time and by CPU time (see cpuTime).
//
//	go test ./mapping -run '^$' -bench BenchmarkDecodeMap -benchmem -cpu 1
func BenchmarkDecodeMap(b *testing.B) {
	v, err := demo.Load()
	if err != nil {
		b.Fatal(err)
	}
	m := demoMapper(b)
	type input struct {
		dec normalize.Decoder
		msg normalize.Message
	}
	clock := normalize.WithClock(func() time.Time { return ingestTime })
	var all []input
	run := func(b *testing.B, ins []input, mapToo bool) {
		ctx := context.Background()
		muts := 0
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		for i := 0; i < b.N; i++ {
			in := &ins[i%len(ins)]
			envs, err := in.dec.Decode(in.msg)
			if err != nil {
				b.Fatal(err)
			}
			if !mapToo {
				continue
			}
			for j := range envs {
				out, _ := m.Map(ctx, &envs[j]) // sample errors (dead letters) are part of the load
				muts += len(out)
			}
		}
		b.StopTimer()
		reportCPU(b, cpuTime()-cpu0, "events")
		b.ReportMetric(float64(muts)/float64(b.N), "mutations/event")
	}
	for _, tc := range v.Topics {
		dec, err := normalize.New(tc.Decoder, clock)
		if err != nil {
			b.Fatal(err)
		}
		msgs, err := demo.Samples(tc.Topic)
		if err != nil {
			b.Fatal(err)
		}
		var ins []input
		for _, msg := range msgs {
			ins = append(ins, input{dec, msg})
		}
		all = append(all, ins...)
		b.Run(tc.Topic, func(b *testing.B) { run(b, ins, true) })
	}
	b.Run("all", func(b *testing.B) { run(b, all, true) })
	// The decoding share of "all", for attribution.
	b.Run("all-decode-only", func(b *testing.B) { run(b, all, false) })
}

// BenchmarkMap measures mapping alone, on envelopes decoded beforehand.
func BenchmarkMap(b *testing.B) {
	v, err := demo.Load()
	if err != nil {
		b.Fatal(err)
	}
	m := demoMapper(b)
	var envs []normalize.Envelope
	for _, tc := range v.Topics {
		dec, err := normalize.New(tc.Decoder)
		if err != nil {
			b.Fatal(err)
		}
		msgs, err := demo.Samples(tc.Topic)
		if err != nil {
			b.Fatal(err)
		}
		for _, msg := range msgs {
			e, err := dec.Decode(msg)
			if err != nil {
				b.Fatal(err)
			}
			envs = append(envs, e...)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		_, _ = m.Map(ctx, &envs[i%len(envs)])
	}
	b.StopTimer()
	reportCPU(b, cpuTime()-cpu0, "envelopes")
}

// BenchmarkFold folds batches of 500 mutations in which each edge is
// written five times.
func BenchmarkFold(b *testing.B) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var batch []graph.Mutation
	for i := range 500 {
		batch = append(batch, graph.Mutation{Op: graph.OpUpsertEdge, EventTime: at.Add(time.Duration(i) * time.Millisecond),
			Edge: graph.EdgeKey{Type: "watched", From: graph.NodeKey{Type: "account", ID: string(rune('a' + i%100/26))},
				To: graph.NodeKey{Type: "title", ID: string(rune('a' + i%26))}}, Props: graph.Props{"n": int64(i)}})
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = foldSink(batch)
	}
}

var foldSink = mapping.Fold

// cpuTime is the CPU time the process has used (user and system, every
// thread, the garbage collector's included). The benchmarks report it
// beside wall time because the machines they run on are shared: wall time
// per op grows with other load, CPU time per op much less so.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports throughput by wall time and by CPU time.
func reportCPU(b *testing.B, cpu time.Duration, unit string) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit+"/s")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(b.N)/cpu.Seconds(), unit+"/cpu-s")
	}
}
