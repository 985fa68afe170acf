//go:build !unix

package tracker

import "testing"

// processCPU is not measured here (no getrusage): cpu-ns/op reads 0.
func processCPU(testing.TB) int64 { return 0 }
