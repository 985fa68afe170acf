package api

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate limiter defaults for the public API and page.
const (
	DefaultPublicRate       = 5.0   // requests per second per client, sustained
	DefaultPublicBurst      = 40    // requests a client may make at once
	DefaultPublicMaxClients = 10000 // clients tracked; the least recently seen is forgotten
)

// rateLimiter is a token bucket per client key in a bounded map: when it is
// full, the least recently seen client is evicted. An evicted client starts
// again with a full bucket, so eviction only ever errs on the lenient side,
// and memory stays bounded however many addresses a client sprays from.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[netip.Prefix]*list.Element // of *bucket
	lru     list.List                      // front = most recently seen
}

type bucket struct {
	key    netip.Prefix
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst, maxClients int) *rateLimiter {
	return &rateLimiter{
		rate: rate, burst: float64(burst), max: maxClients, now: time.Now,
		buckets: make(map[netip.Prefix]*list.Element),
	}
}

// allow takes one token from key's bucket. When there is none it says how
// long until there is.
func (l *rateLimiter) allow(key netip.Prefix) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if el, ok := l.buckets[key]; ok {
		l.lru.MoveToFront(el)
		b = el.Value.(*bucket)
		if dt := now.Sub(b.last).Seconds(); dt > 0 {
			b.tokens = math.Min(l.burst, b.tokens+dt*l.rate)
		}
		b.last = now
	} else {
		if len(l.buckets) >= l.max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.buckets, old.Value.(*bucket).key)
		}
		b = &bucket{key: key, tokens: l.burst, last: now}
		l.buckets[key] = l.lru.PushFront(b)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// len is the number of clients tracked.
func (l *rateLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// clientKey is the rate-limit key of a request: the client's IPv4 address,
// or its IPv6 /64 (one host usually owns a whole /64). The client is the
// peer of the connection, or, when that peer is a trusted proxy, the
// right-most X-Forwarded-For address that is not a trusted proxy.
func clientKey(r *http.Request, trusted []netip.Prefix) netip.Prefix {
	ip := remoteIP(r.RemoteAddr)
	if ip.IsValid() && isTrusted(ip, trusted) {
		// From the right, one hop at a time: no copy of a long header.
		hops := r.Header.Values("X-Forwarded-For")
	walk:
		for h := len(hops) - 1; h >= 0; h-- {
			rest := hops[h]
			for {
				i := strings.LastIndexByte(rest, ',')
				hop, err := netip.ParseAddr(strings.TrimSpace(rest[i+1:]))
				if err != nil {
					break walk // a garbled header: stop at the last address we trust
				}
				ip = hop.Unmap()
				if !isTrusted(ip, trusted) {
					break walk
				}
				if i < 0 {
					break
				}
				rest = rest[:i]
			}
		}
	}
	if !ip.IsValid() {
		return netip.Prefix{} // unparsable peer: one shared bucket
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

func remoteIP(addr string) netip.Addr {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.WithZone("").Unmap()
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// limit wraps h with the per-client rate limit: over it, a 429 JSON error
// with Retry-After in whole seconds.
func (l *rateLimiter) limit(trusted []netip.Prefix, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait := l.allow(clientKey(r, trusted))
		if !ok {
			secs := int64(math.Ceil(wait.Seconds()))
			if secs < 1 {
				secs = 1
			}
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			writeError(w, http.StatusTooManyRequests, "rate limit exceeded: retry in "+strconv.FormatInt(secs, 10)+" s")
			return
		}
		h.ServeHTTP(w, r)
	})
}
