package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCase is one entry of testdata/<format>/cases.yaml.
type goldenCase struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	Key       string `yaml:"key"`
	KeyText   string `yaml:"key_text"`
	Topic     string `yaml:"topic"`
	Partition int32  `yaml:"partition"`
	Offset    int64  `yaml:"offset"`
	Timestamp string `yaml:"timestamp"`
	Config    Config `yaml:"config"`
}

type goldenFile struct {
	Defaults goldenCase   `yaml:"defaults"`
	Cases    []goldenCase `yaml:"cases"`
}

// loadCases reads a cases.yaml and returns each case with its message and
// config resolved.
func loadCases(tb testing.TB, dir string, format Format) ([]goldenCase, []Message) {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "cases.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	var gf goldenFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&gf); err != nil {
		tb.Fatalf("%s/cases.yaml: %v", dir, err)
	}
	read := func(name string) []byte {
		if name == "" {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	msgs := make([]Message, len(gf.Cases))
	for i := range gf.Cases {
		c := &gf.Cases[i]
		c.Config.Format = format
		m := Message{
			Topic:     firstNonEmpty(c.Topic, gf.Defaults.Topic),
			Partition: gf.Defaults.Partition,
			Offset:    gf.Defaults.Offset + int64(i),
			Value:     read(c.Value),
			Key:       read(c.Key),
		}
		if c.Partition != 0 {
			m.Partition = c.Partition
		}
		if c.Offset != 0 {
			m.Offset = c.Offset
		}
		if c.KeyText != "" {
			m.Key = []byte(c.KeyText)
		}
		if c.Timestamp != "" {
			ts, err := time.Parse(time.RFC3339Nano, c.Timestamp)
			if err != nil {
				tb.Fatalf("case %s: %v", c.Name, err)
			}
			m.Timestamp = ts
		}
		msgs[i] = m
	}
	return gf.Cases, msgs
}

// goldenResult is what a golden file holds.
type goldenResult struct {
	Envelopes []Envelope   `json:"envelopes,omitempty"`
	Error     *goldenError `json:"error,omitempty"`
}

type goldenError struct {
	Class  ErrorClass `json:"class"`
	Field  string     `json:"field,omitempty"`
	Reason string     `json:"reason"`
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		dir    string
		format Format
	}{
		{"testdata/debezium", FormatDebezium},
		{"testdata/requestlog", FormatRequestLog},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			cases, msgs := loadCases(t, tc.dir, tc.format)
			used := map[string]bool{}
			names := map[string]bool{}
			for i, c := range cases {
				used[c.Value], used[c.Key] = true, true
				if names[c.Name] {
					t.Fatalf("duplicate case name %s", c.Name)
				}
				names[c.Name] = true
				t.Run(c.Name, func(t *testing.T) {
					d, err := New(c.Config, WithClock(testClock))
					if err != nil {
						t.Fatalf("config: %v", err)
					}
					envs, err := d.Decode(msgs[i])
					checkDecodeResult(t, envs, err)
					var res goldenResult
					if err != nil {
						var de *DecodeError
						if !errors.As(err, &de) {
							t.Fatalf("unexpected error type %T", err)
						}
						res.Error = &goldenError{de.Class, de.Field, de.Reason}
					} else {
						res.Envelopes = envs
					}
					got, err := json.MarshalIndent(res, "", "  ")
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, '\n')
					path := filepath.Join(tc.dir, c.Name+".golden.json")
					if *update {
						if err := os.WriteFile(path, got, 0o644); err != nil {
							t.Fatal(err)
						}
						return
					}
					want, err := os.ReadFile(path)
					if err != nil {
						t.Fatalf("%v (run with -update to create it)", err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("%s differs from the decoder's output (run with -update after checking):\n%s", path, got)
					}
				})
			}
			// Every sample is exercised, and every golden file belongs to a case.
			entries, err := os.ReadDir(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			var orphans []string
			for _, e := range entries {
				n := e.Name()
				switch {
				case n == "cases.yaml" || n == "SOURCES.md":
				case strings.HasSuffix(n, ".golden.json"):
					if !names[strings.TrimSuffix(n, ".golden.json")] {
						orphans = append(orphans, n)
					}
				case !used[n]:
					orphans = append(orphans, n)
				}
			}
			sort.Strings(orphans)
			if len(orphans) > 0 {
				t.Errorf("files in %s not used by any case: %v", tc.dir, orphans)
			}
		})
	}
}
