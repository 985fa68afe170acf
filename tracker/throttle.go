package tracker

import (
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/pkg/timecache"
	"go.uber.org/zap"
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

// failLog throttles a frontend's log of internal failures: a request that
// failed on our side, PostHooks that failed after the reply. Each kind and
// action has its own throttle; metrics count every failure.
type failLog struct {
	request  [numActions]logThrottle
	postHook [numActions]logThrottle
}

var (
	requestFailedMsgs  = [numActions]string{"announce failed", "scrape failed", "connect failed"}
	postHookFailedMsgs = [numActions]string{"post-announce hooks failed", "post-scrape hooks failed", "post-connect hooks failed"}
)

// requestFailed logs an internal error answering a request of action a
// (requests_total counts it, as result "error").
func (l *failLog) requestFailed(log *zap.Logger, a action, err error) {
	if ok, held := l.request[a].allow(timecache.NowUnixNano(), 1); ok {
		log.Error(requestFailedMsgs[a], zap.Error(err), zap.Int64("suppressed", held))
	}
}

// postHooksFailed counts and logs a PostHook error on a request of action a
// over protocol p.
func (l *failLog) postHooksFailed(log *zap.Logger, m *Metrics, p protocol, a action, err error) {
	m.postHookErrors[p][a].Inc()
	if ok, held := l.postHook[a].allow(timecache.NowUnixNano(), 1); ok {
		log.Error(postHookFailedMsgs[a], zap.Error(err), zap.Int64("suppressed", held))
	}
}
