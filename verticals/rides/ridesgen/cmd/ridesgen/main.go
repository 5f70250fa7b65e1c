// Command ridesgen writes the rides vertical's generated records, one
// <topic>.jsonl file per topic, for `rtgraph produce`:
//
//	go run ./verticals/rides/ridesgen/cmd/ridesgen -seed 1 -out /tmp/rides
//	for t in rides.zones rides.public.riders ...; do
//	  bin/rtgraph produce --topic $t --file /tmp/rides/$t.jsonl; done
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/rtgraph/rtgraph/verticals/rides/ridesgen"
)

func main() {
	seed := flag.Int64("seed", 1, "random seed")
	out := flag.String("out", "", "directory to write <topic>.jsonl files to (required)")
	asOf := flag.String("as-of", "", "RFC 3339 instant the request logs lead up to (default now)")
	small := flag.Bool("small", false, "a few records per topic (the vertical's samples)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "ridesgen: -out is required")
		os.Exit(2)
	}
	t := time.Now()
	if *asOf != "" {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, *asOf); err != nil {
			fmt.Fprintln(os.Stderr, "ridesgen: -as-of:", err)
			os.Exit(2)
		}
	}
	o := ridesgen.Generate(ridesgen.Options{Seed: *seed, AsOf: t, Small: *small})
	if err := o.WriteDir(*out); err != nil {
		fmt.Fprintln(os.Stderr, "ridesgen:", err)
		os.Exit(1)
	}
	for _, tp := range ridesgen.Topics {
		fmt.Printf("%s\t%d records\n", tp, len(o.Topics[tp]))
	}
	fmt.Printf("as of %s: %d records\n", o.AsOf.Format(time.RFC3339Nano), o.Count())
}
