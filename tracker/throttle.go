package tracker

import (
	"sync/atomic"
	"time"
)

// errLogEvery is how often a throttled log lets a line through.
const errLogEvery = 10 * time.Second

// logThrottle thins out a log line that can come with every request (a
// failing hook, a dropped datagram): the first goes out, then at most one
// per errLogEvery, each telling how many were held back since the last.
// The events are counted by metrics, not here. Safe for concurrent use;
// the zero value is ready.
type logThrottle struct {
	next atomic.Int64 // Unix nanoseconds before which lines are held back
	held atomic.Int64
}

// allow records n events at now (Unix nanoseconds) and reports whether to
// log them, with the number of events held back since the last line.
func (t *logThrottle) allow(now, n int64) (ok bool, held int64) {
	next := t.next.Load()
	if now < next || !t.next.CompareAndSwap(next, now+int64(errLogEvery)) {
		t.held.Add(n)
		return false, 0
	}
	return true, t.held.Swap(0)
}
