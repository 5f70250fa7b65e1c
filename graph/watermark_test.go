package graph

import (
	"testing"
	"time"
)

func TestCompleteThrough(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	wm := func(group string, p int32, ev time.Time, off, hw int64) Watermark {
		return Watermark{Source: WatermarkSource{Group: group, Topic: "t", Partition: p}, EventTime: ev, Offset: off, HighWater: hw}
	}
	tests := []struct {
		name   string
		ws     []Watermark
		want   time.Time
		wantOK bool
	}{
		{"none", nil, time.Time{}, false},
		{"other group only", []Watermark{wm("b", 0, at(5), 10, 10)}, time.Time{}, false},
		{"all caught up: newest event", []Watermark{wm("g", 0, at(5), 10, 10), wm("g", 1, at(9), 3, 3)}, at(9), true},
		{"idle caught-up partition does not hold back", []Watermark{wm("g", 0, at(1), 10, 10), wm("g", 1, at(9), 3, 7)}, at(9), true},
		{"min over lagging", []Watermark{wm("g", 0, at(4), 1, 10), wm("g", 1, at(9), 3, 7), wm("g", 2, at(20), 5, 5)}, at(4), true},
		{"other groups ignored", []Watermark{wm("g", 0, at(4), 1, 10), wm("h", 0, at(1), 0, 10)}, at(4), true},
		{"high water behind offset is not lag", []Watermark{wm("g", 0, at(4), 12, 10)}, at(4), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := CompleteThrough(tt.ws, "g")
			if ok != tt.wantOK || !got.Equal(tt.want) {
				t.Errorf("CompleteThrough = %s, %v; want %s, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if l := wm("g", 0, at(0), 12, 10).Lag(); l != 0 {
		t.Errorf("Lag with offset past high water = %d, want 0", l)
	}
}
