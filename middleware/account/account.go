// Package account is the PostHook that feeds announces to the reward
// ledger. The hook only copies a fixed-size event into a buffer; a flusher
// sends the buffered events to Redis in one pipelined batch per interval.
package account

import (
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/middleware/auth"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/rewards"
)

// Sink receives batches of events; rewards.Accountant implements it through
// the Ledger adapter in this package.
type Sink interface {
	Account(ctx context.Context, events []rewards.Event) error
}

// Torrents tells the size of a registered torrent.
type Torrents interface {
	Torrent(ih bittorrent.InfoHash) (*registry.Entry, bool)
}

// shard is one buffer; announces spread over shards by peer id so cores
// rarely meet on a lock (Go exposes no CPU id to index by).
type shard struct {
	mu     sync.Mutex
	events []rewards.Event
	_      [40]byte // keep shards on separate cache lines
}

// Hook is the accounting PostHook plus its flusher. In Redis session mode
// (New) it buffers events for a Sink; in local session mode (NewLocal) it
// accounts each announce in memory right away (rewards.LocalAccountant)
// and its flusher writes aggregates.
type Hook struct {
	local   *rewards.LocalAccountant
	flusher *rewards.LocalFlusher
	epoch   rewards.EpochConfig
	pools   func(infoHash [20]byte) []string
	// clock is the Unix second and the oldest open epoch at it, kept by
	// Run in local mode (nil when Run is not running): accounting counts
	// whole seconds, and time.Now and MinOpenEpoch per announce were a
	// fifth of the hook's cost.
	clock atomic.Pointer[clockReading]

	shards   []shard
	capacity int
	torrents Torrents
	sink     Sink
	interval time.Duration
	log      *zap.Logger
	now      func() time.Time // Redis mode's clock; in local mode a test's (nil: Run's clock)

	buffered prometheus.Counter
	dropped  prometheus.Counter
	flushed  prometheus.Counter
	failed   prometheus.Counter
	latency  prometheus.Histogram
}

var _ middleware.Hook = (*Hook)(nil)

// clockReading is one reading of the local-mode clock.
type clockReading struct {
	sec, minOpen int64
}

// Config sizes the buffers and the flush cadence.
type Config struct {
	Shards        int           // 0: GOMAXPROCS x 4
	ShardCapacity int           // events per shard before drops
	FlushInterval time.Duration // how often events go to Redis
}

// New returns the hook; call Run to flush.
func New(cfg Config, torrents Torrents, sink Sink, reg prometheus.Registerer, log *zap.Logger) (*Hook, error) {
	if cfg.Shards <= 0 {
		cfg.Shards = 4 * maxProcs()
	}
	if cfg.ShardCapacity <= 0 {
		cfg.ShardCapacity = 1024
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	h := &Hook{
		shards:   make([]shard, cfg.Shards),
		capacity: cfg.ShardCapacity,
		torrents: torrents,
		sink:     sink,
		interval: cfg.FlushInterval,
		log:      log,
		now:      time.Now,
		buffered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "events_buffered_total", Help: "Announces buffered for accounting."}),
		dropped:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "events_dropped_total", Help: "Announces not buffered because the buffer was full; the next announce of the session recovers the credit from cumulative counters."}),
		flushed:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "events_flushed_total", Help: "Events written to Redis."}),
		failed:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "flush_failures_total", Help: "Flushes that failed; their events are recovered by the sessions' next announces."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "flush_duration_seconds", Help: "Time to write one batch to Redis.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	for i := range h.shards {
		h.shards[i].events = make([]rewards.Event, 0, cfg.ShardCapacity)
	}
	for _, c := range []prometheus.Collector{h.buffered, h.dropped, h.flushed, h.failed, h.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// NewLocal returns the hook of local session mode: each announce is
// accounted by acct in memory; Run runs flusher. pools names the pools
// covering a torrent (nil: the global pool only); it is asked only for
// announces that earn points.
func NewLocal(torrents Torrents, acct *rewards.LocalAccountant, flusher *rewards.LocalFlusher, epoch rewards.EpochConfig,
	pools func(infoHash [20]byte) []string, reg prometheus.Registerer, log *zap.Logger) (*Hook, error) {
	h := &Hook{local: acct, flusher: flusher, epoch: epoch, pools: pools, torrents: torrents, log: log}
	if err := reg.Register(outcomeCollector{acct}); err != nil {
		return nil, err
	}
	return h, nil
}

var outcomeDesc = prometheus.NewDesc("seedpay_accounting_events_total",
	"Announces accounted in memory (local session mode), by outcome: new, accounted, reset, capped (over max_peers_per_torrent), late, error.",
	[]string{"outcome"}, nil)

// outcomeCollector exports the accountant's outcome counts, which it keeps
// per shard under the shard's lock (one counter shared by all cores was a
// contended cache line on every announce).
type outcomeCollector struct{ acct *rewards.LocalAccountant }

func (c outcomeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- outcomeDesc }

func (c outcomeCollector) Collect(ch chan<- prometheus.Metric) {
	for code, n := range c.acct.Outcomes() {
		ch <- prometheus.MustNewConstMetric(outcomeDesc, prometheus.CounterValue, float64(n), rewards.Code(code).String())
	}
}

// HandleAnnounce accounts (local mode) or buffers (Redis mode) the
// announce of an authenticated user on a registered torrent. It never waits
// on I/O and never fails the announce.
func (h *Hook) HandleAnnounce(ctx context.Context, req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) (context.Context, error) {
	u, ok := auth.UserFromContext(ctx)
	if !ok {
		return ctx, nil
	}
	// auth carries the torrent in private mode; otherwise look it up.
	t, ok := registry.EntryFromContext(ctx, req.InfoHash)
	if !ok {
		if t, ok = h.torrents.Torrent(req.InfoHash); !ok {
			return ctx, nil // unregistered torrents earn nothing
		}
	}
	if h.local != nil {
		sec, minOpen := h.localClock()
		ev := newEvent(u, t, req, resp, sec)
		h.local.ApplyLookup(&ev, minOpen, h.pools)
		return ctx, nil
	}
	ev := newEvent(u, t, req, resp, h.now().Unix())
	s := &h.shards[shardOf(req.Peer.ID)%uint32(len(h.shards))]
	s.mu.Lock()
	if len(s.events) == cap(s.events) {
		s.mu.Unlock()
		h.dropped.Inc()
		return ctx, nil
	}
	s.events = append(s.events, ev)
	s.mu.Unlock()
	h.buffered.Inc()
	return ctx, nil
}

// newEvent is the accounting event of an announce at Unix second sec.
func newEvent(u *registry.User, t *registry.Entry, req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse, sec int64) rewards.Event {
	return rewards.Event{
		User:       u.ID,
		InfoHash:   req.InfoHash,
		PeerID:     req.Peer.ID,
		Size:       t.Size,
		Seeders:    resp.Complete,
		Uploaded:   req.Uploaded,
		Downloaded: req.Downloaded,
		Left:       req.Left,
		Stopped:    req.Event == bittorrent.Stopped,
		IP:         ip16(req.IP.IP),
		Time:       sec,
	}
}

// HandleScrape does nothing: scrapes earn nothing.
func (h *Hook) HandleScrape(ctx context.Context, _ *bittorrent.ScrapeRequest, _ *bittorrent.ScrapeResponse) (context.Context, error) {
	return ctx, nil
}

// Run flushes every interval until ctx ends, then flushes once more (and,
// in local mode, saves the sessions).
func (h *Hook) Run(ctx context.Context) error {
	if h.flusher != nil {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		go func() {
			for {
				h.setClock(time.Now().Unix())
				select {
				case <-ctx.Done():
					h.clock.Store(nil)
					return
				case <-tick.C:
				}
			}
		}()
		return h.flusher.Run(ctx)
	}
	t := time.NewTicker(h.interval)
	defer t.Stop()
	spare := make([]rewards.Event, 0, h.capacity)
	batch := make([]rewards.Event, 0, h.capacity*len(h.shards))
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			h.Flush(fctx, &spare, &batch)
			cancel()
			return nil
		case <-t.C:
			h.Flush(ctx, &spare, &batch)
		}
	}
}

// Flush sends everything buffered now. spare and batch are reused buffers.
func (h *Hook) Flush(ctx context.Context, spare, batch *[]rewards.Event) {
	*batch = (*batch)[:0]
	for i := range h.shards {
		if cap(*spare) < h.capacity {
			*spare = make([]rewards.Event, 0, h.capacity)
		}
		s := &h.shards[i]
		s.mu.Lock()
		full := s.events
		s.events = (*spare)[:0]
		s.mu.Unlock()
		*batch = append(*batch, full...)
		clear(full) // drop the user id strings for the GC
		*spare = full
	}
	if len(*batch) == 0 {
		return
	}
	start := time.Now()
	err := h.sink.Account(ctx, *batch)
	h.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		h.failed.Inc()
		h.log.Warn("accounting flush failed; the sessions' next announces recover the credit",
			zap.Int("events", len(*batch)), zap.Error(err))
		return
	}
	h.flushed.Add(float64(len(*batch)))
}

// setClock moves the local-mode clock to Unix second sec, computing the
// oldest open epoch once per second rather than per announce.
func (h *Hook) setClock(sec int64) {
	if c := h.clock.Load(); c != nil && c.sec == sec {
		return
	}
	h.clock.Store(&clockReading{sec: sec, minOpen: h.epoch.MinOpenEpoch(time.Unix(sec, 0))})
}

// localClock is the Unix second and the oldest open epoch at it: the clock
// Run keeps, else (Run not running, or a test's h.now) computed now.
func (h *Hook) localClock() (sec, minOpen int64) {
	if h.now == nil {
		if c := h.clock.Load(); c != nil {
			return c.sec, c.minOpen
		}
	}
	now := time.Now()
	if h.now != nil {
		now = h.now()
	}
	return now.Unix(), h.epoch.MinOpenEpoch(now)
}

func maxProcs() int { return runtime.GOMAXPROCS(0) }

func ip16(ip net.IP) (out [16]byte) {
	if v := ip.To16(); v != nil {
		copy(out[:], v)
	}
	return out
}

// shardOf mixes all 20 bytes of the peer id: clients fill the tail with
// anything from random bytes to decimal digits, so no single byte spreads
// announces over the shards (a benchmark with decimal ids put them all in one).
func shardOf(id bittorrent.PeerID) uint32 {
	x := binary.LittleEndian.Uint64(id[0:]) ^ binary.LittleEndian.Uint64(id[8:])*0x9e3779b97f4a7c15 ^ uint64(binary.LittleEndian.Uint32(id[16:]))*0xc2b2ae3d27d4eb4f
	x ^= x >> 29
	x *= 0xbf58476d1ce4e5b9
	return uint32(x >> 32)
}
