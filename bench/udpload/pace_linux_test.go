package main

import (
	"runtime"
	"syscall"
	"testing"
)

// raisePacer raises only the calling thread: another thread of the process
// keeps its nice value.
func TestRaisePacerOnlyThisThread(t *testing.T) {
	type prio struct {
		raised bool
		nice   int // 20 - getpriority(2)'s raw value
		err    error
	}
	niceOf := func() (int, error) {
		v, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
		return 20 - v, err
	}
	before, err := niceOf() // this goroutine's thread, unlocked: read only
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan prio)
	go func() {
		runtime.LockOSThread() // never unlocked: the raised thread exits with the goroutine
		raised := raisePacer()
		n, err := niceOf()
		got <- prio{raised, n, err}
	}()
	p := <-got
	if p.err != nil {
		t.Fatal(p.err)
	}
	if !p.raised {
		if p.nice != before {
			t.Fatalf("raisePacer failed yet the thread's nice moved %d -> %d", before, p.nice)
		}
		t.Skip("no CAP_SYS_NICE here: raisePacer is refused (runs report pacer_nice=0)")
	}
	if p.nice != -20 {
		t.Fatalf("raised thread at nice %d, want -20", p.nice)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if n, err := niceOf(); err != nil || n != before {
		t.Fatalf("another thread at nice %d (%v), want %d: raisePacer must touch only its own thread", n, err, before)
	}
}
