package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rtgraph/rtgraph/ingest"
	"github.com/rtgraph/rtgraph/internal/telemetry"
)

// listFlag collects a repeatable or comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// cmdDLQ: rtgraph dlq replay [--from-start] [--class C] [--topic T].
func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	if len(args) == 0 || args[0] != "replay" {
		return fmt.Errorf("%w: dlq needs a subcommand: replay", errUsage)
	}
	fs, path := newFlags("dlq replay", stderr)
	fromStart := fs.Bool("from-start", false, "replay from the oldest dead letter, not from where the last replay stopped")
	group := fs.String("group", "", "consumer group that records replay progress (default <dead-letter topic>.replay)")
	var classes, topics listFlag
	fs.Var(&classes, "class", "replay only dead letters of this error class (repeatable)")
	fs.Var(&topics, "topic", "replay only dead letters from this source topic (repeatable)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, environ)
	if err != nil {
		return err
	}
	st, err := ingest.ReplayDLQ(ctx, cfg.Kafka, cfg.Ingest.DeadLetterTopic, ingest.ReplayOptions{
		Group: *group, FromStart: *fromStart, Classes: classes, Topics: topics,
		Logger: telemetry.NewLogger(stderr, cfg.Log),
	})
	if err != nil {
		return fmt.Errorf("dlq replay: %w", err)
	}
	fmt.Fprintf(stdout, "replayed %d (%d read back from their source topic), skipped %d, unreplayable %d dead letters from %s\n",
		st.Replayed, st.FromSource, st.Skipped, st.Unreplayable, cfg.Ingest.DeadLetterTopic)
	return nil
}

// cmdGroup: rtgraph group rewind --to RFC3339 [--topic T].
func cmdGroup(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	if len(args) == 0 || args[0] != "rewind" {
		return fmt.Errorf("%w: group needs a subcommand: rewind", errUsage)
	}
	fs, path := newFlags("group rewind", stderr)
	to := fs.String("to", "", "rewind to the first record at or after this time (RFC 3339), required")
	var topics listFlag
	fs.Var(&topics, "topic", "rewind only this input topic (repeatable; default every ingest.topics entry, or the --vertical's topics)")
	dir := verticalFlag(fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *to == "" {
		return fmt.Errorf("%w: --to is required", errUsage)
	}
	at, err := time.Parse(time.RFC3339Nano, *to)
	if err != nil {
		return fmt.Errorf("%w: --to: %v", errUsage, err)
	}
	cfg, err := loadConfigWith(*path, environ, *dir)
	if err != nil {
		return err
	}
	if len(topics) == 0 {
		for t := range cfg.Ingest.Topics {
			topics = append(topics, t)
		}
		slices.Sort(topics)
	}
	if len(topics) == 0 {
		return fmt.Errorf("ingest.topics: no input topics configured and no --topic given")
	}
	rw, err := ingest.RewindGroup(ctx, cfg.Kafka, cfg.Ingest.GroupID, topics, at)
	if err != nil {
		return fmt.Errorf("group rewind: %w", err)
	}
	for _, r := range rw {
		fmt.Fprintf(stdout, "%s/%d: %d -> %d\n", r.Topic, r.Partition, r.From, r.To)
	}
	return nil
}

// cmdPurge: rtgraph purge [--api URL] TYPE:ID — POST /v1/admin/purge on a
// running server, with the API key from RTGRAPH_API_KEY (admin scope).
func cmdPurge(ctx context.Context, args []string, stdout io.Writer, environ []string) error {
	fs := flagSet("purge", stdout)
	base := fs.String("api", "http://127.0.0.1:8080", "base URL of a running rtgraph server that writes to the graph store")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 || !strings.Contains(fs.Arg(0), ":") {
		return fmt.Errorf("%w: purge needs one node as TYPE:ID", errUsage)
	}
	body, err := json.Marshal(map[string]string{"node": fs.Arg(0)})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*base, "/")+"/v1/admin/purge", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: --api: %v", errUsage, err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, kv := range environ {
		if k, ok := strings.CutPrefix(kv, "RTGRAPH_API_KEY="); ok && k != "" {
			req.Header.Set("Authorization", "Bearer "+k)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("purge: %s answered %s: %s", req.URL, resp.Status, bytes.TrimSpace(out))
	}
	var got struct {
		PurgedAt           time.Time `json:"purged_at"`
		ImpressionsRemoved *int      `json:"impressions_removed"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		return fmt.Errorf("purge: %s answered %s", req.URL, bytes.TrimSpace(out))
	}
	fmt.Fprintf(stdout, "purged %s and every edge at it up to %s", fs.Arg(0), got.PurgedAt.Format(time.RFC3339Nano))
	switch {
	case got.ImpressionsRemoved == nil:
	case *got.ImpressionsRemoved < 0:
		fmt.Fprint(stdout, ", and its frequency-cap impressions")
	default:
		fmt.Fprintf(stdout, ", and %d frequency-cap impressions", *got.ImpressionsRemoved)
	}
	fmt.Fprintln(stdout)
	return nil
}
