package peer

import (
	"errors"
	"sort"
	"sync"

	"github.com/seedpay/seedpay/receipts"
)

// ErrNotForUs: a receipt names another uploader key than ours.
var ErrNotForUs = errors.New("peer: receipt is for another uploader")

// sessionKey identifies one downloader session of one torrent: the tracker
// credits the growth of the cumulative count per (uploader, downloader,
// session), so only the newest receipt of each matters.
type sessionKey struct {
	infoHash   [20]byte
	downloader [32]byte
	session    [8]byte
}

type held struct {
	newest    receipts.Receipt
	submitted uint64 // cumulative of the newest receipt the tracker answered for
	answered  bool
	attempts  int // answers asking to retry, for newest
}

// A Collector is the uploader's side: it keeps, per (torrent, downloader,
// session), the newest valid receipt made out to its key, and knows which
// of them the tracker has not answered yet. It is safe for concurrent use.
type Collector struct {
	pub [32]byte
	mu  sync.Mutex
	m   map[sessionKey]*held
}

// NewCollector returns a collector for receipts made out to pub.
func NewCollector(pub [32]byte) *Collector {
	return &Collector{pub: pub, m: map[sessionKey]*held{}}
}

// Add verifies r and keeps it if it is the newest of its session. It
// reports whether r superseded what was held. A receipt that does not
// verify, or is made out to another key, is refused with an error.
func (c *Collector) Add(r receipts.Receipt) (bool, error) {
	if r.Uploader != c.pub {
		return false, ErrNotForUs
	}
	if err := r.Verify(); err != nil {
		return false, err
	}
	k := sessionKey{r.InfoHash, r.Downloader, r.Session}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.m[k]
	if h == nil {
		c.m[k] = &held{newest: r}
		return true, nil
	}
	if r.Cumulative <= h.newest.Cumulative {
		return false, nil
	}
	h.newest, h.attempts = r, 0
	return true, nil
}

// Pending returns the newest receipt of every session the tracker has not
// answered for yet (or asked to retry), at most max (all when max <= 0),
// in a stable order.
func (c *Collector) Pending(max int) []receipts.Receipt {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []receipts.Receipt
	for _, h := range c.m {
		if !h.answered || h.newest.Cumulative > h.submitted {
			out = append(out, h.newest)
		}
	}
	sort.Slice(out, func(i, j int) bool { return lessReceipt(&out[i], &out[j]) })
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}

// Answered records the tracker's answer for r: done (accepted or refused
// for good) or to be submitted again (retry), at most maxAttempts times.
func (c *Collector) Answered(r receipts.Receipt, retry bool, maxAttempts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.m[sessionKey{r.InfoHash, r.Downloader, r.Session}]
	if h == nil || h.newest.Cumulative != r.Cumulative {
		return // superseded meanwhile: the newer one is pending
	}
	if retry {
		h.attempts++
		if h.attempts < maxAttempts {
			return
		}
	}
	h.answered, h.submitted = true, r.Cumulative
}

// Newest returns the newest receipt held for each session.
func (c *Collector) Newest() []receipts.Receipt {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]receipts.Receipt, 0, len(c.m))
	for _, h := range c.m {
		out = append(out, h.newest)
	}
	sort.Slice(out, func(i, j int) bool { return lessReceipt(&out[i], &out[j]) })
	return out
}

func lessReceipt(a, b *receipts.Receipt) bool {
	if a.InfoHash != b.InfoHash {
		return string(a.InfoHash[:]) < string(b.InfoHash[:])
	}
	if a.Downloader != b.Downloader {
		return string(a.Downloader[:]) < string(b.Downloader[:])
	}
	return string(a.Session[:]) < string(b.Session[:])
}
