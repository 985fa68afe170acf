package main

import (
	"testing"
	"time"
)

// TestRecordSlow: with -slow, a request slower than the threshold is
// counted in the bucket of when it was due within its second; faster ones
// and runs without -slow count nothing there (the percentiles get all).
func TestRecordSlow(t *testing.T) {
	due := time.Unix(1000, 560_000_000) // 560 ms into a second: bucket 11 of 20
	for _, tt := range []struct {
		name      string
		slow, lat time.Duration
		bucket    int // -1: none
	}{
		{"slow", time.Millisecond, 3 * time.Millisecond, 11},
		{"fast", time.Millisecond, 500 * time.Microsecond, -1},
		{"off", 0, time.Second, -1},
	} {
		w := &worker{sh: &shared{o: options{slow: tt.slow}}}
		w.record(&slot{due: due, sent: due}, due.Add(tt.lat), time.Time{})
		for i, c := range w.st.slow {
			want := uint64(0)
			if i == tt.bucket {
				want = 1
			}
			if c != want {
				t.Errorf("%s: bucket %d = %d, want %d", tt.name, i, c, want)
			}
		}
		if w.st.hist.total != 1 {
			t.Errorf("%s: %d latencies recorded, want 1", tt.name, w.st.hist.total)
		}
	}
}
