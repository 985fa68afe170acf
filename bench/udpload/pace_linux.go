package main

import (
	"syscall"
	"time"
)

// preciseSleep sleeps d on this thread: nanosleep for the last 2 ms.
func preciseSleep(d time.Duration) {
	if d <= 0 {
		return
	}
	if d > 2*time.Millisecond {
		time.Sleep(d - time.Millisecond)
		return // the caller looks at the clock again
	}
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}

// prSetTimerslack is PR_SET_TIMERSLACK of prctl(2).
const prSetTimerslack = 29

// setTimerSlack asks for 1 µs of timer slack on this thread (default 50 µs).
func setTimerSlack() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, 1000, 0)
}

// raisePacer sets this thread's nice value to -20, so that when its sleep
// ends it runs before the generator's readers on the same CPU. Only this
// thread: the goroutine calling it must be locked to its thread, which Go
// ends with the goroutine. It needs CAP_SYS_NICE (root); it reports whether
// it took.
func raisePacer() bool {
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), -20) == nil
}
