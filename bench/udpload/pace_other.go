//go:build !linux

package main

import "time"

// preciseSleep is time.Sleep where nanosleep and prctl are not at hand:
// the pacer is less exact there (its lag is reported).
func preciseSleep(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}

func setTimerSlack() {}

func raisePacer() bool { return false }
