// Command rtgraph is the one rtgraph binary. It only wires packages together;
// the behaviour lives in them.
//
//	rtgraph demo           everything in one process, with a demo event stream
//	rtgraph serve          run the server until SIGINT/SIGTERM
//	rtgraph ingest         run the ingestion pipeline alone
//	rtgraph migrate        apply CQL migrations to Cassandra
//	rtgraph produce        publish a file of JSON events to a topic
//	rtgraph dlq replay     re-publish dead letters
//	rtgraph group rewind   rewind the consumer group to a time
//	rtgraph purge T:ID     erase a node and its edges through a running server
//	rtgraph vertical check validate a vertical folder offline
//	rtgraph vertical try   show what a vertical makes of records, offline
//	rtgraph config print   show the effective configuration, secrets masked
//	rtgraph health --url U exit 0 if U answers 2xx (for container health checks)
//	rtgraph version        print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `rtgraph — real-time graph ingestion and hop queries

Usage:
  rtgraph <command> [flags]

Commands:
  demo           run everything in one process on the embedded default, with a live
                 demo event stream (what make run runs); --vertical DIR runs your own
                 vertical instead and ingests what you publish
  serve          run the server until SIGINT/SIGTERM: store, HTTP (health, metrics),
                 and the ingestion pipeline when ingest.topics (or --vertical DIR) is set
  ingest         run the ingestion pipeline alone (scale-out), with health and metrics
  api            run the query API alone, never the pipeline (scale queries apart from
                 ingestion: several api and ingest processes on one Cassandra keyspace)
  vertical check validate a vertical folder offline (vertical.yaml, decoders, caches,
                 graph schema, mappings, samples)
  vertical try   print what a vertical makes of records: envelopes, mutations, dead
                 letters (no Kafka, no store)
  migrate        apply the CQL migrations in schemas/cql to Cassandra
  produce        publish a file of JSON events to a topic
  dlq replay     re-publish dead letters to their source topics after a fix
  group rewind   move the consumer group's offsets back to a time (group stopped)
  purge TYPE:ID  remove a node and every edge at it for good (a privacy request),
                 through a running server (--api URL, key from RTGRAPH_API_KEY)
  export         write nodes and edges of chosen types (default all) to Parquet and
                 JSON Lines files with a manifest (--out DIR)
  config print   print the effective configuration with secrets masked
  health         probe an HTTP health endpoint (exit 0 when it answers 2xx)
  version        print the version

Every command that reads configuration takes --config FILE (or RTGRAPH_CONFIG)
and RTGRAPH_* environment overrides. demo, serve, ingest, api and group rewind take
--vertical DIR: a vertical folder (verticals/README.md) instead of ingest.topics,
enrich.caches and schemas.*.
`

// errUsage marks a command-line mistake (exit code 2).
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	var err error
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, versionString())
	case "config":
		err = cmdConfig(args[1:], stdout, environ)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], stdout, stderr, environ)
	case "serve":
		err = cmdServe(ctx, args[1:], stderr, environ)
	case "ingest":
		err = cmdIngest(ctx, args[1:], stderr, environ)
	case "api":
		err = cmdAPI(ctx, args[1:], stderr, environ)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr, environ)
	case "produce":
		err = cmdProduce(ctx, args[1:], stdout, stderr, environ)
	case "vertical":
		err = cmdVertical(ctx, args[1:], stdout, stderr)
	case "dlq":
		err = cmdDLQ(ctx, args[1:], stdout, stderr, environ)
	case "group":
		err = cmdGroup(ctx, args[1:], stdout, stderr, environ)
	case "health":
		err = cmdHealth(ctx, args[1:], stdout)
	case "purge":
		err = cmdPurge(ctx, args[1:], stdout, environ)
	case "export":
		err = cmdExport(ctx, args[1:], stderr, environ)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "rtgraph: %v\n\n%s", err, usage)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "rtgraph: %v\n", err)
		return exitError
	}
}

// newFlags returns a flag set for a subcommand with the shared --config flag.
func newFlags(name string, out io.Writer) (*flag.FlagSet, *string) {
	fs := flagSet(name, out)
	path := fs.String("config", "", "YAML configuration file (default: $RTGRAPH_CONFIG, else built-in defaults)")
	return fs, path
}

func flagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("rtgraph "+name, flag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
