package main

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestBucketsMonotoneAndTight(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 65, 1000, 1 << 20, 1<<20 + 12345, 1 << 40, 1<<64 - 1} {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d < %d", v, b, prev)
		}
		prev = b
		lo, hi := bucketLow(b), bucketLow(b+1)
		if v < lo || (hi > lo && v >= hi) {
			t.Fatalf("%d not in bucket %d [%d,%d)", v, b, lo, hi)
		}
		if v >= subCount && float64(hi-lo)/float64(lo) > 1.0/subCount+1e-9 {
			t.Fatalf("bucket %d too wide: [%d,%d)", b, lo, hi)
		}
	}
	if bucketOf(1<<64-1) >= len(histogram{}.counts) {
		t.Fatal("largest value out of range")
	}
}

func TestQuantiles(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Fatal("empty histogram")
	}
	r := rand.New(rand.NewPCG(3, 4))
	vals := make([]time.Duration, 50_000)
	for i := range vals {
		vals[i] = time.Duration(r.ExpFloat64() * float64(time.Millisecond))
	}
	// Merge two halves to test merge too.
	var a, b histogram
	for i, v := range vals {
		if i%2 == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	h.merge(&a)
	h.merge(&b)
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99} {
		exact := vals[int(q*float64(len(vals)))]
		got := h.quantile(q)
		if d := float64(got-exact) / float64(exact); d > 0.04 || d < -0.04 {
			t.Errorf("p%v = %v, exact %v", q*100, got, exact)
		}
	}
	if h.total != uint64(len(vals)) || time.Duration(h.max) != vals[len(vals)-1] || h.quantile(1) > vals[len(vals)-1] {
		t.Fatalf("total %d max %v", h.total, time.Duration(h.max))
	}
}
