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
