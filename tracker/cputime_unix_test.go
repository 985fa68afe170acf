//go:build unix

package tracker

import (
	"syscall"
	"testing"
)

// processCPU is this process's CPU time (tracker and load clients, not
// redis-server) in nanoseconds.
func processCPU(t testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
