package telemetry

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestLogConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  LogConfig
		want string
	}{
		{DefaultLogConfig(), ""},
		{LogConfig{Level: "debug", Format: "text"}, ""},
		{LogConfig{Level: "WARN", Format: "auto"}, ""},
		{LogConfig{Level: "loud", Format: "json"}, "log.level"},
		{LogConfig{Level: "info", Format: "xml"}, "log.format"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)) {
			t.Errorf("%+v: err = %v, want prefix %q", tt.cfg, err, tt.want)
		}
	}
}

func TestNewLoggerJSONAndLevel(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, LogConfig{Level: "warn", Format: "json"})
	log.Info("dropped")
	log.Warn("kept", "topic", "t1")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 line at warn level, got %q", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if rec["msg"] != "kept" || rec["topic"] != "t1" {
		t.Errorf("record = %v", rec)
	}
}

func TestNewLoggerAutoOnBufferIsJSON(t *testing.T) {
	var buf bytes.Buffer
	NewLogger(&buf, LogConfig{Level: "info", Format: "auto"}).Info("x")
	if !strings.HasPrefix(buf.String(), "{") {
		t.Errorf("auto on a non-terminal should be JSON: %q", buf.String())
	}
}

func TestNewRegistryGathers(t *testing.T) {
	mfs, err := NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "go_goroutines" {
			found = true
		}
	}
	if !found {
		t.Error("go collector missing")
	}
}
