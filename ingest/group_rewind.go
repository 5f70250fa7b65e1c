package ingest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// ErrGroupActive is returned by RewindGroup while the group has members:
// offsets of a running group cannot be moved (its members would commit over
// them). Stop every ingest process of the group first.
var ErrGroupActive = errors.New("ingest: consumer group is active")

// Rewind is what RewindGroup did to one partition. From is the committed
// offset before (-1: none); To is the offset committed (equal to From when
// the partition was left alone).
type Rewind struct {
	Topic     string
	Partition int32
	From, To  int64
}

// RewindGroup moves the committed offsets of an inactive consumer group back
// to the first record of each partition of topics whose timestamp is at or
// after to, so that the next run of the pipeline re-derives the graph from
// that point. Writes being idempotent, the result is the state a single pass
// gives.
//
// It refuses with ErrGroupActive while the group has members. It never moves
// an offset forward (that would skip records): a partition whose committed
// offset is already before the target, or that has no committed offset (the
// group will read it from the oldest record anyway), is left as it is; a
// partition with no record at or after to is rewound to its end only if
// that is behind its commit. It returns one Rewind per partition, sorted.
func RewindGroup(ctx context.Context, kc KafkaConfig, group string, topics []string, to time.Time) ([]Rewind, error) {
	if group == "" || len(topics) == 0 {
		return nil, errors.New("ingest: rewind: a group and at least one topic are required")
	}
	sc, err := kc.Sarama()
	if err != nil {
		return nil, err
	}
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	client, err := sarama.NewClient(kc.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("ingest: rewind: connect to kafka: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("ingest: rewind: %w", err)
	}
	defer func() { _ = admin.Close() }() // closes client too

	if err := checkInactive(admin, group); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	parts := map[string][]int32{}
	query := map[string]map[int32]int64{}
	for _, t := range topics {
		ps, err := client.Partitions(t)
		if err != nil {
			return nil, fmt.Errorf("ingest: rewind: topic %s: %w", t, err)
		}
		parts[t] = ps
		query[t] = map[int32]int64{}
		for _, p := range ps {
			query[t][p] = to.UnixMilli()
		}
	}
	committed, err := groupOffsets(admin, group, parts)
	if err != nil {
		return nil, fmt.Errorf("ingest: rewind: read offsets of %s: %w", group, err)
	}
	byTime, err := admin.ListOffsets(query, nil)
	if err != nil {
		return nil, fmt.Errorf("ingest: rewind: offsets for %s: %w", to.Format(time.RFC3339), err)
	}

	var out []Rewind
	alter := map[string]map[int32]sarama.OffsetAndMetadata{}
	for _, t := range slices.Sorted(maps.Keys(parts)) {
		for _, p := range parts[t] {
			from := committed[t][p]
			res := byTime[t][p]
			if res == nil {
				return nil, fmt.Errorf("ingest: rewind: no offset for %s/%d", t, p)
			}
			if res.Err != nil && !errors.Is(res.Err, sarama.ErrNoError) {
				return nil, fmt.Errorf("ingest: rewind: offset of %s/%d for %s: %w", t, p, to.Format(time.RFC3339), res.Err)
			}
			target := res.Offset
			if target < 0 {
				// No record at or after the time: the partition's end.
				if target, err = client.GetOffset(t, p, sarama.OffsetNewest); err != nil {
					return nil, fmt.Errorf("ingest: rewind: end of %s/%d: %w", t, p, err)
				}
			}
			r := Rewind{Topic: t, Partition: p, From: from, To: from}
			if from >= 0 && target < from {
				r.To = target
				if alter[t] == nil {
					alter[t] = map[int32]sarama.OffsetAndMetadata{}
				}
				alter[t][p] = sarama.OffsetAndMetadata{Offset: target, LeaderEpoch: -1, Metadata: "rtgraph rewind to " + to.UTC().Format(time.RFC3339)}
			}
			out = append(out, r)
		}
	}
	if len(alter) == 0 {
		return out, nil
	}
	// The broker accepts these commits only while the group is empty, which
	// closes the window between the check above and now.
	resp, err := admin.AlterConsumerGroupOffsets(group, alter, nil)
	if err != nil {
		return nil, fmt.Errorf("ingest: rewind: commit offsets of %s: %w", group, err)
	}
	for t, ps := range resp.Errors {
		for p, kerr := range ps {
			if !errors.Is(kerr, sarama.ErrNoError) {
				if errors.Is(kerr, sarama.ErrUnknownMemberId) || errors.Is(kerr, sarama.ErrIllegalGeneration) || errors.Is(kerr, sarama.ErrRebalanceInProgress) {
					return nil, fmt.Errorf("%w: %s: commit of %s/%d refused: %v", ErrGroupActive, group, t, p, kerr)
				}
				return nil, fmt.Errorf("ingest: rewind: commit of %s/%d: %w", t, p, kerr)
			}
		}
	}
	return out, nil
}

// checkInactive refuses a group that has members or is rebalancing.
func checkInactive(admin sarama.ClusterAdmin, group string) error {
	descs, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		return fmt.Errorf("ingest: describe group %s: %w", group, err)
	}
	for _, d := range descs {
		if d.GroupId != group {
			continue
		}
		if !errors.Is(d.Err, sarama.ErrNoError) && !errors.Is(d.Err, sarama.ErrGroupIDNotFound) {
			return fmt.Errorf("ingest: describe group %s: %w", group, d.Err)
		}
		switch d.State {
		case "Empty", "Dead", "":
		default:
			return fmt.Errorf("%w: %s is %s with %d members; stop its ingest processes first", ErrGroupActive, group, d.State, len(d.Members))
		}
		if len(d.Members) > 0 {
			return fmt.Errorf("%w: %s has %d members; stop its ingest processes first", ErrGroupActive, group, len(d.Members))
		}
	}
	return nil
}

// groupOffsets returns the committed offset of every partition asked for,
// -1 where the group has none (or does not exist).
func groupOffsets(admin sarama.ClusterAdmin, group string, parts map[string][]int32) (map[string]map[int32]int64, error) {
	out := make(map[string]map[int32]int64, len(parts))
	for t, ps := range parts {
		out[t] = make(map[int32]int64, len(ps))
		for _, p := range ps {
			out[t][p] = -1
		}
	}
	resp, err := admin.ListConsumerGroupOffsets(group, parts)
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for t, ps := range parts {
		for _, p := range ps {
			b := resp.GetBlock(t, p)
			if b == nil {
				continue
			}
			if !errors.Is(b.Err, sarama.ErrNoError) {
				return nil, fmt.Errorf("%s/%d: %w", t, p, b.Err)
			}
			out[t][p] = b.Offset
		}
	}
	return out, nil
}
