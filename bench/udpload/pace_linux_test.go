package main

import (
	"runtime"
	"syscall"
	"testing"
)

// raisePacer raises only the calling thread: another thread of the process
// keeps its nice value.
func TestRaisePacerOnlyThisThread(t *testing.T) {
	niceOf := func() (int, error) { // 20 - getpriority(2)'s raw value
		v, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
		return 20 - v, err
	}
	before, err := niceOf() // this goroutine's thread, unlocked: read only
	if err != nil {
		t.Fatal(err)
	}
	var nice int
	raised := onRaisedThread(func() { nice, err = niceOf() })
	if err != nil {
		t.Fatal(err)
	}
	if !raised {
		if nice != before {
			t.Fatalf("raisePacer failed yet the thread's nice moved %d -> %d", before, nice)
		}
		t.Skip("no CAP_SYS_NICE here: raisePacer is refused (runs report pacer_nice=0)")
	}
	if nice != -20 {
		t.Fatalf("raised thread at nice %d, want -20", nice)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if n, err := niceOf(); err != nil || n != before {
		t.Fatalf("another thread at nice %d (%v), want %d: raisePacer must touch only its own thread", n, err, before)
	}
}
