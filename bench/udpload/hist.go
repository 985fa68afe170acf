package main

import (
	"math/bits"
	"time"
)

// histogram counts durations in log-linear buckets: values below 2^subBits ns
// exactly, above that 2^subBits buckets per power of two (relative error at
// most 1/2^subBits, about 3 %).
const subBits = 5

const subCount = 1 << subBits

type histogram struct {
	counts [subCount * 64]uint64
	total  uint64
	max    uint64
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [subCount, 2*subCount)
	return subCount + e*subCount + int(v>>e) - subCount
}

// bucketLow is the smallest value of bucket b.
func bucketLow(b int) uint64 {
	if b < subCount {
		return uint64(b)
	}
	e := (b - subCount) / subCount
	m := (b-subCount)%subCount + subCount
	return uint64(m) << e
}

func (h *histogram) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.total++
	h.max = max(h.max, v)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the value at q (0..1): the middle of the bucket holding
// the q-th value, never above the largest value recorded.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q * float64(h.total))
	if rank >= h.total {
		rank = h.total - 1
	}
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen > rank {
			lo, hi := bucketLow(b), bucketLow(b+1)
			return time.Duration(min((lo+hi)/2, h.max))
		}
	}
	return time.Duration(h.max)
}
